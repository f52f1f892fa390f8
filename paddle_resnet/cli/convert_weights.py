"""Convert a Paddle, PaddleClas, torchvision or timm ResNet checkpoint to this package's .pdparams.

    python tools/convert_weights.py --arch resnet50_vd --src resnet50d.pth --dst resnet50_vd.pdparams
    python tools/convert_weights.py --src imgsim:resnet50 --num-classes 5 --dst pretrained/resnet50.pdparams
    python tools/convert_weights.py --arch resnet18_vd --src ResNet18_vd_pretrained --source paddleclas \
        --num-classes 102 --dst out/resnet18_vd_flowers.pdparams
    python tools/convert_weights.py --arch resnet50_vd --src output/resnet50_vd/best --to paddleclas \
        --dst ResNet50_vd_ours.pdparams      # loads into PaddleClas's ResNet50_vd with no missing key

The source naming scheme is detected from the key names unless --source is given; torch files are
read without torch. --num-classes defaults to the checkpoint's own (a different count re-initialises
the classifier). Files are read without running code from them; the output is written atomically,
with a mode that follows the umask.
"""
import sys


from ..errors import UserError
from ..weights import SOURCES, convert_checkpoint
from ..weights.loader import TARGETS
from ..weights.named import NAMED_WEIGHTS
from .common import fail, tool_parser


def main(argv=None, prog=None):
    parser = tool_parser(__doc__, prog)
    parser.add_argument("--arch", help="a registered model name, e.g. resnet50_vd (for a weights name such as "
                                       "imgsim:resnet50, its model by default)")
    parser.add_argument("--src", required=True, help=".pdparams, .pth/.pt, .safetensors or .npz, or a weights name "
                                                     "(paddle-resnet weights lists them)")
    parser.add_argument("--dst", required=True, help="output .pdparams")
    parser.add_argument("--source", default="auto", choices=("auto",) + SOURCES)
    parser.add_argument("--num-classes", type=int, help="classifier size (default: the checkpoint's; 0 writes a "
                                                        "backbone without a classifier head; at most 100,000)")
    parser.add_argument("--to", default="paddle", choices=TARGETS,
                        help="names to write: ours (paddle.vision's, default) or PaddleClas's ResNet / ResNet_vd")
    args = parser.parse_args(argv)
    arch = args.arch or (NAMED_WEIGHTS[args.src].arch if args.src in NAMED_WEIGHTS else None)
    if arch is None:
        parser.error("--arch is required unless --src is a weights name (paddle-resnet weights lists them)")
    try:
        report = convert_checkpoint(arch, args.src, args.dst, args.source, args.num_classes, to=args.to)
    except (UserError, OSError) as err:  # anything else is a bug: keep its traceback
        sys.exit(fail(prog, err))
    print(report)
    print(f"wrote {args.dst}" + (" with PaddleClas's parameter names" if args.to == "paddleclas" else ""))
