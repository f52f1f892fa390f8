"""Memory of ``predict.py --output`` as the folder grows: peak RSS predicting folders of increasing size.

    python benchmarks/bench_folder_memory.py [--counts 2000 10000] [--workers 2]

Each folder holds that many JPEGs (64x64 to 160x160, random pixels) in 10 sub-folders; a small-stem
ResNet-18 at 32x32 keeps the model cheap, so that the run is dominated by the walk, decoding, queues and
the output, which are what could grow with the folder. ``tools/predict.py`` runs in a subprocess; its RSS and
its decoding workers' are sampled from /proc every 0.1 s. Flat memory: the peaks barely differ between counts.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args()


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):  # gone, or a zombie without memory
        return 0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def run_measured(command):
    """-> (seconds, peak RSS of the main process, peak RSS of main + workers), in MiB."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")})
    main_peak = total_peak = 0
    while process.poll() is None:
        main = rss_kib(process.pid)
        main_peak = max(main_peak, main)
        total_peak = max(total_peak, main + sum(rss_kib(child) for child in children(process.pid)))
        time.sleep(0.1)
    if process.returncode != 0:
        sys.exit(f"predict.py failed:\n{process.stderr.read()[-3000:]}")
    return time.perf_counter() - started, main_peak / 1024, total_peak / 1024


def write_folder(folder, count):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for index in range(count):
        sub = os.path.join(folder, f"part{index % 10}")
        os.makedirs(sub, exist_ok=True)
        side = int(rng.integers(64, 161))
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(
            os.path.join(sub, f"{index:06d}.jpg"), quality=90)


def main():
    args = parse_args()
    import paddle

    from paddle_resnet import build_model
    from paddle_resnet.deploy import export_inference

    paddle.seed(0)
    model = build_model("resnet18", num_classes=10, stem_type="small")
    model.eval()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_folder_memory-") as workdir:
        model_dir = os.path.join(workdir, "model")
        export_inference(model, model_dir, image_shape=(3, 32, 32), model_name="resnet18",
                         eval_ops=[{"DecodeImage": {}}, {"ResizeImage": {"size": 32}},
                                   {"NormalizeImage": {"order": ""}}, "ToCHWImage"])
        for count in args.counts:
            folder = os.path.join(workdir, f"photos{count}")
            write_folder(folder, count)
            output = os.path.join(workdir, f"preds{count}.jsonl")
            seconds, main_mib, total_mib = run_measured(
                [sys.executable, os.path.join(ROOT, "tools", "predict.py"), "--model-dir", model_dir, "--input",
                 folder, "--output", output, "--workers", str(args.workers)])
            with open(output, "rb") as f:
                lines = f.read().count(b"\n")
            assert lines == count, (lines, count)
            rows.append((count, seconds, main_mib, total_mib))
            print(f"{count} files done", file=sys.stderr, flush=True)
    print(f"\npredict.py --output, {args.workers} decoding workers, small-stem ResNet-18 at 32x32\n")
    print("| files | seconds | images/s | peak RSS, main process (MiB) | peak RSS, main + workers (MiB) |")
    print("|---|---|---|---|---|")
    for count, seconds, main_mib, total_mib in rows:
        print(f"| {count} | {seconds:.1f} | {count / seconds:.0f} | {main_mib:.0f} | {total_mib:.0f} |")


if __name__ == "__main__":
    main()
