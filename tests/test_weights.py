"""Pretrained-weight loading: file formats, key maps of each ecosystem, strictness and the converter.

Reference outputs come from the reference frameworks, never from paddle_resnet; see the docstring of
tests/fixtures/weights/make_fixtures.py for how each fixture was made. These tests need no torch.
"""
import importlib.util
import json
import logging
import os
import pickle
import re
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import paddle
import pytest

from paddle_resnet import build_model
from paddle_resnet.weights import convert_checkpoint, load_pretrained, read_state_dict, to_our_names
from paddle_resnet.weights.keymaps import SCHEMES, Layout, to_paddleclas_names

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "weights"
NUM_CLASSES = 10
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


# ---- deterministic inputs and weights, shared with make_fixtures.py ----

def chelsea_batch():
    """scikit-image's chelsea, resized to 224x224 (PIL bilinear), /255, ImageNet-normalised, NCHW."""
    from PIL import Image
    from skimage.data import chelsea
    image = Image.fromarray(chelsea()).resize((224, 224), Image.BILINEAR)
    x = (np.asarray(image, np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def reference_input():
    # 72 px keeps odd feature maps (9 -> 5 -> 3) so ResNet-D's ceil-mode shortcut pooling is exercised.
    return np.random.RandomState(0).standard_normal((2, 3, 72, 72)).astype(np.float32)


def seeded_array(name, shape):
    """Well-conditioned values that depend only on a tensor's reference name and shape."""
    rng = np.random.RandomState(zlib.crc32(name.encode()))
    unit = rng.randint(0, 1 << 16, size=shape, dtype=np.uint16).astype(np.float32) / 32768.0 - 1.0
    leaf = re.split(r"[._]", name)[-1]
    if leaf in ("var", "variance"):
        return 1.0 + 0.5 * unit
    if len(shape) == 1:
        return 1.0 + 0.2 * unit if leaf in ("weight", "scale") else 0.1 * unit
    fan_in = np.prod(shape[1:]) if len(shape) == 4 else max(shape)
    return unit * np.float32(np.sqrt(3.0 / fan_in))


# ---- helpers ----

def load_case(name):
    case = json.loads((FIXTURES / f"{name}.json").read_text())
    case["logits"] = np.load(FIXTURES / f"{name}.npy")
    return case


def write_weights(state, path):
    if path.suffix == ".safetensors":
        from safetensors.numpy import save_file
        save_file(state, str(path))
    elif path.suffix == ".npz":
        np.savez(path, **state)
    else:
        paddle.save(state, str(path))
    return path


def logits(model, x):
    model.eval()
    with paddle.no_grad():
        return model(paddle.to_tensor(x)).numpy()


def assert_close(ours, reference, tolerance=1e-4):
    scale = max(1.0, float(np.abs(reference).max()))
    assert np.abs(ours - reference).max() <= tolerance * scale


def our_state(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


def trainable_params(model):
    return sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)


@pytest.fixture(scope="module")
def resnet18():
    return build_model("resnet18", num_classes=NUM_CLASSES)


@pytest.fixture(scope="module")
def resnet18_state(resnet18):
    """Our own resnet18's state (paddle names), a valid checkpoint for the strictness tests."""
    return our_state(resnet18)


def expect_load_error(model, state, tmp_path, error=ValueError, **kwargs):
    with pytest.raises(error) as info:
        load_pretrained(model, write_weights(state, tmp_path / "w.pdparams"), **kwargs)
    return str(info.value)


# ---- file formats ----

def test_torch_zip_reader_matches_torch_without_torch():
    file, state = read_state_dict(FIXTURES / "torch_formats.pth")  # {"epoch": 3, "state_dict": {...}}
    expected = np.load(FIXTURES / "torch_formats_expected.npz")
    assert file == FIXTURES / "torch_formats.pth"
    assert sorted(state) == sorted(expected.files)
    for name in expected.files:
        assert state[name].shape == expected[name].shape, name
        assert state[name].dtype == expected[name].dtype, name
        np.testing.assert_array_equal(state[name], expected[name], err_msg=name)


def test_torch_zip_reader_refuses_other_globals():
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load global 'argparse\.Namespace'"):
        read_state_dict(FIXTURES / "refused_global.pth")


def test_legacy_torch_format_is_refused_with_advice():
    with pytest.raises(ValueError, match=r"pre-1\.6 \(non-zip\) format.*re-save it"):
        read_state_dict(FIXTURES / "legacy_format.pth")


def test_missing_file_names_the_path_tried(tmp_path, resnet18):
    with pytest.raises(FileNotFoundError, match=re.escape(f"'{tmp_path / 'output' / 'best.pdparams'}'")):
        load_pretrained(resnet18, tmp_path / "output" / "best")
    with pytest.raises(FileNotFoundError, match=re.escape(f"no weights file at '{tmp_path / 'w.pth'}'")):
        load_pretrained(resnet18, tmp_path / "w.pth")


def test_path_without_suffix_means_pdparams(tmp_path, resnet18, resnet18_state):
    write_weights(resnet18_state, tmp_path / "best.pdparams")
    report = load_pretrained(resnet18, tmp_path / "best")
    assert report.file == str(tmp_path / "best.pdparams")
    assert (report.source, report.tensors_loaded, report.head_reinitialized) == ("paddle", 102, False)


@pytest.mark.parametrize("wrapper", ["state_dict", "model", "model_state"])
@pytest.mark.slow
def test_wrapped_checkpoints_and_module_prefix(tmp_path, resnet18, resnet18_state, wrapper):
    wrapped = {wrapper: {f"module.{k}": v for k, v in resnet18_state.items()}}
    paddle.save(wrapped, str(tmp_path / "ckpt.pdparams"))
    report = load_pretrained(resnet18, tmp_path / "ckpt.pdparams")
    assert (report.prefix_stripped, report.tensors_loaded) == ("module.", 102)


# ---- real weights: imgsim's trained ResNet-50 (torchvision layout) ----

@pytest.mark.skipif(importlib.util.find_spec("imgsim") is None, reason="imgsim (real ResNet-50 weights) not installed")
@pytest.mark.slow
def test_imgsim_real_resnet50_matches_torch_on_chelsea():
    """imgsim 0.1.2 ships model.pth: torchvision resnet50 under 'module.pre.', fc 2048 -> 768.

    The reference is torch's output for the same file and input (make_fixtures.py, before imgsim's tanh).
    """
    weights = Path(importlib.util.find_spec("imgsim").submodule_search_locations[0]) / "model.pth"
    model = build_model("resnet50", num_classes=768)
    report = load_pretrained(model, weights)
    # 320 tensors: 267 weights and BN statistics + 53 num_batches_tracked counters.
    assert (report.source, report.prefix_stripped, report.tensors_loaded) == ("torchvision", "module.pre.", 267)
    assert report.entries_without_weights == 53 and "53 entries without weights left out" in str(report)
    assert report.head_reinitialized is False
    ours = logits(model, chelsea_batch())[0]
    assert np.abs(ours - np.load(FIXTURES / "imgsim_chelsea_resnet50.npy")).max() <= 1e-4


# ---- reference models with seeded weights: PaddleClas (its own code) and timm layouts (torch) ----

REFERENCE_CASES = sorted(p.stem for p in FIXTURES.glob("*.json"))


@pytest.mark.parametrize("name", REFERENCE_CASES)
@pytest.mark.slow
def test_reference_checkpoint_gives_reference_logits(tmp_path, name):
    case = load_case(name)
    state = {k: seeded_array(k, tuple(shape)) if shape else np.array(0, np.int64) for k, shape in case["tensors"]}
    path = write_weights(state, tmp_path / f"{name}.{case['file_format']}")
    model = build_model(case["arch"], num_classes=NUM_CLASSES, **case["model_kwargs"])
    report = load_pretrained(model, path)
    weight_tensors = [k for k, _ in case["tensors"] if not k.endswith("num_batches_tracked")]
    assert (report.source, report.tensors_loaded) == (case["source"], len(weight_tensors))
    assert_close(logits(model, reference_input()), case["logits"])


def test_reference_cases_cover_paddleclas_and_timm():
    assert {load_case(n)["source"] for n in REFERENCE_CASES} == {"paddleclas", "timm"}


@pytest.mark.slow
def test_paddle_vision_resnet50_loads_with_identical_outputs(tmp_path):
    reference = paddle.vision.models.resnet50()
    path = tmp_path / "vision_resnet50.pdparams"
    paddle.save(reference.state_dict(), str(path))
    model = build_model("resnet50")
    report = load_pretrained(model, path)
    assert (report.source, report.tensors_loaded) == ("paddle", len(reference.state_dict()))
    x = reference_input()
    np.testing.assert_array_equal(logits(model, x), logits(reference, x))


# ---- PaddleClas layouts ----

def test_paddleclas_resnet18_vd_layout_adds_4224_trainable_params():
    with paddle.LazyGuard():
        plain = build_model("resnet18_vd")
        paddleclas = build_model("resnet18_vd", project_stage1=True)
    assert trainable_params(plain) == 11_708_744
    assert trainable_params(paddleclas) == 11_708_744 + 4_224


@pytest.mark.parametrize("name, arch, expected", [
    ("paddleclas_resnet18_vd", "resnet18_vd",
     "unexpected in the checkpoint (5): layer1.0.downsample.1.weight (from 'blocks.0.short.conv.weight')"),
    ("paddleclas_resnet18_vd", "resnet18_vd", "build the model with project_stage1=True"),
    ("timm_resnetv2_50", "resnet50", "hint: the checkpoint is a pre-activation ResNet: build a *_v2 model"),
    ("timm_resnet50d", "resnet50", "hint: the checkpoint has a deep ResNet-D stem: build a *_vd model"),
])
@pytest.mark.slow
def test_layout_mismatch_says_what_to_build(tmp_path, name, arch, expected):
    state = {k: np.zeros(shape, np.float32) for k, shape in load_case(name)["tensors"]}
    with paddle.LazyGuard():
        model = build_model(arch, num_classes=NUM_CLASSES)
    assert expected in expect_load_error(model, state, tmp_path)


def legacy_paddleclas_names(depths, static):
    """Key names of PaddleClas's pre-2.2 ResNet_vd (model_zoo/resnet_vd.py), following its naming code:
    dygraph structured names (conv1_1._conv.weight, bb_0_0.conv0._batch_norm._mean, out.weight), or
    the static-graph parameter names (conv1_1_weights, bn2a_branch2a_scale, res4b12_branch1_weights, fc_0.w_0)."""
    bn_leaves = ("scale", "offset", "mean", "variance") if static else ("weight", "bias", "_mean", "_variance")

    def conv_bn(structured, conv_name):
        if not static:
            return [f"{structured}._conv.weight"] + [f"{structured}._batch_norm.{leaf}" for leaf in bn_leaves]
        bn_name = "bn" + conv_name[3:] if conv_name.startswith("res") else "bn" + conv_name[4:]
        return [f"{conv_name}_weights"] + [f"{bn_name}_{leaf}" for leaf in bn_leaves]

    names = [n for i in (1, 2, 3) for n in conv_bn(f"conv1_{i}", f"conv1_{i}")]
    for stage, blocks in enumerate(depths):
        for i in range(blocks):
            letters = ("a" if i == 0 else f"b{i}") if sum(depths) > 16 and stage == 2 else chr(97 + i)
            prefix = f"res{stage + 2}{letters}"
            for k, branch in enumerate(("2a", "2b", "2c")):
                names += conv_bn(f"bb_{stage}_{i}.conv{k}", f"{prefix}_branch{branch}")
            if i == 0:
                names += conv_bn(f"bb_{stage}_{i}.short", f"{prefix}_branch1")
    return names + (["fc_0.w_0", "fc_0.b_0"] if static else ["out.weight", "out.bias"])


@pytest.mark.parametrize("arch, depths", [("resnet50_vd", (3, 4, 6, 3)), ("resnet101_vd", (3, 4, 23, 3))])
@pytest.mark.parametrize("static", [False, True], ids=["dygraph", "static"])
def test_legacy_paddleclas_names_map_onto_ours(arch, depths, static):
    names = legacy_paddleclas_names(depths, static)
    renamed = to_our_names({n: np.zeros(1, np.float32) for n in names})
    with paddle.LazyGuard():
        ours = build_model(arch).state_dict()
    assert renamed.source == "paddleclas"
    assert sorted(renamed.state) == sorted(ours)


@pytest.mark.parametrize("source, key, expected", [
    ("paddleclas", "stem.2.bn._variance", "bn1._variance"),
    ("paddleclas", "blocks.3.short.conv.weight", "layer2.0.downsample.1.weight"),
    ("paddleclas", "res4b12_branch2b_weights", "layer3.12.conv2.weight"),
    ("paddleclas", "bn5a_branch1_offset", "layer4.0.downsample.2.bias"),
    ("paddleclas", "bb_2_5.conv2._batch_norm._mean", "layer3.5.bn3._mean"),
    ("timm", "stages.2.blocks.0.downsample.conv.weight", "layer3.0.downsample.1.weight"),
    ("timm", "stem.norm2.running_var", "conv1.4._variance"),
    ("timm", "stages.0.blocks.1.norm3.bias", "layer1.1.bn3.bias"),
    ("timm", "head.fc.bias", "fc.bias"),
    ("torchvision", "layer1.0.downsample.1.running_mean", "layer1.0.downsample.1._mean"),
])
def test_single_keys_in_a_deep_stem_layout(source, key, expected):
    layout = Layout(deep_stem=True, stage_starts=(0, 3))
    assert SCHEMES[source].rename(key, layout) == expected


# ---- strictness ----

def test_missing_key_is_named_with_the_source(tmp_path, resnet18, resnet18_state):
    state = dict(resnet18_state)
    del state["layer1.0.bn1._mean"]
    message = expect_load_error(resnet18, state, tmp_path)
    assert "(source: paddle) does not fit the model" in message
    assert "missing from the checkpoint (1): layer1.0.bn1._mean" in message


def test_unexpected_key_is_named(tmp_path, resnet18, resnet18_state):
    message = expect_load_error(resnet18, {**resnet18_state, "layer5.0.conv1.weight": np.zeros(3, np.float32)},
                                tmp_path)
    assert "unexpected in the checkpoint (1): layer5.0.conv1.weight" in message
    assert "missing" not in message


def test_shape_mismatch_is_named_with_both_shapes(tmp_path, resnet18, resnet18_state):
    state = {**resnet18_state, "conv1.weight": np.zeros((64, 3, 3, 3), np.float32)}
    message = expect_load_error(resnet18, state, tmp_path)
    assert "shape mismatch, checkpoint vs model (1): conv1.weight [64, 3, 3, 3] vs [64, 3, 7, 7]" in message


def test_failed_load_leaves_the_model_untouched(tmp_path, resnet18, resnet18_state):
    before = resnet18.state_dict()["layer1.0.conv1.weight"].numpy().copy()
    state = {k: v + 1 for k, v in resnet18_state.items() if k != "bn1.bias"}
    expect_load_error(resnet18, state, tmp_path)
    np.testing.assert_array_equal(resnet18.state_dict()["layer1.0.conv1.weight"].numpy(), before)


def test_head_with_other_class_count_is_reinitialised_in_one_log_line(tmp_path, resnet18_state, caplog):
    model = build_model("resnet18", num_classes=5)
    path = write_weights(resnet18_state, tmp_path / "w.pdparams")
    with caplog.at_level(logging.INFO, logger="paddle_resnet"):
        report = load_pretrained(model, path)
    assert [r.getMessage() for r in caplog.records] == [
        "classifier head re-initialised: the checkpoint has 10 classes, the model has 5 classes"]
    assert (report.head_reinitialized, report.checkpoint_classes, report.model_classes) == (True, 10, 5)
    assert report.tensors_loaded == 100
    assert "classifier head re-initialised (10 -> 5 classes)" in str(report)
    state = model.state_dict()
    np.testing.assert_array_equal(state["layer4.1.bn2._variance"].numpy(), resnet18_state["layer4.1.bn2._variance"])
    assert not state["fc.bias"].numpy().any() and np.abs(state["fc.weight"].numpy()).max() <= 1 / np.sqrt(512)


def test_head_mismatch_without_reinit_names_both_counts(tmp_path, resnet18_state):
    model = build_model("resnet18", num_classes=5)
    message = expect_load_error(model, resnet18_state, tmp_path, reinit_head=False)
    assert "the checkpoint has 10 classes, the model has 5 classes" in message
    assert "(-o Arch.class_num=10), or give it a new head of 5 classes first: tools/convert_weights.py" in message
    assert "--num-classes 5" in message and "reinit_head" not in message


def test_headless_model_drops_the_checkpoint_head(tmp_path, resnet18_state, caplog):
    with paddle.LazyGuard():
        model = build_model("resnet18", num_classes=0)
    with caplog.at_level(logging.INFO, logger="paddle_resnet"):
        report = load_pretrained(model, write_weights(resnet18_state, tmp_path / "w.pdparams"))
    assert caplog.records[0].getMessage() == (
        "classifier head dropped: the checkpoint has 10 classes, the model has no classifier head")
    assert (report.head_reinitialized, report.tensors_loaded) == (False, 100)


def test_unknown_source_is_refused(tmp_path, resnet18, resnet18_state):
    message = expect_load_error(resnet18, resnet18_state, tmp_path, source="caffe")
    assert message == (f"{tmp_path / 'w.pdparams'}: unknown source 'caffe'; choose one of auto, paddle, paddleclas, "
                       f"torchvision, timm")


def test_undetectable_scheme_asks_for_source(tmp_path, resnet18):
    message = expect_load_error(resnet18, {"foo": np.zeros(2, np.float32), "bar": np.zeros(2, np.float32)},
                                tmp_path)
    assert message == (f"{tmp_path / 'w.pdparams'}: cannot tell which naming scheme the checkpoint uses (first keys: "
                       f"foo, bar); name it with source= (convert_weights.py: --source), one of paddle, paddleclas, "
                       f"torchvision, timm")


# ---- tools/convert_weights.py ----

def torchvision_named(state):
    """Our resnet18 state renamed and laid out as torchvision would save it."""
    renamed = {k.replace("._mean", ".running_mean").replace("._variance", ".running_var"): v
               for k, v in state.items()}
    renamed["fc.weight"] = np.ascontiguousarray(state["fc.weight"].T)
    return renamed


@pytest.mark.slow
def test_convert_weights_cli_end_to_end(tmp_path, resnet18_state):
    src = write_weights(torchvision_named(resnet18_state), tmp_path / "resnet18_torchvision.npz")
    dst = tmp_path / "out" / "resnet18.pdparams"
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "convert_weights.py"), "--arch", "resnet18",
                           "--src", str(src), "--dst", str(dst)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "loaded 102 tensors" in done.stdout and "source: torchvision" in done.stdout
    assert [p.name for p in dst.parent.iterdir()] == ["resnet18.pdparams"]  # no temp file left behind
    converted = paddle.load(str(dst), return_numpy=True)
    assert sorted(converted) == sorted(resnet18_state)
    for name, value in resnet18_state.items():
        np.testing.assert_array_equal(converted[name], value, err_msg=name)


def test_convert_weights_cli_reports_errors_without_traceback(tmp_path, capsys):
    from paddle_resnet.cli.convert_weights import main
    with pytest.raises(SystemExit) as info:
        main(["--arch", "resnet18", "--src", str(tmp_path / "nope"), "--dst", str(tmp_path / "o.pdparams")],
             prog="convert_weights.py")
    assert info.value.code == 1
    assert capsys.readouterr().err == (f"convert_weights.py: error: no weights file at '{tmp_path / 'nope.pdparams'}' "
                                       f"or '{tmp_path / 'nope'}'\n")


# ---- the other way: --to paddleclas ----

PADDLECLAS_CASES = ("paddleclas_resnet18_vd", "paddleclas_resnet34", "paddleclas_resnet50")


@pytest.mark.parametrize("name", PADDLECLAS_CASES)
@pytest.mark.slow
def test_to_paddleclas_writes_paddleclas_own_names_shapes_and_arrays(tmp_path, name):
    """Our model holding PaddleClas's seeded weights, written back with --to paddleclas, is PaddleClas's
    state dict again: the same names in the same order (make_fixtures.py took them from PaddleClas's own
    classes), shapes and arrays."""
    case = load_case(name)
    state = {k: seeded_array(k, tuple(shape)) for k, shape in case["tensors"]}
    ours = write_weights({k: v for k, v in to_our_names(state, "paddleclas").state.items()}, tmp_path / "ours.pdparams")
    convert_checkpoint(case["arch"], ours, tmp_path / "theirs.pdparams", to="paddleclas")
    _, written = read_state_dict(tmp_path / "theirs.pdparams")
    assert [(k, list(v.shape)) for k, v in written.items()] == [(k, shape) for k, shape in case["tensors"]]
    for key, array in state.items():
        np.testing.assert_array_equal(written[key], array, err_msg=key)


@pytest.mark.parametrize("ctor, arch, project_stage1", [("ResNet18_vd", "resnet18_vd", True),
                                                        ("ResNet50_vd", "resnet50_vd", False),
                                                        ("ResNet18", "resnet18", False)])
@pytest.mark.slow
def test_to_paddleclas_loads_into_paddleclas_classes_with_the_same_outputs(tmp_path, ctor, arch, project_stage1):
    """PaddleClas's own class (the paddleclas wheel's code) loads the converted file with no missing or
    unexpected key and computes what our model computes; our default resnet18 (no stage-1 projection) gets
    PaddleClas's projection as an exact identity."""
    from paddleclas_code import paddleclas_resnet
    theirs = getattr(paddleclas_resnet(), ctor)(class_num=NUM_CLASSES)
    model = build_model(arch, num_classes=NUM_CLASSES, project_stage1=project_stage1)
    model.set_state_dict({k: seeded_array(k, tuple(v.shape)) for k, v in model.state_dict().items()})
    src = tmp_path / "ours.pdparams"
    paddle.save(model.state_dict(), str(src))
    convert_checkpoint(arch, src, tmp_path / "theirs.pdparams", to="paddleclas")
    _, written = read_state_dict(tmp_path / "theirs.pdparams")
    assert theirs.set_state_dict(written) == ([], [])  # (missing, unexpected)
    assert_close(logits(theirs, reference_input()), logits(model, reference_input()), tolerance=1e-5)


PADDLECLAS_CLASSES = {f"ResNet{d}{v}": f"resnet{d}{v.lower()}" for d in (18, 34, 50, 101, 152) for v in ("", "_vd")}


@pytest.mark.slow
def test_to_paddleclas_names_every_paddleclas_resnet_class():
    """Names and shapes of PaddleClas's ResNet18..152 and ResNet18_vd..ResNet152_vd (built without weights).
    Its ResNet200_vd (3, 12, 48, 3 blocks per stage) is our resnet200_vd_paddleclas, checked in test_recipes.py;
    our resnet200_vd (timm's resnet200d, 3, 24, 36, 3) is refused below."""
    from paddleclas_code import paddleclas_resnet
    resnet = paddleclas_resnet()
    for ctor, arch in PADDLECLAS_CLASSES.items():
        with paddle.LazyGuard():
            theirs = getattr(resnet, ctor)(class_num=NUM_CLASSES).state_dict()
            ours = build_model(arch, num_classes=NUM_CLASSES, project_stage1=arch.startswith(("resnet18", "resnet34")))
        renamed = to_paddleclas_names(ours.state_dict())
        assert [(k, v.shape) for k, v in renamed.items()] == [(k, v.shape) for k, v in theirs.items()], ctor


@pytest.mark.parametrize("arch, kwargs, problem", [
    ("resnet50_v2", {}, "PaddleClas has no pre-activation (v2) ResNet"),
    ("resnext101_32x8d", {}, "PaddleClas's ResNeXt are 32x4d and 64x4d (groups 32 or 64, base_width 4) and it has "
                             "no wide ResNet; this model has groups=32, base_width=8"),
    ("wide_resnet50_2", {}, "PaddleClas's ResNeXt are 32x4d and 64x4d (groups 32 or 64, base_width 4) and it has "
                            "no wide ResNet; this model has groups=1, base_width=128"),
    ("resnet200", {}, "PaddleClas has no ResNet200"),
    ("resnet200_vd", {}, "PaddleClas's ResNet200_vd stacks 3, 12, 48, 3 blocks per stage; this model (timm's "
                         "resnet200d) 3, 24, 36, 3: build resnet200_vd_paddleclas (Arch.name: ResNet200_vd)"),
    ("resnet18", {"stem_type": "small"}, "PaddleClas's ResNet has the classic 7x7 stem with plain shortcuts, or "
                                         "(_vd) the deep stem with average-pool shortcuts; this model has "
                                         "stem_type='small' with avg_down=False"),
])
@pytest.mark.slow
def test_to_paddleclas_refuses_models_paddleclas_cannot_express(tmp_path, arch, kwargs, problem):
    with paddle.LazyGuard():
        model = build_model(arch, num_classes=NUM_CLASSES, **kwargs)
    src = write_weights({k: np.zeros(v.shape, np.float32) for k, v in model.state_dict().items()},
                        tmp_path / "ours.pdparams")
    with pytest.raises(ValueError) as info:
        convert_checkpoint(arch, src, tmp_path / "theirs.pdparams", to="paddleclas", **kwargs)
    assert str(info.value) == f"{arch} from {src} cannot be written in PaddleClas's layout: {problem}"
    assert not (tmp_path / "theirs.pdparams").exists()


def test_to_paddleclas_cli_error_is_one_line(tmp_path, capsys):
    from paddle_resnet.cli.convert_weights import main
    with paddle.LazyGuard():
        model = build_model("resnet50_v2", num_classes=NUM_CLASSES)
    src = write_weights({k: np.zeros(v.shape, np.float32) for k, v in model.state_dict().items()},
                        tmp_path / "v2.pdparams")
    with pytest.raises(SystemExit) as info:
        main(["--arch", "resnet50_v2", "--src", str(src), "--dst", str(tmp_path / "o.pdparams"), "--to", "paddleclas"],
             prog="convert_weights.py")
    assert info.value.code == 1
    assert capsys.readouterr().err == (f"convert_weights.py: error: resnet50_v2 from {src} cannot be written in "
                                       f"PaddleClas's layout: PaddleClas has no pre-activation (v2) ResNet\n")


@pytest.mark.slow
def test_real_torchvision_weights_run_in_paddleclas_resnet50_as_in_torch(tmp_path):
    """imgsim's real ResNet-50 (a torch .pth), converted with --to paddleclas, in PaddleClas's own ResNet50
    gives torch's output for that file (make_fixtures.py) on chelsea."""
    from paddleclas_code import paddleclas_resnet
    weights = Path(importlib.util.find_spec("imgsim").submodule_search_locations[0]) / "model.pth"
    convert_checkpoint("resnet50", weights, tmp_path / "ResNet50_imgsim.pdparams", to="paddleclas")
    theirs = paddleclas_resnet().ResNet50(class_num=768)
    _, written = read_state_dict(tmp_path / "ResNet50_imgsim.pdparams")
    assert theirs.set_state_dict(written) == ([], [])
    out = logits(theirs, chelsea_batch())[0]
    assert np.abs(out - np.load(FIXTURES / "imgsim_chelsea_resnet50.npy")).max() <= 1e-4


@pytest.mark.parametrize("module, ctor, arch, kwargs", [
    ("resnext", "ResNeXt50_32x4d", "resnext50_32x4d", {}),
    ("resnext_vd", "ResNeXt50_vd_32x4d", "resnext50_32x4d", {"stem_type": "deep", "avg_down": True}),
])
@pytest.mark.slow
def test_paddleclas_resnext_checkpoints_give_paddleclas_outputs(tmp_path, module, ctor, arch, kwargs):
    """PaddleClas 2.6's ResNeXt classes (model_zoo/resnext.py, resnext_vd.py: conv._conv / conv1_1 stems,
    bb_S_B blocks, out head) with seeded weights load into ours with the same logits."""
    from paddleclas_code import paddleclas_resnet
    with paddle.utils.unique_name.guard():  # model_zoo classes name their parameters process-wide
        theirs = getattr(paddleclas_resnet(f"arch.backbone.model_zoo.{module}"), ctor)(class_num=NUM_CLASSES)
    state = {k: seeded_array(k, tuple(v.shape)) for k, v in theirs.state_dict().items()}
    theirs.set_state_dict(state)
    model = build_model(arch, num_classes=NUM_CLASSES, **kwargs)
    report = load_pretrained(model, write_weights(state, tmp_path / f"{ctor}.pdparams"))
    assert (report.source, report.tensors_loaded) == ("paddleclas", len(state))
    assert_close(logits(model, reference_input()), logits(theirs, reference_input()))


@pytest.mark.parametrize("module, ctor, kwargs", [
    ("resnext", "ResNeXt50_32x4d", {}),
    ("resnext_vd", "ResNeXt50_vd_32x4d", {"stem_type": "deep", "avg_down": True}),
])
@pytest.mark.slow
def test_to_paddleclas_resnext_loads_into_paddleclas_resnext(tmp_path, module, ctor, kwargs):
    from paddleclas_code import paddleclas_resnet
    with paddle.utils.unique_name.guard():  # model_zoo classes name their parameters process-wide
        theirs = getattr(paddleclas_resnet(f"arch.backbone.model_zoo.{module}"), ctor)(class_num=NUM_CLASSES)
    model = build_model("resnext50_32x4d", num_classes=NUM_CLASSES, **kwargs)
    model.set_state_dict({k: seeded_array(k, tuple(v.shape)) for k, v in model.state_dict().items()})
    src = tmp_path / "ours.pdparams"
    paddle.save(model.state_dict(), str(src))
    convert_checkpoint("resnext50_32x4d", src, tmp_path / "theirs.pdparams", to="paddleclas", **kwargs)
    _, written = read_state_dict(tmp_path / "theirs.pdparams")
    assert sorted(written) == sorted(theirs.state_dict())
    assert theirs.set_state_dict(written) == ([], [])
    assert_close(logits(theirs, reference_input()), logits(model, reference_input()), tolerance=1e-5)
