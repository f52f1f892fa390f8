"""Classify images with an exported inference model (see tools/export_model.py).

    python tools/predict.py --model-dir inference/resnet50 --input img.jpg|DIR|"GLOB" [--top-k 5]
        [--batch-size 8] [--device cpu|gpu] [--backend auto|paddle|onnxruntime] [--precision fp32|bf16|int8]
        [--json out.json]
    python tools/predict.py --model-dir inference/resnet50 --input DIR --output preds.jsonl [--resume] [--workers N]
    python -m paddle.distributed.launch --nproc_per_node 2 tools/predict.py ... --output preds.jsonl
    python tools/predict.py --model-dir inference/resnet50 --input DIR --benchmark [--benchmark-batch-sizes 1 8 16]
    python tools/predict.py -c deploy/configs/inference_cls.yaml [-o Global.infer_imgs=DIR] [--model-dir DIR]

--model-dir may also be an inference model exported by PaddleClas (no inference.yml): it is preprocessed as
PaddleClas's predict_cls.py does. -c reads PaddleClas's deploy config (Global, PreProcess, PostProcess);
arguments given on the command line win over its values.

A folder is walked recursively (names sorted within each folder). Images are decoded in --workers processes
while the model runs. --output writes one JSON object per file and line as it goes, with a progress bar,
after a first line {"predict": {...}} naming the model (a sha256 of its files and preprocessing), --top-k,
backend, precision and device. --resume skips the files an interrupted run already wrote, whatever the
spelling of --input (dir, ./dir/, /abs/dir; relative paths are resolved in the current folder). It refuses a
file that predict.py did not write and one begun by another model or with other options. Under
paddle.distributed.launch each process predicts every N-th file into <output stem>.rank<r>.jsonl, and rank 0
merges them into --output.

Every record has "path", "class_ids", "scores", "label_names" and "error". A file that cannot be read (not an
image, a FIFO or device: "not a regular file") or for which the model gives non-finite scores has its error
and empty lists; scores are never NaN. A file name that is not valid UTF-8 is written (and printed) with its
undecodable bytes as \\xNN, and its exact bytes are in "path_bytes" (base64; --json: "input_bytes").

Exit codes: 0 done; 1 a user error (one line on stderr: a missing --input, a bad model folder, an output
that cannot be written; the records written so far are kept) or no input could be read; 2 a malformed
command line (argparse's usage error, e.g. --cpu-threads 1000: at most 64).
"""
import json
import logging
import sys
from pathlib import Path

from ..deploy.backends import BACKENDS, DEVICES, PRECISIONS
from ..deploy.predictor import printable
from .common import check_path_lengths, fail, positive_int, thread_count, tool_parser, worker_count


def print_predictions(predictions):
    for prediction in predictions:
        if prediction.skipped:
            print(printable(f"{prediction.input}: SKIPPED ({prediction.error})"))
            continue
        ranked = ", ".join(f"{name} {score:.4f}" for name, score in zip(prediction.label_names, prediction.scores))
        print(printable(f"{prediction.input}: {ranked}"))


def parse_args(argv, prog=None):
    parser = tool_parser(__doc__, prog)
    parser.add_argument("--model-dir", help="directory with inference.yml and the model files "
                                            "(default with -c: Global.inference_model_dir)")
    parser.add_argument("--input", help="an image, a directory of images, or a glob pattern "
                                        "(default with -c: Global.infer_imgs)")
    parser.add_argument("-c", "--config", help="PaddleClas's deploy config, e.g. deploy/configs/inference_cls.yaml")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="Section.key=value",
                        help="override a value of the -c config; repeatable")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="default: 8")
    parser.add_argument("--top-k", type=positive_int, default=None, help="default: 5")
    parser.add_argument("--device", default=None, choices=DEVICES, help="default: cpu")
    parser.add_argument("--backend", default=None, choices=BACKENDS, help="default: auto")
    parser.add_argument("--precision", default=None, choices=PRECISIONS,
                        help="int8 on CPU: the model of export_model.py --quantize int8; bf16: CPUs with avx512_bf16 / "
                             "AMX (Paddle Inference); fp16: GPU (default: fp32)")
    parser.add_argument("--cpu-threads", type=thread_count, default=None,
                        help="default: this process's share of the cores (all of them without distributed launch)")
    parser.add_argument("--workers", type=worker_count, default=None,
                        help="processes decoding images while the model runs (0: decode in the main process); "
                             "default: this process's share of the cores")
    parser.add_argument("--json", help="also write the predictions to this JSON file")
    parser.add_argument("--output", help="write the predictions to this JSON Lines file as they are made, one "
                                         "line per file, with a progress bar instead of a line per file")
    parser.add_argument("--resume", action="store_true",
                        help="skip the files already in --output (after an interrupted run)")
    parser.add_argument("--benchmark", action="store_true",
                        help="time the model with and without preprocessing instead of printing predictions")
    parser.add_argument("--benchmark-batch-sizes", type=positive_int, nargs="+", default=[1, 8, 16])
    args = parser.parse_args(argv)
    if args.resume and not args.output:
        parser.error("--resume continues an --output file: add --output")
    if not args.config:
        for name in ("model_dir", "input"):
            if getattr(args, name) is None:
                parser.error(f"--{name.replace('_', '-')} is required (or -c with Global.{PADDLECLAS_KEYS[name]})")
        if args.override:
            parser.error("-o overrides a value of the -c config; give -c")
    return args


PADDLECLAS_KEYS = {"model_dir": "inference_model_dir", "input": "infer_imgs"}
DEFAULTS = {"batch_size": 8, "top_k": 5, "device": "cpu", "backend": "auto"}


def apply_deploy_config(args):
    """Fills the arguments not given on the command line from the -c config, then from DEFAULTS."""
    args.deploy = None
    if args.config:
        from ..deploy.paddleclas import read_deploy_config
        from ..errors import ConfigError
        args.deploy = read_deploy_config(args.config, args.override)
        options = args.deploy.predictor_options
        given = {"model_dir": args.deploy.model_dir, "input": args.deploy.infer_imgs, "top_k": args.deploy.top_k,
                 "batch_size": args.deploy.batch_size, "device": options.get("device"),
                 "backend": options.get("backend"), "cpu_threads": options.get("cpu_threads")}
        for name, value in given.items():
            if getattr(args, name) is None:
                setattr(args, name, value)
        for name in ("model_dir", "input"):
            if getattr(args, name) is None:
                raise ConfigError(f"{args.config}: Global.{PADDLECLAS_KEYS[name]} is not set; set it or give "
                                  f"--{name.replace('_', '-')}")
    for name, value in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def main(argv=None, prog=None):
    args = parse_args(argv, prog)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    logging.getLogger("paddle_resnet.deploy.paddleclas").setLevel(logging.INFO)  # says where preprocessing came from
    from ..errors import UserError, short_repr
    try:
        check_path_lengths(config=args.config, model_dir=args.model_dir, input=args.input, output=args.output,
                           json=args.json)
        apply_deploy_config(args)
        check_path_lengths(model_dir=args.model_dir, input=args.input)  # as the -c config gave them
    except UserError as error:
        return fail(prog, error)
    from ..cpu import cores_per_process
    from ..deploy.folder_prediction import InputFiles

    inputs = InputFiles(args.input)
    if inputs.is_empty():
        return fail(prog, f"--input {short_repr(args.input)} matches no image file")
    if args.workers is None:
        args.workers = cores_per_process()
    try:
        if args.benchmark:
            return benchmark(args, list(inputs))
        if args.output:
            return predict_to_file(args, inputs, prog)
        return predict_to_stdout(args, inputs, prog)
    # FileNotFoundError: a model directory or file that is not there, however deep it is noticed.
    except (UserError, FileNotFoundError) as error:  # anything else is a bug and keeps its traceback
        return fail(prog, error)


def build_predictor(args):
    from ..cpu import cores_per_process
    from ..deploy import Predictor

    batch_sizes = [args.batch_size, *(args.benchmark_batch_sizes if args.benchmark else [])]
    options = {key: value for key, value in (args.deploy.predictor_options if args.deploy else {}).items()
               if key in ("use_mkldnn", "use_tensorrt", "precision")}
    if args.precision is not None:  # given on the command line: wins over the -c config's use_fp16 / use_int8
        options["precision"] = args.precision
    return Predictor(args.model_dir, backend=args.backend, device=args.device,
                     cpu_threads=args.cpu_threads or cores_per_process(), max_batch_size=max(batch_sizes),
                     paddleclas_config=args.deploy, **options)


def benchmark(args, images):
    from ..deploy.benchmark import benchmark_predictor, timings_table

    predictor = build_predictor(args)
    timings = benchmark_predictor(predictor, images, args.benchmark_batch_sizes)
    print(f"{args.model_dir} on {predictor.backend_name}, device={args.device}")
    print(timings_table(timings))
    return 0


def predict_to_stdout(args, inputs, prog=None):
    import paddle.distributed as dist

    from ..deploy.folder_prediction import predict_stream
    from ..errors import InputError, OutputError
    from ..fileio import check_replaceable, write_atomically

    if dist.get_world_size() > 1:
        raise InputError("under paddle.distributed.launch each process writes its share of the files to a file "
                         "of its own: add --output preds.jsonl")
    if args.json:
        try:  # before the work, not after it
            check_replaceable(args.json)
        except OutputError as err:
            return fail(prog, f"cannot write --json {args.json}: {err.reason}")
    predictor = build_predictor(args)
    collected, count, skipped = [], 0, 0
    for predictions in predict_stream(predictor, inputs, top_k=args.top_k, batch_size=args.batch_size,
                                      workers=args.workers):
        print_predictions(predictions)
        count += len(predictions)
        skipped += sum(p.skipped for p in predictions)
        if args.json:
            collected.extend(predictions)
    if args.json:
        text = json.dumps([p.to_dict() for p in collected], indent=2, allow_nan=False)
        try:
            write_atomically(args.json, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        except OutputError as err:
            return fail(prog, f"cannot write --json {args.json}: {err.reason}")
    return report_unreadable(prog, count, skipped)


def report_unreadable(prog, count, skipped):
    if count and skipped == count:
        return fail(prog, f"none of the {skipped} inputs could be read")
    if skipped:
        print(f"{skipped} of {count} inputs could not be read and were skipped", file=sys.stderr)
    return 0


def predict_to_file(args, inputs, prog=None):
    import paddle.distributed as dist

    from ..deploy.folder_prediction import FolderPrediction, start_together

    rank, world_size = dist.get_rank(), dist.get_world_size()
    job = FolderPrediction(inputs, args.output, resume=args.resume, rank=rank, world_size=world_size)
    try:
        if world_size > 1:
            start_together()
        summary = job.run(build_predictor(args), top_k=args.top_k, batch_size=args.batch_size, workers=args.workers)
        job.finish()
    finally:
        job.close()
    written = job.target + (f", merged into {args.output}" if rank == 0 and job.sharded else "")
    print(f"{summary.predicted} images predicted, {summary.unreadable} unreadable (listed with their error), "
          f"{summary.already_done} already in the output: {written}", file=sys.stderr)
    if world_size > 1:  # a rank whose share is unreadable must not fail the others' run
        return 0
    return report_unreadable(prog, summary.predicted + summary.unreadable, summary.unreadable)
