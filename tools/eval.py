"""Evaluate weights on the Eval set:  python tools/eval.py -c CONFIG -o Global.pretrained_model=output/best"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddle_resnet.tools_common import run_engine  # noqa: E402


def main(argv=None):
    result = run_engine(__doc__, "eval", argv, lambda engine, args: engine.evaluate())
    topk = " ".join(f"{k} {v:.4f}" for k, v in result.items() if k.startswith("top"))
    print(f"eval: {topk} loss {result['loss']:.4f} over {result['samples']} images "
          f"({result['skipped']} skipped)")


if __name__ == "__main__":
    main()
