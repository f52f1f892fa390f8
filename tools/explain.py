"""Grad-CAM overlays for images: the same as ``paddle-resnet explain`` (``--help`` lists the options)."""
import sys

from paddle_resnet.cli.explain import main

if __name__ == "__main__":
    sys.exit(main())
