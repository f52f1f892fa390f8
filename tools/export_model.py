"""Export to Paddle's inference format:

    python tools/export_model.py -c configs/X.yaml -o Global.pretrained_model=output/best \
        -o Global.save_inference_dir=inference/X [--no-softmax] [--onnx]
"""
import sys

from paddle_resnet.cli.export_model import main

if __name__ == "__main__":
    sys.exit(main())
