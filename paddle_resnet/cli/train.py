"""Train a ResNet from a config:  python tools/train.py -c configs/resnet50.yaml [-o Section.key=value ...]

Many GPUs / machines:  python -m paddle.distributed.launch --gpus 0,1,2,3 tools/train.py -c ...

Exit codes: 0 done; 1 a user error in one line (among them a diverged run, which saves nothing non-finite
and names the last good checkpoint, and a checkpoint that cannot be written); 143 stopped by SIGTERM (130:
Ctrl-C) after saving latest at the step it reached (resume with -o Global.checkpoints=<output_dir>/latest).
"""
from .common import run_engine


def main(argv=None, prog=None):
    result = run_engine(__doc__, "train", argv, lambda engine, args: engine.train(), prog=prog)
    metric = result["best_metric"]
    chosen = f" (best {metric} {result['best_value']:.4f})" if metric != "top1" and result["best_value"] is not None else ""
    stopped = ", stopped early" if result["stopped_early"] else ""
    print(f"best top1 {result['best_top1']:.4f} at epoch {result['best_epoch']}{chosen}{stopped}; "
          f"checkpoints in {result['output_dir']}")
