"""Classify images with an exported inference model (see tools/export_model.py).

    python tools/predict.py --model-dir inference/resnet50 --input img.jpg|DIR|"GLOB" [--top-k 5]
        [--batch-size 8] [--device cpu|gpu] [--backend auto|paddle|onnxruntime] [--json out.json]
    python tools/predict.py --model-dir inference/resnet50 --input DIR --benchmark [--benchmark-batch-sizes 1 8 16]
"""
import sys

from paddle_resnet.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
