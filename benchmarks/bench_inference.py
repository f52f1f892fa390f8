"""CPU inference throughput of one model: dygraph, Paddle Inference with and without oneDNN, ONNX Runtime.

    python benchmarks/bench_inference.py [--model resnet50] [--size 224] [--batch-sizes 1 8 16]
        [--rounds 2] [--seconds 3] [--threads N] [--knobs] [--jpeg-folder 2000 [--workers N]]

All configurations run in each of ``--rounds`` rounds, interleaved, so that load from other processes
falls on all of them alike; a row gives percentiles over every timed call of all rounds. Ratios between
rows of one run are the result; absolute numbers move with the machine's load. numpy's fp32 GEMM
(2048 x 2048, same thread count) is measured in the same rounds as a practical ceiling.
``--knobs`` adds the Paddle Inference / ONNX Runtime switches tried when looking for the gap between them.
``--jpeg-folder N`` adds two tables of their own: ``predict.py --output``'s code predicting a folder of N real
JPEGs (scikit-image's photos at assorted sizes) end to end, against the same predictor on pre-decoded
batches of those photos, paired batch by batch and interleaved in each round (see ``jpeg_folder_rows``).

    python benchmarks/bench_inference.py --precision [--models resnet18 resnet50] [--batch-sizes 1 8 16]

``--precision`` instead times fp32, bf16 and int8 side by side for each model and backend: Paddle Inference +
oneDNN fp32, ONNX Runtime fp32, Paddle Inference + oneDNN bf16 (``precision="bf16"``: the fp32 export on
oneDNN's bfloat16 kernels; a CPU without avx512_bf16 / AMX reports the row as failed), ONNX Runtime int8 (the
model ``export_model.py --quantize int8`` writes, calibrated on crops of scikit-image's photos) and Paddle
Inference + oneDNN int8 (Paddle's PostTrainingQuantization on the legacy program format, run with
``enable_mkldnn_int8``); each row's speed is also given as a ratio to the fastest fp32 row of its model and
batch size. With imgsim installed, resnet50 is a fine-tuned model with real trained weights: imgsim's trained
ResNet-50 backbone with a 20-way head (which of scikit-image's photos a crop comes from) fitted on 320 crops
(``photo_classifier``). The bf16 and int8 models' top-1 agreement with their backend's fp32, and the top-1 of
all, are printed for 400 other crops of the photos; so is the agreement of imgsim's own 768-way embedding head
(int8), for comparison.
"""
import argparse
import itertools
import os
import subprocess
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
    parser.add_argument("--precision", action="store_true", help="fp32 vs int8 rows for --models (see above)")
    parser.add_argument("--models", nargs="+", default=["resnet18", "resnet50"], help="with --precision")
    return parser.parse_args()


def configurations(model, model_dir, threads, knobs):
    """name -> factory of ``run(batch)``; a factory may raise (the row then reports the error)."""
    import paddle

    from paddle_resnet.deploy import Predictor
    from paddle_resnet.deploy.backends import (SPINNING_STOP, OnnxRuntimeBackend, PaddleInferenceBackend,
                                               RuntimeOptions, paddle_inference_config)
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
            "ONNX Runtime, threads spinning between runs": lambda: OnnxRuntimeBackend(
                files.onnx, RuntimeOptions(cpu_threads=threads), session_config={SPINNING_STOP: "0"}).run,
        })
    return rows


def run_rounds(args, model, model_dir, threads):
    """-> ({(name, batch size): seconds of every timed call}, {name: error of a configuration that failed})."""
    import numpy as np

    from paddle_resnet.deploy.benchmark import time_calls

    rng = np.random.default_rng(0)
    batches = {bs: rng.standard_normal((bs, 3, args.size, args.size), dtype=np.float32) for bs in args.batch_sizes}
    gemm_a, gemm_b = (rng.standard_normal((GEMM_SIZE, GEMM_SIZE), dtype=np.float32) for _ in range(2))

    def gemm(timed):
        timed.setdefault(("GEMM", 1), []).extend(time_calls(lambda: gemm_a @ gemm_b, min_seconds=1.0))
    seconds, failures, _ = time_in_rounds(configurations(model, model_dir, threads, args.knobs), batches,
                                          args.rounds, args.seconds, every_round=gemm)
    return seconds, failures


def time_in_rounds(factories, batches, rounds, min_seconds, every_round=None):
    """Times ``run(batch)`` of each factory's runner on each of ``batches`` ({batch size: batch}), all runners
    interleaved in each of ``rounds`` rounds (``every_round(timed)`` first in each), so that load from other
    processes falls on all of them alike. A factory or runner that raises is a finding, not a crash.
    -> ({(key, batch size): seconds of every timed call}, {key: error}, {key: runner})"""
    from paddle_resnet.deploy.benchmark import time_calls

    runners, failures, timed = {}, {}, {}
    for round_index in range(rounds):
        if every_round is not None:
            every_round(timed)
        for key, factory in factories.items():
            if key in failures:
                continue
            try:
                runners[key] = runners.get(key) or factory()
                for bs, batch in batches.items():
                    timed.setdefault((key, bs), []).extend(time_calls(
                        lambda: runners[key](batch), warmup=1, min_runs=2, min_seconds=min_seconds))
            except Exception as error:  # noqa: BLE001  e.g. a knob or int8 kernel this runtime rejects
                failures[key] = f"{type(error).__name__}: {str(error).strip().splitlines()[-1][:300]}"
            label = " ".join(key) if isinstance(key, tuple) else key
            print(f"round {round_index + 1}/{rounds}: {label} done", file=sys.stderr, flush=True)
    return timed, failures, runners


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
    fsync per batch, and starting the workers) with each decoding schedule (``folder_prediction.should_decode_ahead``).

    Two comparisons, -> two markdown tables:
    * **Paired per batch**, for the schedule that decodes each batch between model calls: after each of the
      folder's model calls the same predictor also runs on a pre-decoded batch of the same photos, timed
      apart and taken out of the folder's time. Both rates are measured within the same second, so this
      machine's drift (its speed moves by +-10% from one minute to the next) cancels. Decoding ahead
      overlaps the model, so it would slow the paired call too: it is not paired.
    * **Interleaved rounds**: just before the folder runs, each round times the model alone on pre-decoded
      batches for as many images, and (ONNX Runtime) once more with its threads spinning between runs (ORT's
      default, which the product turns off: ``backends.SPINNING_STOP``); every folder row is compared with
      the faster of the two. Each row's figures are over the rounds' mean seconds per batch."""
    import time

    from paddle_resnet.cpu import cores_per_process
    from paddle_resnet.deploy import Predictor
    from paddle_resnet.deploy.backends import SPINNING_STOP, OnnxRuntimeBackend
    from paddle_resnet.deploy.folder_prediction import FolderPrediction, InputFiles, should_decode_ahead
    from paddle_resnet.deploy.benchmark import Timing, time_calls, timings_table

    batch_size, workers = args.batch_sizes[-1], args.workers if args.workers is not None else cores_per_process()
    predictor = Predictor(model_dir, cpu_threads=threads, max_batch_size=batch_size)
    models = {f"{predictor.backend_name}, pre-decoded batches": predictor.run}
    if predictor.backend_name == "onnxruntime":
        models[f"{predictor.backend_name}, pre-decoded batches, threads spinning between runs"] = OnnxRuntimeBackend(
            predictor.files.onnx, predictor.options, session_config={SPINNING_STOP: "0"}).run
    chosen = should_decode_ahead(predictor, workers)
    schedules = {chosen: "predict.py's choice here", not chosen: "the other schedule"}
    decoded, from_folder, paired = {name: [] for name in models}, {ahead: [] for ahead in schedules}, []
    with tempfile.TemporaryDirectory(prefix="bench_jpeg_folder-") as workdir:
        folder = os.path.join(workdir, "photos")
        os.mkdir(folder)
        write_jpeg_folder(folder, args.jpeg_folder)
        inputs = InputFiles(folder)
        batch = predictor.preprocess(list(itertools.islice(inputs, batch_size)))
        predicted = 0
        for round_index in range(args.rounds):
            for ahead in schedules:
                job = FolderPrediction(inputs, os.path.join(workdir, f"preds_{ahead}.jsonl"), rank=round_index,
                                       world_size=args.rounds)
                images = sum(1 for _ in job.todo())
                for name, run in models.items() if ahead == chosen else ():
                    calls = time_calls(lambda: run(batch), warmup=1, min_runs=-(-images // batch_size), min_seconds=0)
                    decoded[name].append(sum(calls) / len(calls))  # like the folder rows: one mean per round
                pairs = [] if not ahead else None
                if pairs is not None:
                    predictor.run = paired_with(predictor.run, batch, pairs)
                started = time.perf_counter()
                try:
                    summary = job.run(predictor, batch_size=batch_size, workers=workers, progress=False,
                                      decode_ahead=ahead)
                finally:
                    vars(predictor).pop("run", None)
                    job.close()
                folder_seconds = time.perf_counter() - started - sum(pairs or [])
                from_folder[ahead].append(folder_seconds * batch_size / images)
                if pairs is not None:
                    paired.append((folder_seconds / images, sum(pairs) / (len(pairs) * batch_size)))
                assert summary.predicted == images, summary
                predicted += images
            print(f"round {round_index + 1}/{args.rounds}: JPEG folder, {images} files done", file=sys.stderr,
                  flush=True)
        assert predicted == 2 * args.jpeg_folder
    describe = {True: "decoding ahead of the model", False: "each batch decoded between model calls"}
    between_row = f"folder of {args.jpeg_folder} JPEGs, {workers} decoding workers, {describe[False]}"
    pre_decoded = f"{predictor.backend_name}, pre-decoded batch after each of the folder's model calls"
    paired_table = timings_table([Timing.from_seconds(pre_decoded, batch_size, [b * batch_size for _, b in paired]),
                                  Timing.from_seconds(between_row, batch_size, [f * batch_size for f, _ in paired])],
                                 reference=pre_decoded)
    per_round = ", ".join(f"{b / f:.3f}" for f, b in paired)
    timings = [Timing.from_seconds(name, batch_size, seconds) for name, seconds in decoded.items()]
    reference = min(decoded, key=lambda name: sum(decoded[name]))
    for ahead, which in schedules.items():
        timings.append(Timing.from_seconds(f"folder of {args.jpeg_folder} JPEGs, {workers} decoding workers, "
                                           f"{describe[ahead]} ({which})", batch_size, from_folder[ahead]))
    return (f"Paired per batch ({describe[False]}; folder / pre-decoded per round: {per_round}):\n\n"
            f"{paired_table}\n\nInterleaved rounds:\n\n{timings_table(timings, reference=reference)}")


def paired_with(run, batch, seconds):
    """``run``, followed after each call by a timed ``run(batch)`` whose seconds are appended to ``seconds``."""
    import time

    def paired_run(batch_nchw):
        outputs = run(batch_nchw)
        started = time.perf_counter()
        run(batch)
        seconds.append(time.perf_counter() - started)
        return outputs
    return paired_run


def main():
    args = parse_args()
    threads = args.threads or len(os.sched_getaffinity(0))
    # Before numpy and paddle start their thread pools, so GEMM and dygraph use the same thread count.
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(threads)
    if args.precision:
        return precision_rows(args, threads)
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


# ---------------------------------------------------------------- fp32 vs int8 (--precision)

# scikit-image's 20 distinct photos that ship in its wheel (its cat() is chelsea() again, so it is not here).
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle", "hubble_deep_field",
          "immunohistochemistry", "retina", "colorwheel", "brick", "camera", "clock", "coins", "grass", "gravel",
          "moon", "logo", "cell", "page", "text")


def photo_views(transforms, views_per_photo, seed):
    """Random square crops (half to all of the short side, some mirrored) of scikit-image's photos, preprocessed."""
    import numpy as np
    import skimage.data

    rng = np.random.default_rng(seed)
    views = []
    for name in PHOTOS:
        photo = getattr(skimage.data, name)()
        photo = photo[0] if isinstance(photo, tuple) else photo  # stereo_motorcycle: (left, right, disparity)
        photo = np.stack([photo] * 3, axis=-1) if photo.ndim == 2 else photo[..., :3]
        height, width = photo.shape[:2]
        for index in range(views_per_photo):
            side = int(min(height, width) * rng.uniform(0.5, 1.0))
            top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
            crop = photo[top:top + side, left:left + side]
            views.append(transforms(np.ascontiguousarray(crop[:, ::-1] if index % 2 else crop)))
    return np.stack(views).astype(np.float32)


HELD_OUT_VIEWS = 20  # per photo


def photo_labels(views_per_photo):
    """The photo index of each view ``photo_views`` returns, in its order."""
    import numpy as np
    return np.repeat(np.arange(len(PHOTOS)), views_per_photo)


IMGSIM = "imgsim:resnet50"  # imgsim's trained ResNet-50, a weights name load_pretrained resolves (weights/named.py)


def imgsim_installed():
    from paddle_resnet.errors import MissingFileError
    from paddle_resnet.weights.named import named_weights_path
    try:
        named_weights_path(IMGSIM)
    except MissingFileError:
        return False
    return True


def photo_classifier(weights, size, workdir, threads, train_views, train_labels):
    """imgsim's trained ResNet-50 with its 768-way embedding head replaced by a 20-way classifier of which photo
    a crop comes from, fitted (softmax regression, Adam, 300 full-batch steps) on the fp32 pooled features of
    ``train_views``: a fine-tuned model with real class margins, where imgsim's embedding has ~1% margins.
    -> (the classifier, the embedding model)."""
    import numpy as np
    import paddle

    from paddle_resnet import build_model, load_pretrained
    from paddle_resnet.deploy import export_inference
    from paddle_resnet.deploy.backends import OnnxRuntimeBackend, RuntimeOptions
    from paddle_resnet.deploy.model_dir import ONNX_FILE

    embedding = build_model("resnet50", num_classes=768)
    load_pretrained(embedding, weights)
    embedding.eval()
    backbone = build_model("resnet50", num_classes=0)  # returns the pooled features
    backbone.set_state_dict({k: v for k, v in embedding.state_dict().items() if not k.startswith("fc.")})
    backbone.eval()
    folder = os.path.join(workdir, "backbone")
    export_inference(backbone, folder, image_shape=(3, size, size), eval_ops=eval_ops(size), onnx=True,
                     softmax=False, model_name="resnet50")
    run = OnnxRuntimeBackend(os.path.join(folder, ONNX_FILE), RuntimeOptions(cpu_threads=threads)).run
    features = paddle.to_tensor(np.concatenate([run(train_views[i:i + 8]) for i in range(0, len(train_views), 8)]))
    labels = paddle.to_tensor(train_labels)
    paddle.seed(0)
    head = paddle.nn.Linear(features.shape[1], len(PHOTOS))
    optimizer = paddle.optimizer.Adam(learning_rate=0.01, parameters=head.parameters(), weight_decay=1e-4)
    for _ in range(300):
        paddle.nn.functional.cross_entropy(head(features), labels).backward()
        optimizer.step()
        optimizer.clear_grad()
    classifier = build_model("resnet50", num_classes=len(PHOTOS))
    classifier.set_state_dict({**backbone.state_dict(), "fc.weight": head.weight, "fc.bias": head.bias})
    classifier.eval()
    return classifier, embedding


_LEGACY_EXPORT = """
import sys, paddle
sys.path.insert(0, sys.argv[1])
from paddle_resnet import build_model
model = build_model(sys.argv[2], num_classes=int(sys.argv[3]))
model.set_state_dict(paddle.load(sys.argv[4]))
model.eval()
spec = paddle.static.InputSpec([None, 3, int(sys.argv[5]), int(sys.argv[5])], "float32", "x")
paddle.jit.save(paddle.jit.to_static(model, input_spec=[spec], full_graph=True), sys.argv[6] + "/inference")
"""
_PADDLE_PTQ = """
import sys, numpy as np, paddle
paddle.enable_static()
from paddle.static.quantization import PostTrainingQuantization
calib = np.load(sys.argv[3])
def batches():
    for start in range(0, len(calib), 8):
        yield {"x": calib[start:start + 8]}
ptq = PostTrainingQuantization(executor=paddle.static.Executor(paddle.CPUPlace()), model_dir=sys.argv[1],
                               model_filename="inference.pdmodel", params_filename="inference.pdiparams",
                               data_loader=batches, batch_nums=(len(calib) + 7) // 8, algo="abs_max",
                               quantizable_op_type=["conv2d", "matmul_v2"], onnx_format=True,
                               weight_quantize_type="channel_wise_abs_max")
ptq.quantize()
ptq.save_quantized_model(sys.argv[2], model_filename="inference.pdmodel", params_filename="inference.pdiparams")
"""


def paddle_int8_files(model_name, num_classes, model, size, calib, workdir):
    """Paddle's own PTQ (abs-max activations, channel-wise weights) -> (program, params) of the int8 model.
    Its passes read the legacy program format, not PIR's inference.json, so the model is saved again with
    FLAGS_enable_pir_api=0, which has to be set before paddle starts: both steps run in child processes."""
    import numpy as np
    import paddle

    weights, calib_file = os.path.join(workdir, "weights.pdparams"), os.path.join(workdir, "calib.npy")
    legacy, int8 = os.path.join(workdir, "legacy"), os.path.join(workdir, "paddle_int8")
    paddle.save(model.state_dict(), weights)
    np.save(calib_file, calib)
    env = {**os.environ, "FLAGS_enable_pir_api": "0"}
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for script, *script_args in ((_LEGACY_EXPORT, repo, model_name, num_classes, weights, size, legacy),
                                 (_PADDLE_PTQ, legacy, int8, calib_file)):
        result = subprocess.run([sys.executable, "-c", script, *map(str, script_args)], env=env,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(result.stderr.strip().splitlines()[-1])
    return os.path.join(int8, "inference.pdmodel"), os.path.join(int8, "inference.pdiparams")


def int8_onnx_file(model, model_name, size, workdir, calib):
    """-> (fp32 export folder of ``model``, its int8 ONNX model as ``export_model.py --quantize int8`` makes it)."""
    from paddle_resnet.deploy import export_inference
    from paddle_resnet.deploy.model_dir import ONNX_FILE
    from paddle_resnet.deploy.quantize import quantize_onnx

    folder = os.path.join(workdir, model_name)
    export_inference(model, folder, image_shape=(3, size, size), eval_ops=eval_ops(size), onnx=True,
                     softmax=False, model_name=model_name)
    return folder, quantize_onnx(os.path.join(folder, ONNX_FILE), os.path.join(workdir, f"{model_name}_int8.onnx"),
                                 [calib[i:i + 8] for i in range(0, len(calib), 8)])


def precision_factories(model_name, model, size, workdir, threads, calib):
    """name -> factory of ``run(batch)`` for one model: fp32 and int8 on both backends, bf16 on Paddle Inference."""
    from paddle_resnet.deploy import Predictor
    from paddle_resnet.deploy.backends import (OnnxRuntimeBackend, PaddleInferenceBackend, RuntimeOptions,
                                               paddle_inference_config)

    folder, int8_onnx = int8_onnx_file(model, model_name, size, workdir, calib)

    def paddle_int8():
        program, params = paddle_int8_files(model_name, model.num_classes, model, size, calib, folder)
        config = paddle_inference_config(program, params, RuntimeOptions(cpu_threads=threads))
        config.enable_mkldnn_int8()
        return PaddleInferenceBackend(config).run

    return {
        "Paddle Inference + oneDNN, fp32": lambda: Predictor(folder, backend="paddle", cpu_threads=threads).run,
        "ONNX Runtime, fp32": lambda: Predictor(folder, backend="onnxruntime", cpu_threads=threads).run,
        "Paddle Inference + oneDNN, bf16": lambda: Predictor(folder, backend="paddle", precision="bf16",
                                                             cpu_threads=threads).run,
        "ONNX Runtime, int8 (--quantize int8)": lambda: OnnxRuntimeBackend(
            int8_onnx, RuntimeOptions(cpu_threads=threads)).run,
        "Paddle Inference + oneDNN, int8 (Paddle PTQ)": paddle_int8,
    }


def eval_ops(size):
    return [{"DecodeImage": {}}, {"ResizeImage": {"resize_short": size * 8 // 7}}, {"CropImage": {"size": size}},
            {"NormalizeImage": {"order": ""}}, "ToCHWImage"]


def precision_rows(args, threads):
    """fp32 vs bf16 and int8 for each of ``args.models`` and backend, interleaved in rounds; agreement on photos."""
    import numpy as np
    import paddle

    from paddle_resnet import build_model
    from paddle_resnet.data.pipeline import build_transforms
    from paddle_resnet.deploy.backends import OnnxRuntimeBackend, RuntimeOptions
    from paddle_resnet.deploy.benchmark import Timing, timings_table
    from bench_serve import cpu_model  # benchmarks/ is on sys.path when this script runs; numpy is loaded by now

    transforms = build_transforms(eval_ops(args.size))
    calib, held_out = photo_views(transforms, 4, seed=0), photo_views(transforms, HELD_OUT_VIEWS, seed=1)
    held_out_labels = photo_labels(HELD_OUT_VIEWS)
    rng = np.random.default_rng(0)
    batches = {bs: rng.standard_normal((bs, 3, args.size, args.size), dtype=np.float32) for bs in args.batch_sizes}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_precision-") as workdir:
        factories, sources, embedding_agreement = {}, {}, None
        for model_name in args.models:
            paddle.seed(0)
            model, sources[model_name] = build_model(model_name), "random weights, 1000 classes"
            if model_name == "resnet50" and imgsim_installed():
                model, embedding = photo_classifier(IMGSIM, args.size, workdir, threads,
                                                    photo_views(transforms, 16, seed=2), photo_labels(16))
                sources[model_name] = (f"imgsim's trained backbone, {len(PHOTOS)}-photo head fitted on "
                                       f"{16 * len(PHOTOS)} other crops")
                embedding_dir = os.path.join(workdir, "embedding")
                os.mkdir(embedding_dir)
                _, embedding_int8 = int8_onnx_file(embedding, model_name, args.size, embedding_dir, calib)
                embedding_agreement = top1_agreement(
                    lambda batch: embedding(paddle.to_tensor(batch)).numpy(),
                    OnnxRuntimeBackend(embedding_int8, RuntimeOptions(cpu_threads=threads)).run, held_out)
            rows = precision_factories(model_name, model, args.size, workdir, threads, calib)
            factories.update({(model_name, name): factory for name, factory in rows.items()})
        seconds, failures, runners = time_in_rounds(factories, batches, args.rounds, args.seconds)
        predictions = {key: predict_views(runner, held_out) for key, runner in runners.items()}

    print(f"\nfp32 vs bf16 and int8 at {args.size}x{args.size}; {cpu_model()}; {threads} threads; Paddle "
          f"{paddle.__version__}; load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    for model_name in args.models:
        timings = [Timing.from_seconds(name, bs, calls) for ((model, name), bs), calls in seconds.items()
                   if model == model_name]
        fastest_fp32 = {bs: max(t.images_per_s for t in timings if t.batch_size == bs and "fp32" in t.name)
                        for bs in args.batch_sizes}
        timings.sort(key=lambda t: (t.batch_size, -t.images_per_s))
        print(f"{model_name} ({sources[model_name]}):\n")
        table = timings_table(timings).splitlines()
        print(table[0][:-1] + "| vs fastest fp32 |\n" + table[1] + "---|")
        for line, t in zip(table[2:], timings):
            print(f"{line} {t.images_per_s / fastest_fp32[t.batch_size]:.2f}x |")
        print()
    print(f"Top-1 on {len(held_out)} held-out crops of scikit-image's {len(PHOTOS)} photos (not used for fitting or "
          "calibration); agreement: bf16 / int8 top-1 equal to its backend's fp32 top-1:\n")
    print("| model | backend, precision | agreement with fp32 | top-1 (which photo) |\n|---|---|---|---|")
    for (model_name, name), predicted in predictions.items():
        fp32 = predictions.get((model_name, name.split(",")[0] + ", fp32"))
        reduced = "int8" in name or "bf16" in name
        agreement = f"{100 * np.mean(predicted == fp32):.2f}%" if reduced and fp32 is not None else ""
        top1 = (f"{100 * np.mean(predicted == held_out_labels):.2f}%" if sources[model_name].startswith("imgsim")
                else "")
        print(f"| {model_name} | {name} | {agreement} | {top1} |")
    if embedding_agreement is not None:
        print(f"\nFor comparison, imgsim's own 768-way embedding head (not a classifier; top-1/top-2 margins ~1% "
              f"of its output scale), ORT int8 vs dygraph fp32: {100 * embedding_agreement:.2f}% agreement")
    for (model_name, name), error in failures.items():
        print(f"failed: {model_name} {name}: {error}")


def predict_views(run, views):
    import numpy as np
    return np.concatenate([run(views[i:i + 8]).argmax(1) for i in range(0, len(views), 8)])


def top1_agreement(reference, int8, views):
    """Fraction of ``views`` on which two ``run(batch)`` functions have the same top-1."""
    import numpy as np
    return float(np.mean(predict_views(reference, views) == predict_views(int8, views)))


if __name__ == "__main__":
    main()
