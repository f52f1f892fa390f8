"""``Global.to_static: auto`` on the CPU: the training step that finishes this run soonest on this machine.

The static program (``static_step.py``) runs the convolutions on oneDNN; dygraph runs them on Paddle's own CPU
kernels (MKL). Which is faster depends on the CPU, the model and the image size: the static program trained
resnet18 2-3.6x faster than dygraph on an AVX2 AMD EPYC, and is slower than dygraph at resnet50 224 px on an
AVX-512/AMX Intel Xeon (docs/benchmarks.md). So auto measures both on a batch of the run's shape, once per CPU,
Paddle version, model, input, batch and thread count, and keeps the figures in a cache file. The choice weighs
the static program's one-time trace against the steps it saves: a run shorter than ``MIN_MEASURED_STEPS`` trains
in dygraph without measuring, since a trace of 2-3 s (resnet18) cannot pay back in so few steps.
"""
import json
import math
import os
import time
from dataclasses import dataclass

import paddle

from ..cpu import cpu_description
from ..errors import InputError
from ..fileio import read_regular_file, write_atomically
from .logger import LOGGER
from .static_step import StaticForward, is_channels_last, static_forward, use_static

MIN_MEASURED_STEPS = 50
TIMED_STEPS = 2  # after one untimed step (the static program's trace)
MAX_PROBE_BATCH = 32
CACHE_NAME = "train_step_paths.json"
MAX_CACHE_BYTES = 1 << 20


@dataclass(frozen=True)
class RunShape:
    """What the choice depends on: the model (by name), the input, the batch, the threads and the run's length."""
    arch: str
    image_shape: tuple
    batch_size: int
    threads: int
    steps: int
    world_size: int = 1


def cache_path():
    """``$PADDLE_RESNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/paddle_resnet``, else ``~/.cache/paddle_resnet``."""
    folder = os.environ.get("PADDLE_RESNET_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "paddle_resnet")
    return os.path.join(folder, CACHE_NAME)


def cache_key(shape):
    channels, height, width = shape.image_shape
    return (f"{cpu_description()} | paddle {paddle.__version__} | {shape.arch} {channels}x{height}x{width} "
            f"batch {probe_batch(shape)} | {shape.threads} threads x {shape.world_size} processes")


def probe_batch(shape):
    return min(shape.batch_size, MAX_PROBE_BATCH)


def read_cache(path):
    """The cache's entries; {} when it is missing or is not one (it is re-measured, never trusted half)."""
    try:
        entries = json.loads(read_regular_file(path, MAX_CACHE_BYTES, "step path cache"))
    except FileNotFoundError:
        return {}
    except (InputError, OSError, ValueError) as error:
        LOGGER.debug(f"ignoring the step path cache {path}: {error}")
        return {}
    return {key: value for key, value in entries.items() if valid_entry(value)} if isinstance(entries, dict) else {}


def valid_entry(entry):
    return (isinstance(entry, dict) and set(entry) == {"dygraph", "static", "static_setup"}
            and all(isinstance(value, float) and math.isfinite(value) and value >= 0 for value in entry.values()))


def write_cache(path, key, entry):
    entries = read_cache(path)
    entries[key] = entry
    try:
        write_atomically(path, lambda tmp: open(tmp, "w", encoding="utf-8").write(json.dumps(entries, indent=1)))
    except OSError as error:  # a read-only home: measured again next time
        LOGGER.warning(f"cannot cache the step path figures in {path}: {error}")


def seconds_per_run(entry, steps):
    """The projected training time of each path: its step time over the run, plus the static program's trace."""
    return {"dygraph": entry["dygraph"] * steps, "static": entry["static_setup"] + entry["static"] * steps}


class StateKeeper:
    """Puts the model's untrained tensors (BatchNorm statistics: Paddle keeps them as parameters that take no
    gradient) back after measuring and drops the gradients: the measured passes leave no trace in the training."""

    def __init__(self, model):
        self.model = model
        self.buffers = [(tensor, tensor.clone()) for tensor in model.state_dict().values() if tensor.stop_gradient]

    def restore(self):
        for buffer, saved in self.buffers:
            buffer.set_value(saved)
        self.model.clear_gradients(set_to_zero=False)


def time_passes(net, images):
    """Seconds of the first forward + backward pass, and the fastest of ``TIMED_STEPS`` after it."""
    seconds = []
    for _ in range(1 + TIMED_STEPS):
        start = time.perf_counter()
        net(images).mean().backward()
        seconds.append(time.perf_counter() - start)
    return seconds[0], min(seconds[1:])


def measure(model, shape):
    """Step times of dygraph and the static program (and the latter's trace) on a random batch; the static net."""
    images = paddle.randn([probe_batch(shape), *shape.image_shape])
    keeper, was_training = StateKeeper(model), model.training
    model.train()
    try:
        _first, dygraph = time_passes(model, images)
        static_net = StaticForward(model, shape.image_shape[0])
        first, static = time_passes(static_net, images)
    finally:
        keeper.restore()
        if not was_training:
            model.eval()
    entry = {"dygraph": dygraph, "static": static, "static_setup": max(first - static, 0.0)}
    return agreed(entry, shape.world_size), static_net


def agreed(entry, world_size):
    """Every process's figures summed, so that all of them choose the same path."""
    if world_size == 1:
        return entry
    figures = paddle.to_tensor([entry["dygraph"], entry["static"], entry["static_setup"]], dtype="float64")
    paddle.distributed.all_reduce(figures)
    return dict(zip(("dygraph", "static", "static_setup"), (float(value) for value in figures.numpy())))


def fastest_step(model, shape):
    """``model`` (dygraph) or a ``StaticForward`` of it, whichever finishes a run of ``shape.steps`` soonest."""
    if shape.steps < MIN_MEASURED_STEPS:
        LOGGER.info(f"Global.to_static=auto: dygraph training step (a run of {shape.steps} steps is too short for "
                    f"the static program's trace to pay back)")
        return model
    path, key = cache_path(), cache_key(shape)
    entry, static_net = read_cache(path).get(key), None
    if entry is None:
        LOGGER.info(f"Global.to_static=auto: timing the dygraph and static training steps on this CPU "
                    f"({cpu_description()}) once; cached in {path}")
        entry, static_net = measure(model, shape)
        write_cache(path, key, entry)
    totals = seconds_per_run(entry, shape.steps)
    choice = min(totals, key=totals.get)
    batch = probe_batch(shape)
    LOGGER.info(f"Global.to_static=auto: {choice} training step ({batch / entry['dygraph']:.1f} img/s in dygraph, "
                f"{batch / entry['static']:.1f} img/s static with oneDNN convolutions after a "
                f"{entry['static_setup']:.1f} s trace, at batch {batch})")
    if choice == "dygraph":
        return model
    return static_net or StaticForward(model, shape.image_shape[0])


def training_net(model, requested, device, shape):
    """What the trainer calls: ``model``, or a ``StaticForward`` of it, as ``Global.to_static`` asks on ``device``."""
    if use_static(requested, device, is_channels_last(model)) is None:
        return fastest_step(model, shape)
    return static_forward(model, requested, shape.image_shape[0], device)
