"""The model family against its references: paddle.vision, and the published counts of timm / PaddleClas."""
import contextlib
import io
import subprocess
import sys

import numpy as np
import paddle
import paddle.vision.models as pv
import pytest

from paddle_resnet import build_model, count_flops, list_models
from paddle_resnet.models.summary import summarize
from conftest import ROOT

# Trainable parameters (BN running statistics excluded) published for the reference implementations
# (timm resnet18d / resnet50d / resnet152d / resnet200 / resnetv2_*, torchvision resnext101_32x8d,
# wide_resnet101_2).
PUBLISHED_TRAINABLE = {
    "resnet18_vd": 11_708_744,
    "resnet50_vd": 25_576_264,
    "resnet152_vd": 60_212_040,
    "resnet200": 64_673_832,
    "resnet18_v2": 11_687_720,
    "resnet50_v2": 25_549_352,
    "resnet152_v2": 60_185_128,
    "resnext101_32x8d": 88_791_336,
    "wide_resnet101_2": 126_886_696,
}
PADDLE_VISION = {f"resnet{d}": getattr(pv, f"resnet{d}") for d in (18, 34, 50, 101, 152)}
PADDLE_VISION.update(resnext50_32x4d=pv.resnext50_32x4d, wide_resnet50_2=pv.wide_resnet50_2)


def summary_total(model):
    with contextlib.redirect_stdout(io.StringIO()):
        return paddle.summary(model, (1, 3, 64, 64))["total_params"]  # counts do not depend on size


def lazy_model(name):
    with paddle.LazyGuard():  # shapes without allocating or initialising the weights
        return build_model(name)


def trainable(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)


def max_diff(a, b):
    return float(np.abs(a.numpy() - b.numpy()).max())


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
@pytest.mark.slow
def test_total_params_equal_paddle_vision(depth):
    ours = summary_total(build_model(f"resnet{depth}"))
    assert ours == summary_total(PADDLE_VISION[f"resnet{depth}"]())
    if depth == 50:
        assert ours == 25_610_152  # the figure printed in the Paddle reproduction post (seed 003)


@pytest.mark.parametrize("name", sorted(PADDLE_VISION))
@pytest.mark.slow
def test_state_dict_keys_equal_paddle_vision(name):
    ours, ref = build_model(name).state_dict(), PADDLE_VISION[name]().state_dict()
    assert list(ours) == list(ref)
    assert all(ours[k].shape == ref[k].shape for k in ref)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnext50_32x4d", "wide_resnet50_2"])
@pytest.mark.slow
def test_outputs_equal_paddle_vision_with_same_weights(name):
    ref = PADDLE_VISION[name]()
    # Non-trivial BN statistics, so that a swapped mean/variance or eps would show.
    for key, value in ref.state_dict().items():
        if key.endswith(("_mean", "_variance", "bn1.bias", "bn2.bias", "bn3.bias")):
            low = 0.5 if key.endswith("_variance") else -0.2
            value.set_value(paddle.uniform(value.shape, min=low, max=low + 0.7))
    ours = build_model(name)
    missing, unexpected = ours.set_state_dict(ref.state_dict())
    assert not missing and not unexpected
    ref.eval(), ours.eval()
    x = paddle.randn([2, 3, 224, 224])
    with paddle.no_grad():
        assert max_diff(ours(x), ref(x)) <= 1e-5


@pytest.mark.parametrize("name,count", sorted(PUBLISHED_TRAINABLE.items()))
def test_trainable_params_match_published(name, count):
    assert trainable(lazy_model(name)) == count


def test_flops_resnet50_is_4_11_g():
    assert round(count_flops(build_model("resnet50")) / 1e9, 2) == 4.11


def test_registry_serves_every_issue_name():
    expected = {f"resnet{d}" for d in (18, 34, 50, 101, 152, 200)}
    expected |= {f"resnet{d}_vd" for d in (18, 34, 50, 101, 152, 200)}
    expected |= {f"resnet{d}_v2" for d in (18, 34, 50, 101, 152)}
    expected |= {"resnext50_32x4d", "resnext101_32x8d", "wide_resnet50_2", "wide_resnet101_2"}
    assert expected <= set(list_models())


@pytest.mark.parametrize("name", list_models())
@pytest.mark.slow
def test_every_model_takes_every_input_size(name):
    model = build_model(name, num_classes=7)
    model.eval()
    with paddle.no_grad():
        for size in (224, 197, 64, 32):
            assert model(paddle.zeros([1, 3, size, size])).shape == [1, 7]


@pytest.mark.parametrize("name", ["resnet18", "resnet50_vd", "resnet18_v2", "resnext50_32x4d"])
@pytest.mark.slow
def test_nhwc_equals_nchw(name):
    nchw = build_model(name, num_classes=10)
    nhwc = build_model(name, num_classes=10, data_format="NHWC")
    nhwc.set_state_dict(nchw.state_dict())
    nchw.eval(), nhwc.eval()
    x = paddle.randn([2, 3, 97, 97])
    with paddle.no_grad():
        assert max_diff(nhwc(x), nchw(x)) <= 1e-4
        assert max_diff(nhwc.forward_features(x).transpose([0, 3, 1, 2]), nchw.forward_features(x)) <= 1e-4


@pytest.mark.parametrize("name", ["resnet18", "resnet50_vd", "resnet50_v2"])
@pytest.mark.slow
def test_backward_reaches_the_stem(name):
    model = build_model(name, num_classes=10)
    loss = model(paddle.randn([2, 3, 64, 64])).mean()
    loss.backward()
    stem = model.conv1 if name != "resnet50_vd" else model.conv1[0]
    assert float(stem.weight.grad.abs().sum()) > 0


def test_v2_layout_follows_the_paper():
    model = build_model("resnet50_v2")
    model.eval()
    assert model.bn1 is None and "bn1.weight" not in model.state_dict()  # nothing between stem conv and max-pool
    assert [type(layer).__name__ for layer in model.layer1[0].downsample] == ["Conv2D"]  # no BN on the projection
    assert model.norm._num_features == 2048  # final BN-ReLU before pooling
    stem_out = model.conv1(paddle.ones([1, 3, 64, 64]))
    block = model.layer1[0]
    x = model.maxpool(stem_out)
    expected = block.conv3(block.relu(block.bn3(block.conv2(block.relu(block.bn2(
        block.conv1(block.relu(block.bn1(x))))))))) + block.downsample(block.relu(block.bn1(x)))
    assert max_diff(block(x), expected) == 0.0


def test_vd_shortcut_pools_before_the_conv():
    model = build_model("resnet50_vd")
    kinds = [type(layer).__name__ for layer in model.layer2[0].downsample]
    assert kinds == ["AvgPool2D", "Conv2D", "BatchNorm2D"]
    assert model.layer2[0].downsample[1]._stride == [1, 1]
    assert [type(layer).__name__ for layer in model.layer1[0].downsample][0] == "Identity"
    assert [model.conv1[i]._out_channels for i in (0, 3, 6)] == [32, 32, 64]


@pytest.mark.slow
def test_options():
    feats = build_model("resnet50", num_classes=0)
    assert feats(paddle.zeros([2, 3, 64, 64])).shape == [2, 2048]
    unpooled = build_model("resnet18", num_classes=0, with_pool=False)
    assert unpooled(paddle.zeros([1, 3, 64, 64])).shape == [1, 512, 2, 2]
    gray = build_model("resnet18", num_classes=10, in_channels=1)
    assert gray(paddle.zeros([1, 1, 32, 32])).shape == [1, 10]
    small = build_model("resnet18", num_classes=10, stem_type="small")
    assert small.forward_features(paddle.zeros([1, 3, 32, 32])).shape == [1, 512, 4, 4]
    assert build_model("resnet18").forward_features(paddle.zeros([1, 3, 32, 32])).shape == [1, 512, 1, 1]
    zero = build_model("resnet50", zero_init_residual=True)
    assert float(zero.layer3[2].bn3.weight.abs().sum()) == 0.0
    assert float(build_model("resnet50_v2", zero_init_residual=True).layer1[0].conv3.weight.abs().sum()) == 0.0
    model = build_model("resnet18", num_classes=10)
    model.eval()
    x = paddle.randn([1, 3, 64, 64])
    assert max_diff(model.forward_head(model.forward_features(x)), model(x)) == 0.0
    assert model.forward_head(model.forward_features(x), pre_logits=True).shape == [1, 512]


@pytest.mark.parametrize("call,message", [
    (lambda: build_model("resnet50", depth=42), "depth 42 is not supported; choose one of 18, 34, 50, 101, 152, 200"),
    (lambda: build_model("resnet5O"), "unknown model 'resnet5O'; did you mean 'resnet50'?"),
    (lambda: build_model("resnet50", num_classes="10"), "num_classes must be an integer"),
    (lambda: build_model("resnet50", num_classes=10.0), "num_classes must be an integer"),
    (lambda: build_model("resnet50", data_format="NWHC"), "data_format 'NWHC' is not supported; choose one of NCHW, NHWC"),
    (lambda: build_model("resnet50", stem_type="tiered"), "choose one of classic, deep, small"),
    (lambda: build_model("resnet18", groups=32), "uses BasicBlock, which supports only groups=1"),
    (lambda: build_model("resnet18", with_pool=False), "a classifier needs pooled features"),
])
def test_bad_arguments_name_the_allowed_values(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)


@pytest.mark.slow
def test_summary_tool():
    run = lambda *a: subprocess.run([sys.executable, "tools/summary.py", *a], cwd=ROOT, capture_output=True, text=True)
    out = run("--layers", "50")
    assert out.returncode == 0, out.stderr
    assert "Total params: 25,610,152" in out.stdout  # paddle.summary's own table
    assert "Trainable params: 25,557,032" in out.stdout
    assert "FLOPs:            4.11 G (a multiply-add counts once" in out.stdout
    bad = run("--layers", "42")
    assert bad.returncode != 0
    assert bad.stderr.strip() == ("summary.py: error: depth 42 is not supported; "
                                  "choose one of 18, 34, 50, 101, 152, 200; did you mean 34?")


@pytest.mark.slow
def test_summarize_json_fields():
    report = summarize("resnet50_v2", input_size=224)
    assert report["trainable_params"] == 25_549_352
    assert report["flops"] == count_flops(build_model("resnet50_v2"))
