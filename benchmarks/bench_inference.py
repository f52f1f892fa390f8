"""CPU inference throughput of one model: dygraph, Paddle Inference with and without oneDNN, ONNX Runtime.

    python benchmarks/bench_inference.py [--model resnet50] [--size 224] [--batch-sizes 1 8 16]
        [--rounds 2] [--seconds 3] [--threads N] [--knobs] [--jpeg-folder 2000 [--workers N]]

All configurations run in each of ``--rounds`` rounds, interleaved, so that load from other processes
falls on all of them alike; a row gives percentiles over every timed call of all rounds. Ratios between
rows of one run are the result; absolute numbers move with the machine's load. numpy's fp32 GEMM
(2048 x 2048, same thread count) is measured in the same rounds as a practical ceiling.
``--knobs`` adds the Paddle Inference / ONNX Runtime switches tried when looking for the gap between them.
``--jpeg-folder N`` adds a table of its own: ``predict.py --output``'s code predicting a folder of N real
JPEGs (scikit-image's photos at assorted sizes) end to end, against the same predictor on pre-decoded
batches of those photos, interleaved in each round (see ``jpeg_folder_rows``).
"""
import argparse
import itertools
import os
import sys
import tempfile


GEMM_SIZE = 2048


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0, help="minimum timed seconds per row and round")
    parser.add_argument("--threads", type=int, default=None, help="default: all cores")
    parser.add_argument("--knobs", action="store_true", help="also time the switches investigated")
    parser.add_argument("--jpeg-folder", type=int, default=0, metavar="N",
                        help="also predict a folder of N JPEG files, against the same model on pre-decoded batches")
    parser.add_argument("--workers", type=int, default=None,
                        help="decoding processes for --jpeg-folder (default: predict.py's)")
    return parser.parse_args()


def configurations(model, model_dir, threads, knobs):
    """name -> factory of ``run(batch)``; a factory may raise (the row then reports the error)."""
    import paddle

    from paddle_resnet.deploy import Predictor
    from paddle_resnet.deploy.backends import (OnnxRuntimeBackend, PaddleInferenceBackend, RuntimeOptions,
                                               paddle_inference_config)
    from paddle_resnet.deploy.model_dir import InferenceConfig, locate_model_files

    def dygraph(batch):
        with paddle.no_grad():
            return model(paddle.to_tensor(batch)).numpy()

    def predictor(**kwargs):
        return lambda: Predictor(model_dir, cpu_threads=threads, **kwargs).run

    files = locate_model_files(model_dir, InferenceConfig.load(model_dir))

    def paddle_with(tweak, **option_overrides):
        def build():
            options = RuntimeOptions(**{"cpu_threads": threads, **option_overrides})
            config = paddle_inference_config(files.program, files.params, options)
            tweak(config)
            return PaddleInferenceBackend(config).run
        return build

    rows = {
        "dygraph eval": lambda: dygraph,
        "Paddle Inference + oneDNN": predictor(backend="paddle"),
        "Paddle Inference, no oneDNN": predictor(backend="paddle", use_mkldnn=False),
        "ONNX Runtime": predictor(backend="onnxruntime"),
    }
    if knobs:
        rows.update({
            "PI + oneDNN, IR optim off": paddle_with(lambda c: c.switch_ir_optim(False)),
            "PI + oneDNN, oneDNN cache 10 shapes": paddle_with(lambda c: c.set_mkldnn_cache_capacity(10)),
            "PI + oneDNN, 1 thread": paddle_with(lambda c: None, cpu_threads=1),
            "ONNX Runtime, 1 thread": lambda: OnnxRuntimeBackend(files.onnx, RuntimeOptions(cpu_threads=1)).run,
            "ONNX Runtime, no spin-wait": lambda: OnnxRuntimeBackend(
                files.onnx, RuntimeOptions(cpu_threads=threads),
                session_config={"session.intra_op.allow_spinning": "0"}).run,
        })
    return rows


def run_rounds(args, model, model_dir, threads):
    """-> ({(name, batch size): seconds of every timed call}, {name: error of a configuration that failed})."""
    import numpy as np

    from paddle_resnet.deploy.benchmark import time_calls

    rng = np.random.default_rng(0)
    batches = {bs: rng.standard_normal((bs, 3, args.size, args.size), dtype=np.float32) for bs in args.batch_sizes}
    gemm_a, gemm_b = (rng.standard_normal((GEMM_SIZE, GEMM_SIZE), dtype=np.float32) for _ in range(2))
    factories = configurations(model, model_dir, threads, args.knobs)
    runners, failures, seconds = {}, {}, {}
    for round_index in range(args.rounds):
        seconds.setdefault(("GEMM", 1), []).extend(time_calls(lambda: gemm_a @ gemm_b, min_seconds=1.0))
        for name, factory in factories.items():
            if name in failures:
                continue
            try:
                runners[name] = runners.get(name) or factory()
                for bs, batch in batches.items():
                    seconds.setdefault((name, bs), []).extend(
                        time_calls(lambda: runners[name](batch), warmup=1, min_runs=2, min_seconds=args.seconds))
            except Exception as error:  # a knob that breaks the runtime is a finding, not a crash
                failures[name] = f"{type(error).__name__}: {str(error).strip().splitlines()[-1][:200]}"
            print(f"round {round_index + 1}/{args.rounds}: {name} done", file=sys.stderr, flush=True)
    return seconds, failures


def write_jpeg_folder(folder, count, seed=0):
    """``count`` JPEGs (quality 90) of scikit-image's photos, each scaled to a longer side of 320-800 pixels."""
    import numpy as np
    import skimage.data
    from PIL import Image

    names = ["astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
             "camera", "coins", "moon"]
    photos = [Image.fromarray(getattr(skimage.data, name)()) for name in names]
    rng = np.random.default_rng(seed)
    for index in range(count):
        photo = photos[index % len(photos)]
        scale = rng.uniform(320, 800) / max(photo.size)
        size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
        photo.resize(size, Image.BILINEAR).save(os.path.join(folder, f"{index:06d}.jpg"), quality=90)


def jpeg_folder_rows(args, model_dir, threads):
    """Batch prediction of a JPEG folder vs the model alone: one Predictor (predict.py's default backend),
    batch ``args.batch_sizes[-1]``. Round r of R predicts the r-th of R shards of the folder (every R-th file,
    as rank r of R processes would: the whole walk, decoding in worker processes, model, JSON Lines with
    fsync per batch, and starting the worker pool) and, just before, times the model on pre-decoded batches
    of the same photos for as many images, so both sides see the same background load. Each row's figures
are over the rounds' mean seconds per batch. -> a markdown table."""
    import time

    from paddle_resnet.cpu import cores_per_process
    from paddle_resnet.deploy import Predictor
    from paddle_resnet.deploy.batch_predict import FolderPrediction, InputFiles
    from paddle_resnet.deploy.benchmark import Timing, time_calls, timings_table

    batch_size, workers = args.batch_sizes[-1], args.workers if args.workers is not None else cores_per_process()
    predictor = Predictor(model_dir, cpu_threads=threads, max_batch_size=batch_size)
    with tempfile.TemporaryDirectory(prefix="bench_jpeg_folder-") as workdir:
        folder = os.path.join(workdir, "photos")
        os.mkdir(folder)
        write_jpeg_folder(folder, args.jpeg_folder)
        inputs = InputFiles(folder)
        batch = predictor.preprocess(list(itertools.islice(inputs, batch_size)))
        decoded, from_folder, predicted = [], [], 0
        for round_index in range(args.rounds):
            job = FolderPrediction(inputs, os.path.join(workdir, "preds.jsonl"), rank=round_index,
                                   world_size=args.rounds)
            images = sum(1 for _ in job.todo())
            calls = time_calls(lambda: predictor.run(batch), warmup=1, min_runs=-(-images // batch_size),
                               min_seconds=0)
            decoded.append(sum(calls) / len(calls))  # like the folder row: one mean per round
            started = time.perf_counter()
            summary = job.run(predictor, batch_size=batch_size, workers=workers, progress=False)
            from_folder.append((time.perf_counter() - started) * batch_size / images)
            job.close()
            assert summary.predicted == images, summary
            predicted += images
            print(f"round {round_index + 1}/{args.rounds}: JPEG folder, {images} files done", file=sys.stderr,
                  flush=True)
        assert predicted == args.jpeg_folder
    reference = f"{predictor.backend_name}, pre-decoded batches"
    timings = [Timing.from_seconds(reference, batch_size, decoded),
               Timing.from_seconds(f"folder of {args.jpeg_folder} JPEGs, {workers} decoding workers", batch_size,
                                   from_folder)]
    return timings_table(timings, reference=reference)


def main():
    args = parse_args()
    threads = args.threads or len(os.sched_getaffinity(0))
    # Before numpy and paddle start their thread pools, so GEMM and dygraph use the same thread count.
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(threads)
    import paddle

    from paddle_resnet import build_model, count_flops
    from paddle_resnet.deploy import export_inference
    from paddle_resnet.deploy.benchmark import Timing, timings_table

    paddle.seed(0)
    model = build_model(args.model)
    model.eval()
    gflop_per_image = 2 * count_flops(model, args.size) / 1e9
    eval_ops = [{"DecodeImage": {}}, {"ResizeImage": {"resize_short": args.size * 8 // 7}},
                {"CropImage": {"size": args.size}}, {"NormalizeImage": {"order": ""}}, "ToCHWImage"]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_inference-") as workdir:
        export_inference(model, workdir, image_shape=(3, args.size, args.size), eval_ops=eval_ops, onnx=True,
                         model_name=args.model)
        seconds, failures = run_rounds(args, model, workdir, threads)
        folder_table = jpeg_folder_rows(args, workdir, threads) if args.jpeg_folder else None

    gemm = Timing.from_seconds("GEMM", 1, seconds.pop(("GEMM", 1)))
    gemm_gflops = 2 * GEMM_SIZE ** 3 * gemm.images_per_s / 1e9
    timings = [Timing.from_seconds(name, bs, calls) for (name, bs), calls in seconds.items()]
    timings.sort(key=lambda t: (t.batch_size, -t.images_per_s))
    print(f"\n{args.model} at {args.size}x{args.size}: {gflop_per_image:.2f} GFLOP per image; {threads} threads; "
          f"Paddle {paddle.__version__}; load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print(timings_table(timings, gflop_per_image, gemm_gflops, reference="dygraph eval"))
    print(f"\nceiling: numpy fp32 GEMM {GEMM_SIZE}x{GEMM_SIZE}, {threads} threads: {gemm_gflops:.1f} GFLOP/s")
    for name, error in failures.items():
        print(f"failed: {name}: {error}")
    if folder_table:
        print(f"\n{folder_table}")


if __name__ == "__main__":
    main()
