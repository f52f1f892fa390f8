"""Convert a Paddle, PaddleClas, torchvision or timm ResNet checkpoint to this package's .pdparams.

    python tools/convert_weights.py --arch resnet50_vd --src resnet50d.pth --dst resnet50_vd.pdparams
    python tools/convert_weights.py --arch resnet18_vd --src ResNet18_vd_pretrained --source paddleclas \
        --num-classes 102 --dst out/resnet18_vd_flowers.pdparams

The source naming scheme is detected from the key names unless --source is given; torch files are
read without torch. --num-classes defaults to the checkpoint's own (a different count re-initialises
the classifier). Files are read without running code from them; the output is written atomically,
with a mode that follows the umask.
"""
import sys

from paddle_resnet.cli.convert_weights import main

if __name__ == "__main__":
    sys.exit(main())
