"""Load test of ``paddle-resnet serve`` on 127.0.0.1, against offline ``Predictor`` throughput in the same run.

    python benchmarks/bench_serve.py [--arch resnet50] [--size 224] [--requests 200] [--concurrency 1 8 32]
        [--soak 2000] [--malformed 0.1]

A model with random weights is exported (ONNX too when paddle2onnx is installed, so both sides run the backend
``auto`` picks), and real photos (scikit-image's) are encoded as JPEG. Then, interleaved in one run:

* offline: ``Predictor.predict`` on the JPEG files, batch 8, decoding in this process (images/s), just before
  and just after each of the server's rounds (the machine's load drifts: the ratio compares neighbours);
* the server (``tools/serve.py`` in a subprocess, --max-batch 8 --max-delay-ms 5): ``--requests`` single-image
  POST /predict at each concurrency (a client loop per connection, httpx), throughput and p50/p95/p99 latency;
* a soak: ``--soak`` requests at concurrency 8 of which ``--malformed`` are malformed (not an image, truncated,
  empty, wrong field, bad base64, an image URL), each checked for its expected status and kind; anything else
  is an unexpected error. The server's RSS (its process and its decoding workers) is sampled from /proc every
  0.5 s: its value after the first tenth of the soak against the end shows whether memory is flat.

The load generator runs on the same cores as the server (this is one machine): its share is in the figures.
Every loop is bounded in count and time; the server is stopped with SIGTERM at the end.
"""
import argparse
import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from paddle_resnet.cpu import cpu_description  # noqa: E402  (after the path)
IMAGENET_EVAL = [{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"resize_short": 256}},
                 {"CropImage": {"size": 224}},
                 {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406],
                                     "std": [0.229, 0.224, 0.225], "order": ""}}, "ToCHWImage"]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "colorwheel",
          "camera")  # scikit-image's sample photos, 300x451 to 872x1000
TIME_LIMIT = 900  # seconds for any one round of requests: the benchmark never runs on unbounded


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--requests", type=int, default=200, help="requests per concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--soak", type=int, default=2000)
    parser.add_argument("--malformed", type=float, default=0.1)
    parser.add_argument("--offline-images", type=int, default=64, help="images per offline measurement")
    return parser.parse_args()


def cpu_model():
    return f"{cpu_description()}, {len(os.sched_getaffinity(0))} cores"


def export_model(arch, size, folder):
    import paddle

    from paddle_resnet import build_model
    from paddle_resnet.deploy import export_inference

    paddle.seed(0)
    model = build_model(arch, num_classes=1000)
    model.eval()
    ops = IMAGENET_EVAL if size == 224 else [IMAGENET_EVAL[0], {"ResizeImage": {"size": size}}, *IMAGENET_EVAL[3:]]
    try:
        import paddle2onnx  # noqa: F401
        onnx = True
    except ImportError:
        onnx = False
    export_inference(model, folder, image_shape=(3, size, size), eval_ops=ops, onnx=onnx, model_name=arch)


def write_photos(folder):
    from PIL import Image
    from skimage import data

    paths = []
    for name in PHOTOS:
        pixels = getattr(data, name)()
        image = Image.fromarray(pixels).convert("RGB")
        path = os.path.join(folder, f"{name}.jpg")
        image.save(path, quality=90)
        paths.append(path)
    return paths


def offline_rate(predictor, paths, count):
    """-> (images/s, CPU ms per image) of ``Predictor.predict`` on ``count`` of ``paths``, batch 8."""
    images = [paths[i % len(paths)] for i in range(count)]
    predictor.predict(images[:16], batch_size=8)  # warm
    started, cpu = time.perf_counter(), time.process_time()
    predictor.predict(images, batch_size=8)
    return count / (time.perf_counter() - started), 1000 * (time.process_time() - cpu) / count


def cpu_seconds(pid):
    """CPU time of ``pid`` and its live children (the decoding workers), seconds."""
    tick = os.sysconf("SC_CLK_TCK")

    def one(p):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            return 0.0
    return one(pid) + sum(one(child) for child in children(pid))


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def multipart(name, content, field="image"):
    boundary = "bench0boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return {"content-type": f"multipart/form-data; boundary={boundary}"}, body


def good_requests(paths):
    return [(*multipart(os.path.basename(p), open(p, "rb").read()), 200, None) for p in paths]


def malformed_requests(paths):
    """(headers, body, expected status, expected kind) of malformed requests."""
    jpeg = open(paths[0], "rb").read()
    json_type = {"content-type": "application/json"}
    return [(*multipart("notes.jpg", b"not an image at all\n"), 422, "unreadable_image"),
            (*multipart("cut.jpg", jpeg[:len(jpeg) // 2]), 422, "unreadable_image"),
            (*multipart("empty.jpg", b""), 422, "unreadable_image"),
            (*multipart("a.jpg", jpeg, field="photo"), 400, "wrong_field"),
            (json_type, b'{"images": ["%%%not base64"]}', 400, "bad_base64"),
            (json_type, b'{"images": ["http://127.0.0.1/cat.jpg"]}', 400, "url_refused"),
            (json_type, b"{not json", 400, "bad_json")]


async def load(url, requests, concurrency):
    """Sends ``requests`` (headers, body, status, kind) over ``concurrency`` connections; -> (seconds, latencies,
    unexpected answers)."""
    import httpx

    queue = list(reversed(requests))
    latencies, unexpected = [], []

    async def client_loop(client):
        while queue:
            headers, body, status, kind = queue.pop()
            started = time.perf_counter()
            try:
                response = await client.post(url, content=body, headers=headers)
            except httpx.HTTPError as error:
                unexpected.append(f"{type(error).__name__}: {error}")
                continue
            latencies.append(time.perf_counter() - started)
            if response.status_code != status or (kind and response.json().get("kind") != kind):
                unexpected.append(f"{response.status_code} {response.text[:200]} (expected {status} {kind})")

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(client_loop(client) for _ in range(concurrency))), TIME_LIMIT)
        return time.perf_counter() - started, latencies, unexpected


def rss_mib(pid):
    """RSS of ``pid`` and its children (the decoding workers), MiB."""
    def one(p):
        try:
            with open(f"/proc/{p}/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            return 0
    return (one(pid) + sum(one(child) for child in children(pid))) / 1024


class RssSampler:
    def __init__(self, pid, every=0.5):
        self.pid, self.every, self.samples, self._stop = pid, every, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), rss_mib(self.pid)))
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def start_server(model_dir):
    process = subprocess.Popen([sys.executable, "tools/serve.py", "--model-dir", model_dir, "--port", "0",
                                "--max-batch", "8", "--max-delay-ms", "5", "--max-queue", "256"],
                               cwd=ROOT, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")})
    line = process.stderr.readline()
    found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not found:
        sys.exit(f"serve.py did not start: {line}{process.stderr.read()}")
    url = f"http://127.0.0.1:{found.group(1)}"
    # Read what it says from now on, so that a full pipe never stops it.
    threading.Thread(target=lambda: process.stderr.read(), daemon=True).start()
    import httpx
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    sys.exit("serve.py was not ready within 300 s")


def percentiles(latencies):
    return [1000 * float(np.percentile(latencies, q)) for q in (50, 95, 99)]


def main():
    args = parse_args()
    from paddle_resnet.cpu import available_cores
    from paddle_resnet.deploy import Predictor

    print(f"# {' '.join(sys.argv)}\n# {time.strftime('%Y-%m-%d')}, {cpu_model()}, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        model_dir = os.path.join(folder, "model")
        export_model(args.arch, args.size, model_dir)
        paths = write_photos(folder)
        predictor = Predictor(model_dir, cpu_threads=available_cores(), max_batch_size=8)
        process, url = start_server(model_dir)
        try:
            rows = run_rounds(args, url, paths, process.pid,
                              lambda: offline_rate(predictor, paths, args.offline_images))
            soak = run_soak(args, url, paths, process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(120)
    report(args, predictor.backend_name, rows, soak, code)


def run_rounds(args, url, paths, pid, offline):
    """Each concurrency's round between two offline measurements, so that the ratio compares like with like on
    a machine whose load drifts. CPU time per image: the server's (its process and decoding workers) and the
    load generator's, against offline prediction's."""
    good = good_requests(paths)
    rows = []
    before = offline()
    for concurrency in args.concurrency:
        asyncio.run(load(url + "/predict", good[:2] * concurrency, concurrency))  # warm the connections
        requests = [good[i % len(good)] for i in range(args.requests)]
        server_cpu, client_cpu = cpu_seconds(pid), time.process_time()
        seconds, latencies, unexpected = asyncio.run(load(url + "/predict", requests, concurrency))
        server_ms = 1000 * (cpu_seconds(pid) - server_cpu) / args.requests
        client_ms = 1000 * (time.process_time() - client_cpu) / args.requests
        after = offline()
        rows.append((concurrency, args.requests / seconds, (before[0] + after[0]) / 2, *percentiles(latencies),
                     server_ms, client_ms, (before[1] + after[1]) / 2, len(unexpected)))
        print(f"concurrency {concurrency}: {rows[-1][1]:.1f} images/s; offline {before[0]:.1f} before, "
              f"{after[0]:.1f} after; p50/p95/p99 {rows[-1][3]:.0f}/{rows[-1][4]:.0f}/{rows[-1][5]:.0f} ms; CPU "
              f"ms/image server {server_ms:.0f}, client {client_ms:.0f}, offline {rows[-1][8]:.0f}; "
              f"{len(unexpected)} unexpected", flush=True)
        before = after
    return rows


def run_soak(args, url, paths, pid):
    rng = random.Random(0)
    good, bad = good_requests(paths), malformed_requests(paths)
    requests = [rng.choice(bad) if rng.random() < args.malformed else rng.choice(good) for _ in range(args.soak)]
    with RssSampler(pid) as sampler:
        seconds, latencies, unexpected = asyncio.run(load(url + "/predict", requests, 8))
    samples = [rss for _, rss in sampler.samples]
    tenth = samples[max(1, len(samples) // 10)]
    malformed = sum(1 for request in requests if request[2] != 200)
    return {"seconds": seconds, "malformed": malformed, "unexpected": unexpected, "rss_start": samples[0],
            "rss_tenth": tenth, "rss_end": samples[-1], "rss_max": max(samples), "rate": args.soak / seconds,
            "p99": percentiles(latencies)[2]}


def report(args, backend, rows, soak, exit_code):
    print(f"\n{args.arch} at {args.size}x{args.size}, backend {backend}; offline: Predictor.predict, batch 8, the "
          f"mean of the runs just before and after each round\n")
    print("| concurrency | server images/s | offline images/s | × offline | p50 ms | p95 ms | p99 ms | "
          "CPU ms/image: server + client (offline) | unexpected |")
    print("|---|---|---|---|---|---|---|---|---|")
    for concurrency, rate, offline, p50, p95, p99, server_ms, client_ms, offline_ms, unexpected in rows:
        print(f"| {concurrency} | {rate:.1f} | {offline:.1f} | {rate / offline:.2f} | {p50:.0f} | {p95:.0f} | "
              f"{p99:.0f} | {server_ms:.0f} + {client_ms:.0f} ({offline_ms:.0f}) | {unexpected} |")
    print(f"\nsoak: {args.soak} requests at concurrency 8, {soak['malformed']} malformed, "
          f"{len(soak['unexpected'])} unexpected answers, {soak['rate']:.1f} requests/s, p99 {soak['p99']:.0f} ms, "
          f"{soak['seconds']:.0f} s")
    for line in soak["unexpected"][:5]:
        print(f"  unexpected: {line}")
    print(f"server RSS (process + decoding workers): {soak['rss_start']:.0f} MiB at the start, "
          f"{soak['rss_tenth']:.0f} after a tenth, {soak['rss_end']:.0f} at the end, {soak['rss_max']:.0f} max "
          f"({soak['rss_end'] - soak['rss_tenth']:+.0f} MiB over the last nine tenths)")
    print(f"the server exited {exit_code} on SIGTERM; load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
