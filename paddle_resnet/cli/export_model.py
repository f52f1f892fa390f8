"""Export to Paddle's inference format, plus ONNX when paddle2onnx is installed (the faster CPU backend):

    python tools/export_model.py -c configs/X.yaml -o Global.pretrained_model=output/best \
        -o Global.save_inference_dir=inference/X [--no-softmax] [--onnx | --no-onnx]
        [--quantize int8 [--calib-images 256] [--max-drop 1.0]]

--quantize int8 adds inference_int8.onnx, calibrated on the first --calib-images images of the config's Eval
set; fp32 and int8 top-1 are measured on the rest of it, and the int8 model is refused (exit code 1, the fp32
export still written) when it loses more than --max-drop points.
"""
import argparse

from ..errors import ConfigError
from .common import positive_int, run_engine


def drop_points(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be a number of top-1 points from 0 to 100, got {text}")
    return value


def add_arguments(parser):
    from ..deploy.quantize import DEFAULT_CALIB_IMAGES, DEFAULT_MAX_DROP, QUANTIZE_CHOICES
    parser.add_argument("--no-softmax", action="store_true", help="export logits instead of probabilities")
    onnx = parser.add_mutually_exclusive_group()
    onnx.add_argument("--onnx", dest="onnx", action="store_true", default=None,
                      help="write inference.onnx (default: when paddle2onnx is installed)")
    onnx.add_argument("--no-onnx", dest="onnx", action="store_false", help="do not write inference.onnx")
    parser.add_argument("--quantize", choices=QUANTIZE_CHOICES, help="also write an int8 model (ONNX Runtime)")
    parser.add_argument("--calib-images", type=positive_int,
                        help=f"Eval images to calibrate int8 with (default {DEFAULT_CALIB_IMAGES}, or all if fewer)")
    parser.add_argument("--max-drop", type=drop_points,
                        help=f"largest top-1 loss of int8 vs fp32, in points (default {DEFAULT_MAX_DROP:g})")


def main(argv=None, prog=None):
    def export(engine, args):
        if args.quantize is None and (args.calib_images is not None or args.max_drop is not None):
            raise ConfigError("--calib-images and --max-drop apply to --quantize int8, which was not given")
        return engine.export(softmax=not args.no_softmax, onnx=args.onnx, quantize=args.quantize,
                             calib_images=args.calib_images, max_drop=args.max_drop)

    written = run_engine(__doc__, "export", argv, export, add_arguments, prog=prog)
    for kind, path in written.items():
        print(f"{kind}: {path}")
