"""The evaluation report of predictions made by predict.py: the same as ``paddle-resnet report`` (``--help`` lists the options)."""
import sys

from paddle_resnet.cli.report import main

if __name__ == "__main__":
    sys.exit(main())
