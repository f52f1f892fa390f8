"""Train a ResNet from a config:  python tools/train.py -c configs/resnet50.yaml [-o Section.key=value ...]

Many GPUs / machines:  python -m paddle.distributed.launch --gpus 0,1,2,3 tools/train.py -c ...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddle_resnet.tools_common import run_engine  # noqa: E402


def main(argv=None):
    result = run_engine(__doc__, "train", argv, lambda engine, args: engine.train())
    print(f"best top1 {result['best_top1']:.4f} at epoch {result['best_epoch']}; "
          f"checkpoints in {result['output_dir']}")


if __name__ == "__main__":
    main()
