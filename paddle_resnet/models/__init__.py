from .blocks import BasicBlock, BottleneckBlock, PreActBasicBlock, PreActBottleneckBlock
from .flops import count_flops
from .resnet import DEPTHS, ResNet, build_model, list_models, model_args
