"""Print a ResNet's paddle.summary table, parameter counts and FLOPs: the same as ``paddle-resnet summary``
(``--help`` lists the options).
"""
import sys

from paddle_resnet.cli.summary import main

if __name__ == "__main__":
    sys.exit(main())
