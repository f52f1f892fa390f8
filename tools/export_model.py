"""Export to Paddle's inference format: the same as ``paddle-resnet export`` (``--help`` lists the options)."""
import sys

from paddle_resnet.cli.export_model import main

if __name__ == "__main__":
    sys.exit(main())
