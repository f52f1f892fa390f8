"""Global.to_static: the static train step with oneDNN convolutions follows dygraph's loss curve."""
import os

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from engine_fixtures import make_image_folder, tiny_config
from conftest import ROOT
from paddle_resnet.config import ConfigError, load_config, validate
from paddle_resnet.engine import Engine
from paddle_resnet.engine.static_step import StaticForward, use_static
from paddle_resnet.models import build_model

QUICKSTART = os.path.join(ROOT, "configs", "quickstart.yaml")


def train(static, steps=50, batch=32, nudge=0.0):
    """Losses of ``steps`` Momentum steps of resnet18 on 16x16 images (class = the bright channel), and the
    model; ``nudge`` scales the stem's initial weights by 1 + nudge."""
    paddle.seed(0)
    model = build_model("resnet18", num_classes=3)
    model.train()
    if nudge:
        model.conv1.weight.set_value(model.conv1.weight.numpy() * (1 + nudge))
    net = StaticForward(model, in_channels=3) if static else model
    optimizer = paddle.optimizer.Momentum(1e-3, momentum=0.9, parameters=model.parameters(), weight_decay=1e-4)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        labels = rng.integers(0, 3, batch).astype("int64")
        images = np.eye(3, dtype="float32")[labels][:, :, None, None] + rng.standard_normal((batch, 3, 16, 16))
        loss = F.cross_entropy(net(paddle.to_tensor(images.astype("float32"))), paddle.to_tensor(labels))
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        losses.append(float(loss))
    return np.array(losses), net


def windowed_relative_gap(a, b, window=10):
    gap = np.abs(a - b) / np.abs(a)
    return np.array([gap[i:i + window].max() for i in range(0, len(gap), window)])


@pytest.mark.slow
def test_static_step_follows_the_dygraph_loss_curve_within_float_tolerance_for_50_steps():
    """oneDNN's convolutions round differently from Paddle's, and this training (like most) amplifies any
    difference step by step; float tolerance is therefore how far dygraph drifts from itself when its
    initial weights move by 1e-6 (a few float32 ulps). The static curve must stay within 3x that drift."""
    dygraph, _ = train(static=False)
    static, net = train(static=True)
    drift, _ = train(static=False, nudge=1e-6)
    assert net.placement.placed > 0  # conv2d and conv2d_grad ran on oneDNN
    assert dygraph[:5].mean() > 0.9 and dygraph[-10:].mean() < 0.2  # it learns
    assert static[0] == pytest.approx(dygraph[0], rel=1e-5)
    floor = np.maximum(windowed_relative_gap(dygraph, drift), 1e-3)
    gap = windowed_relative_gap(dygraph, static)
    assert (gap <= 3 * floor).all(), f"static vs dygraph {gap}, dygraph vs nudged dygraph {floor}"


@pytest.mark.parametrize("requested,device,expected", [
    (None, "cpu", None), ("auto", "cpu", None), ("auto", "gpu", False), (None, "gpu", False),
    (True, "gpu", True), (False, "cpu", False), (True, "cpu", True)])
def test_to_static_auto_is_measured_on_the_cpu_only(requested, device, expected):
    assert use_static(requested, device) is expected
    assert use_static("auto", "cpu", channels_last=True) is False


def test_nhwc_stays_dygraph_on_auto_and_warns_on_true(tmp_path, caplog):
    """Paddle 3.3.1's oneDNN conv2d_grad gives NHWC filter gradients the wrong shape: only Paddle's kernels."""
    data = make_image_folder(tmp_path / "images", per_class=2)
    arch = {"name": "resnet18", "class_num": 3, "data_format": "NHWC"}
    auto = Engine(validate(tiny_config(tmp_path, data, data, Arch=arch))).trainer()
    assert auto.net is auto.model
    forced = Engine(validate(tiny_config(tmp_path / "b", data, data, Arch=arch, Global={"to_static": True}))).trainer()
    assert isinstance(forced.net, StaticForward) and forced.net.placement is None
    assert "oneDNN convolutions cannot train NHWC models" in (tmp_path / "b" / "out" / "train.log").read_text()


@pytest.mark.parametrize("value,message", [
    ("atuo", "Global.to_static must be true, false or auto, got 'atuo'; did you mean 'auto'?"),
    ("1", "Global.to_static must be true, false or auto, got 1"),
    ("[true]", "Global.to_static must be true, false or auto, got [True]"),
])
def test_bad_to_static_is_one_line(value, message):
    with pytest.raises(ConfigError) as err:
        load_config(QUICKSTART, [f"Global.to_static={value}"])
    assert str(err.value) == message


@pytest.mark.parametrize("value,expected", [("true", True), ("false", False), ("auto", "auto"), ("null", None)])
def test_to_static_values(value, expected):
    assert load_config(QUICKSTART, [f"Global.to_static={value}"])["Global"]["to_static"] == expected


@pytest.mark.parametrize("to_static,static", [(True, True), (False, False), (None, False)])
def test_trainer_uses_the_static_step_when_told_and_auto_keeps_a_short_run_in_dygraph(tmp_path, to_static, static):
    data = make_image_folder(tmp_path / "images", per_class=2)
    config = validate(tiny_config(tmp_path, data, data, Global={"epochs": 1, "to_static": to_static}))
    engine = Engine(config)
    trainer = engine.trainer()
    assert isinstance(trainer.net, StaticForward) is static
    assert (trainer.net.model if static else trainer.net) is engine.model
