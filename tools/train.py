"""Train a ResNet from a config: the same as ``paddle-resnet train`` (``--help`` lists the options)."""
import sys

from paddle_resnet.allocator import run_with_tcmalloc

if __name__ == "__main__":
    run_with_tcmalloc()  # before Paddle loads, so that running again costs little
    from paddle_resnet.cli.train import main
    sys.exit(main())
