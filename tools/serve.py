"""Serve an exported model over HTTP: the same as ``paddle-resnet serve`` (``--help`` lists the options)."""
import sys

from paddle_resnet.cli.serve import main

if __name__ == "__main__":
    sys.exit(main())
