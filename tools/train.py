"""Train a ResNet from a config: the same as ``paddle-resnet train`` (``--help`` lists the options)."""
import sys

from paddle_resnet.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
