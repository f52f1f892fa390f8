"""Evaluate weights on the Eval set:  python tools/eval.py -c CONFIG -o Global.pretrained_model=output/best"""
from .common import run_engine


def main(argv=None, prog=None):
    result = run_engine(__doc__, "eval", argv, lambda engine, args: engine.evaluate(), prog=prog)
    topk = " ".join(f"{k} {v:.4f}" for k, v in result.items() if k.startswith("top"))
    print(f"eval: {topk} loss {result['loss']:.4f} over {result['samples']} images "
          f"({result['skipped']} skipped)")
