"""Throughput and latency measurement shared by ``tools/predict.py --benchmark`` and benchmarks/."""
import time
from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass
class Timing:
    """Latency percentiles (ms per batch) and throughput of one configuration."""
    name: str
    batch_size: int
    images_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @classmethod
    def from_seconds(cls, name, batch_size, seconds):
        seconds = np.asarray(seconds)
        p50, p90, p99 = np.percentile(seconds * 1000.0, [50, 90, 99])
        return cls(name, batch_size, batch_size / float(np.median(seconds)), p50, p90, p99)


def time_calls(fn, *, warmup=2, min_runs=5, min_seconds=2.0, max_runs=200):
    """Seconds per call of ``fn()`` after ``warmup`` calls: at least ``min_runs`` runs and ``min_seconds``."""
    for _ in range(warmup):
        fn()
    seconds, started = [], time.perf_counter()
    while len(seconds) < max_runs and (len(seconds) < min_runs or time.perf_counter() - started < min_seconds):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


def measure(name, fn, batch_size, **timing_options):
    return Timing.from_seconds(name, batch_size, time_calls(fn, **timing_options))


def benchmark_predictor(predictor, images, batch_sizes=(1, 8, 16), **timing_options):
    """For each batch size: the model alone on a preprocessed batch, and preprocessing + model.

    ``images`` (paths, PIL images or arrays) are repeated as needed to fill a batch; unreadable ones are left out.
    """
    readable = [item for item, result in zip(images, predictor.predict(images, top_k=1)) if not result.skipped]
    if not readable:
        raise InputError(f"none of the {len(images)} images to benchmark with could be read")
    timings = []
    for batch_size in batch_sizes:
        batch_items = [readable[i % len(readable)] for i in range(batch_size)]
        batch = predictor.preprocess(batch_items)
        timings.append(measure("model only", lambda: predictor.run(batch), batch_size, **timing_options))
        timings.append(measure("with preprocessing", lambda: predictor.run(predictor.preprocess(batch_items)),
                               batch_size, **timing_options))
    return timings


def timings_table(timings, gflop_per_image=None, ceiling_gflops=None, reference=None):
    """A markdown table. ``gflop_per_image`` adds effective GFLOP/s, and with ``ceiling_gflops`` their share
    of that ceiling; ``reference`` (a name) adds speed ratios against its row of the same batch size."""
    header = ["configuration", "batch", "images/s", "p50 ms", "p90 ms", "p99 ms"]
    header += ["GFLOP/s"] if gflop_per_image else []
    header += ["% of GEMM"] if gflop_per_image and ceiling_gflops else []
    header += [f"vs {reference}"] if reference else []
    base = {t.batch_size: t.images_per_s for t in timings if t.name == reference}
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for t in timings:
        cells = [t.name, str(t.batch_size), f"{t.images_per_s:.2f}", f"{t.p50_ms:.1f}", f"{t.p90_ms:.1f}",
                 f"{t.p99_ms:.1f}"]
        if gflop_per_image:
            cells.append(f"{t.images_per_s * gflop_per_image:.1f}")
        if gflop_per_image and ceiling_gflops:
            cells.append(f"{100 * t.images_per_s * gflop_per_image / ceiling_gflops:.0f}%")
        if reference:
            cells.append(f"{t.images_per_s / base[t.batch_size]:.2f}x" if t.batch_size in base else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
