"""Export to Paddle's inference format:

    python tools/export_model.py -c configs/X.yaml -o Global.pretrained_model=output/best \
        -o Global.save_inference_dir=inference/X [--no-softmax] [--onnx]
"""
from .common import run_engine


def add_arguments(parser):
    parser.add_argument("--no-softmax", action="store_true", help="export logits instead of probabilities")
    parser.add_argument("--onnx", action="store_true", help="also write inference.onnx (needs paddle2onnx)")


def main(argv=None, prog=None):
    written = run_engine(__doc__, "export", argv,
                         lambda engine, args: engine.export(softmax=not args.no_softmax, onnx=args.onnx),
                         add_arguments, prog=prog)
    for kind, path in written.items():
        print(f"{kind}: {path}")
