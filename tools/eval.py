"""Evaluate weights on the Eval set:  python tools/eval.py -c CONFIG -o Global.pretrained_model=output/best"""
import sys

from paddle_resnet.cli.eval import main

if __name__ == "__main__":
    sys.exit(main())
