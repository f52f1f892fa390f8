"""Evaluate weights on the Eval set: the same as ``paddle-resnet eval`` (``--help`` lists the options)."""
import sys

from paddle_resnet.allocator import run_with_tcmalloc

if __name__ == "__main__":
    run_with_tcmalloc()  # before Paddle loads, so that running again costs little
    from paddle_resnet.cli.eval import main
    sys.exit(main())
