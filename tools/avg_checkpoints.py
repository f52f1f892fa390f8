"""Average the last epoch checkpoints of a run and evaluate the average: the same as ``paddle-resnet avg-checkpoints`` (``--help`` lists the options)."""
import sys

from paddle_resnet.cli.avg_checkpoints import main

if __name__ == "__main__":
    sys.exit(main())
