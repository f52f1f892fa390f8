"""Export to Paddle's inference format:

    python tools/export_model.py -c configs/X.yaml -o Global.pretrained_model=output/best \
        -o Global.save_inference_dir=inference/X [--no-softmax] [--onnx]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddle_resnet.tools_common import run_engine  # noqa: E402


def add_arguments(parser):
    parser.add_argument("--no-softmax", action="store_true", help="export logits instead of probabilities")
    parser.add_argument("--onnx", action="store_true", help="also write inference.onnx (needs paddle2onnx)")


def main(argv=None):
    written = run_engine(__doc__, "export", argv,
                         lambda engine, args: engine.export(softmax=not args.no_softmax, onnx=args.onnx),
                         add_arguments)
    for kind, path in written.items():
        print(f"{kind}: {path}")


if __name__ == "__main__":
    main()
