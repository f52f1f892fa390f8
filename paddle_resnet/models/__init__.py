from .blocks import BasicBlock, BottleneckBlock, PreActBasicBlock, PreActBottleneckBlock
from .flops import count_flops
from .aliases import PADDLECLAS_ALIASES
from .resnet import DEPTHS, ResNet, build_model, check_build_args, list_models, model_args
