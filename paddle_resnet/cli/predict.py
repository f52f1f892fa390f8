"""Classify images with an exported inference model (see tools/export_model.py).

    python tools/predict.py --model-dir inference/resnet50 --input img.jpg|DIR|"GLOB" [--top-k 5]
        [--batch-size 8] [--device cpu|gpu] [--backend auto|paddle|onnxruntime] [--precision fp32|int8] [--json out.json]
    python tools/predict.py --model-dir inference/resnet50 --input DIR --benchmark [--benchmark-batch-sizes 1 8 16]
"""
import argparse
import glob
import json
import logging
import os
import sys
from pathlib import Path

from .common import fail, positive_int, program_name



def find_files(pattern):
    """A file, the files in a directory (sorted, not recursive), or the files a glob matches."""
    path = Path(pattern)
    if path.is_file():
        return [str(path)]
    if path.is_dir():
        return sorted(str(p) for p in path.iterdir() if p.is_file())
    return sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))


def print_predictions(predictions):
    for prediction in predictions:
        if prediction.skipped:
            print(f"{prediction.input}: SKIPPED ({prediction.error})")
            continue
        ranked = ", ".join(f"{name} {score:.4f}" for name, score in zip(prediction.label_names, prediction.scores))
        print(f"{prediction.input}: {ranked}")


def parse_args(argv, prog=None):
    parser = argparse.ArgumentParser(prog=program_name(prog), description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="directory with inference.yml and the model files")
    parser.add_argument("--input", required=True, help="an image, a directory of images, or a glob pattern")
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument("--top-k", type=positive_int, default=5)
    parser.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--backend", default="auto", choices=["auto", "paddle", "onnxruntime"])
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"],
                        help="int8 on CPU: the model of export_model.py --quantize int8; fp16: GPU")
    parser.add_argument("--cpu-threads", type=positive_int, default=None,
                        help="default: all cores this process may run on")
    parser.add_argument("--json", help="also write the predictions to this JSON file")
    parser.add_argument("--benchmark", action="store_true",
                        help="time the model with and without preprocessing instead of printing predictions")
    parser.add_argument("--benchmark-batch-sizes", type=positive_int, nargs="+", default=[1, 8, 16])
    return parser.parse_args(argv)


def main(argv=None, prog=None):
    args = parse_args(argv, prog)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    no_match = f"--input {args.input!r} matches no image file"
    files = find_files(args.input)
    if not files:
        return fail(prog, no_match, exit_code=2)
    # Imported only now, so that a wrong --input fails at once instead of after paddle's slow import.
    from ..data.datasets import is_image_file
    from ..errors import UserError

    # A single file is tried whatever its name; in a directory or glob, only image files are taken.
    images = files if Path(args.input).is_file() else [f for f in files if is_image_file(f)]
    if not images:
        return fail(prog, no_match, exit_code=2)
    try:
        return run(args, images, prog)
    # FileNotFoundError: a model directory or file that is not there, however deep it is noticed.
    except (UserError, FileNotFoundError) as error:  # anything else is a bug and keeps its traceback
        return fail(prog, error)


def run(args, images, prog=None):
    from ..deploy import Predictor
    from ..deploy.benchmark import benchmark_predictor, timings_table
    from ..fileio import write_atomically

    predictor = Predictor(args.model_dir, backend=args.backend, device=args.device, cpu_threads=args.cpu_threads,
                          precision=args.precision,
                          max_batch_size=max([args.batch_size, *args.benchmark_batch_sizes]))
    if args.benchmark:
        timings = benchmark_predictor(predictor, images, args.benchmark_batch_sizes)
        print(f"{args.model_dir} on {predictor.backend_name}, device={args.device}")
        print(timings_table(timings))
        return 0

    predictions = predictor.predict(images, top_k=args.top_k, batch_size=args.batch_size)
    print_predictions(predictions)
    if args.json:
        text = json.dumps([p.to_dict() for p in predictions], indent=2)
        try:
            write_atomically(args.json, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        except OSError as err:  # the message would name the temporary file
            return fail(prog, f"cannot write --json {args.json}: {err.strerror}")
    skipped = sum(p.skipped for p in predictions)
    if skipped == len(predictions):
        return fail(prog, f"none of the {skipped} inputs could be read")
    if skipped:
        print(f"{skipped} of {len(predictions)} inputs could not be read and were skipped", file=sys.stderr)
    return 0
