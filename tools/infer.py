"""Classify images with trained weights: the same as ``paddle-resnet infer`` (``--help`` lists the options)."""
import sys

from paddle_resnet.cli.infer import main

if __name__ == "__main__":
    sys.exit(main())
