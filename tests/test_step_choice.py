"""Global.to_static auto on the CPU: the path that finishes the run soonest, measured once and cached."""
import json
import logging
import math
import os

import numpy as np
import paddle
import pytest

from paddle_resnet.engine.static_step import StaticForward
from paddle_resnet.cpu import cpu_description
from paddle_resnet.engine.step_choice import (MIN_MEASURED_STEPS, RunShape, cache_key, cache_path, fastest_step,
                                              measure, read_cache, seconds_per_run)
from paddle_resnet.models import build_model

SHAPE = RunShape("resnet18", (3, 16, 16), 4, 1, steps=MIN_MEASURED_STEPS)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PADDLE_RESNET_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def small_model():
    model = build_model("resnet18", num_classes=3)
    model.train()
    return model


def write_entry(shape, dygraph, static, static_setup):
    os.makedirs(os.path.dirname(cache_path()), exist_ok=True)
    with open(cache_path(), "w") as f:
        json.dump({cache_key(shape): {"dygraph": dygraph, "static": static, "static_setup": static_setup}}, f)


def test_a_short_run_trains_in_dygraph_without_measuring(cache_dir, caplog):
    model = small_model()
    with caplog.at_level(logging.INFO, logger="paddle_resnet"):
        net = fastest_step(model, RunShape("resnet18", (3, 16, 16), 4, 1, steps=MIN_MEASURED_STEPS - 1))
    assert net is model and not cache_dir.exists()
    assert "dygraph training step (a run of 49 steps is too short for the static program's trace to pay back)" \
        in caplog.text


@pytest.mark.parametrize("static_setup,steps,expected", [(3.0, 50, "static"), (6.0, 50, "dygraph"),
                                                         (6.0, 100, "static")])
def test_the_choice_weighs_the_trace_against_the_steps_it_saves(cache_dir, static_setup, steps, expected):
    shape = RunShape("resnet18", (3, 16, 16), 4, 1, steps=steps)
    write_entry(shape, dygraph=0.2, static=0.1, static_setup=static_setup)  # 50 steps: 10 s vs 8 s or 11 s
    assert seconds_per_run(read_cache(cache_path())[cache_key(shape)], steps)["dygraph"] == pytest.approx(0.2 * steps)
    net = fastest_step(small_model(), shape)
    assert isinstance(net, StaticForward) is (expected == "static")


def test_measuring_leaves_no_trace_in_the_model_and_caches_finite_figures(cache_dir, caplog):
    model = small_model()
    statistics = [tensor for name, tensor in model.state_dict().items() if name.endswith(("_mean", "_variance"))]
    before = [tensor.numpy().copy() for tensor in statistics]
    with caplog.at_level(logging.INFO, logger="paddle_resnet"):
        net = fastest_step(model, SHAPE)
    assert len(statistics) == 40 and all(np.array_equal(a, b.numpy()) for a, b in zip(before, statistics))
    assert all(param.grad is None for param in model.parameters())
    entry = read_cache(cache_path())[cache_key(SHAPE)]
    assert all(math.isfinite(value) and value > 0 for value in entry.values())
    assert "timing the dygraph and static training steps on this CPU" in caplog.text
    assert (net is model) != isinstance(net, StaticForward)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="paddle_resnet"):
        again = fastest_step(model, SHAPE)  # from the cache: no second measurement
    assert "timing" not in caplog.text and type(again) is type(net)


def test_the_key_names_the_cpu_its_isa_the_model_input_batch_and_threads():
    key = cache_key(RunShape("resnet50", (3, 224, 224), 64, 2, steps=500, world_size=2))
    assert key.startswith(cpu_description()) and f"paddle {paddle.__version__}" in key
    assert "resnet50 3x224x224 batch 32 | 2 threads x 2 processes" in key  # the probe batch is capped at 32
    assert "avx2" in cpu_description() or "unknown ISA" in cpu_description()


@pytest.mark.parametrize("content", ["{not json", json.dumps([1, 2]), json.dumps({"k": {"dygraph": "NaN"}}),
                                     json.dumps({"k": {"dygraph": float("nan"), "static": 1.0, "static_setup": 1.0}}),
                                     "x" * (2 << 20)])
def test_a_broken_cache_is_ignored_never_trusted(cache_dir, content):
    os.makedirs(cache_dir)
    (cache_dir / "train_step_paths.json").write_text(content)
    assert read_cache(cache_path()) == {}


def test_a_cache_that_is_a_fifo_is_ignored_without_blocking(cache_dir):
    os.makedirs(cache_dir)
    os.mkfifo(cache_dir / "train_step_paths.json")
    assert read_cache(cache_path()) == {}


def test_measure_restores_eval_mode(cache_dir):
    model = small_model()
    model.eval()
    entry, static_net = measure(model, SHAPE)
    assert not model.training and isinstance(static_net, StaticForward) and set(entry) == {
        "dygraph", "static", "static_setup"}
