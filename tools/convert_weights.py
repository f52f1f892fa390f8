"""Convert a Paddle, PaddleClas, torchvision or timm ResNet checkpoint to this package's .pdparams: the same as
``paddle-resnet convert-weights`` (``--help`` lists the options).
"""
import sys

from paddle_resnet.cli.convert_weights import main

if __name__ == "__main__":
    sys.exit(main())
