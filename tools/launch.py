"""Run a tool in several processes (paddle.distributed.launch, quiet): the same as ``paddle-resnet launch``."""
import sys

from paddle_resnet.cli.launch import main

if __name__ == "__main__":
    sys.exit(main())
