"""Train a ResNet from a config:  python tools/train.py -c configs/resnet50.yaml [-o Section.key=value ...]

Many GPUs / machines:  python -m paddle.distributed.launch --gpus 0,1,2,3 tools/train.py -c ...
"""
import sys

from paddle_resnet.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
