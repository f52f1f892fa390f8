"""Print a ResNet's paddle.summary table, parameter counts and FLOPs.

    python tools/summary.py --layers 50 [--variant v1|vd|v2] [--input-size 224] [--num-classes 1000] [--json]
    python tools/summary.py --model resnext50_32x4d
    python tools/summary.py --model-table
"""
import sys

from paddle_resnet.cli.summary import main

if __name__ == "__main__":
    sys.exit(main())
