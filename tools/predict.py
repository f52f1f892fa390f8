"""Classify images with an exported inference model (see tools/export_model.py): the same as ``paddle-resnet
predict`` (``--help`` lists the options).
"""
import sys

from paddle_resnet.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
