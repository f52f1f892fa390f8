"""Prepare a data set for training, e.g. ``python tools/prepare_data.py mnist --out data/mnist``: the same as
``paddle-resnet prepare-data`` (``--help`` lists the options).
"""
import sys

from paddle_resnet.cli.prepare_data import main

if __name__ == "__main__":
    sys.exit(main())
