"""Print a ResNet's paddle.summary table, parameter counts and FLOPs.

    python tools/summary.py --layers 50 [--variant v1|vd|v2] [--input-size 224] [--num-classes 1000] [--json]
    python tools/summary.py --model resnext50_32x4d
    python tools/summary.py --model-table
"""
import json
import sys


from ..errors import UserError
from ..models import list_models
from ..models.summary import model_name, model_table, summarize
from .common import fail, tool_parser


def main(argv=None, prog=None):
    parser = tool_parser(__doc__, prog)
    parser.add_argument("--layers", type=int, default=50, help="depth: 18, 34, 50, 101, 152 or 200")
    parser.add_argument("--variant", default="v1", help="v1, vd (ResNet-D) or v2 (pre-activation)")
    parser.add_argument("--model", help="any registered name; overrides --layers/--variant")
    parser.add_argument("--input-size", type=int, default=224, help="image side in pixels, 1 to 2048 (default 224)")
    parser.add_argument("--num-classes", type=int, default=1000, help="0 (no classifier head) to 100,000 (default 1000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--model-table", action="store_true", help="print the table of every model (docs/models.md)")
    args = parser.parse_args(argv)
    try:
        if args.model_table:
            print(model_table(list_models(), args.input_size))
            return
        name = args.model or model_name(args.layers, args.variant)
        report = summarize(name, args.input_size, args.num_classes)
    except UserError as err:
        sys.exit(fail(prog, err))
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "table"}, indent=2))
        return
    print(report["table"])
    print(f"{name} at {args.input_size}x{args.input_size}, {args.num_classes} classes")
    print(f"Total params:     {report['total_params']:,} (includes BN running mean/variance)")
    print(f"Trainable params: {report['trainable_params']:,}")
    print(f"FLOPs:            {report['flops'] / 1e9:.2f} G (a multiply-add counts once; paddle.flops rules)")
