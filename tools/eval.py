"""Evaluate weights on the Eval set: the same as ``paddle-resnet eval`` (``--help`` lists the options)."""
import sys

from paddle_resnet.cli.eval import main

if __name__ == "__main__":
    sys.exit(main())
