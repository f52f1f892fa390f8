"""precision="bf16": the fp32 export run by Paddle Inference with oneDNN's bfloat16 kernels, on imgsim's trained
ResNet-50 and scikit-image's photos where the CPU has avx512_bf16 / AMX; its one-line errors everywhere."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_tool
from paddle_resnet.cli.predict import main as predict_main
from paddle_resnet.deploy import Predictor, backends
from paddle_resnet.deploy.backends import RuntimeOptions, resolve_backend
from paddle_resnet.deploy.model_dir import ModelFiles
from paddle_resnet.errors import ConfigError
from test_folder_prediction import export_small_model

NO_BF16 = ("precision='bf16' needs a CPU with bfloat16 instructions (avx512_bf16 or amx_bf16 in /proc/cpuinfo), "
           "which this one lacks; use precision='fp32', or 'int8' with an export made with --quantize int8")
needs_bf16 = pytest.mark.skipif(not backends.cpu_has_fast_bf16(),
                                reason="this CPU has no avx512_bf16 / amx_bf16 (Paddle's supports_bfloat16_fast_"
                                       "performance() is False)")
needs_imgsim = pytest.mark.skipif(importlib.util.find_spec("imgsim") is None,
                                  reason="imgsim (real ResNet-50 weights) not installed")
# scikit-image's photos (its cat() is chelsea() again); grey ones are given as RGB.
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
          "colorwheel", "brick", "camera", "clock", "coins", "grass", "gravel", "moon", "logo", "cell", "page", "text")
# Measured on imgsim's ResNet-50 (softmax over its 768 outputs) and these 19 photos, Intel Xeon with AMX,
# Paddle 3.3.1, 2026-12-06: largest |bf16 - fp32| of any probability 0.022 (bf16 keeps ~3 significant digits).
SOFTMAX_BOUND = 0.03
IMAGENET_EVAL = [{"DecodeImage": {}}, {"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}},
                 {"NormalizeImage": {"order": ""}}, "ToCHWImage"]


def rgb_photos():
    from skimage import data
    photos = [getattr(data, name)() for name in PHOTOS]
    return [np.ascontiguousarray(np.stack([p] * 3, axis=-1) if p.ndim == 2 else p[..., :3]) for p in photos]


@pytest.fixture(scope="module")
def imgsim_export(tmp_path_factory):
    """imgsim's trained ResNet-50 (768 outputs, softmax appended) exported in fp32."""
    from paddle_resnet import build_model, load_pretrained
    from paddle_resnet.deploy import export_inference
    model = build_model("resnet50", num_classes=768)
    load_pretrained(model, "imgsim:resnet50")
    model.eval()
    folder = tmp_path_factory.mktemp("imgsim_resnet50")
    export_inference(model, folder, eval_ops=IMAGENET_EVAL, model_name="resnet50", onnx=False)
    return folder


@needs_bf16
@needs_imgsim
@pytest.mark.slow
def test_bf16_keeps_the_fp32_top1_on_real_photos(imgsim_export, tmp_path):
    fp32 = Predictor(imgsim_export, backend="paddle")
    bf16 = Predictor(imgsim_export, precision="bf16")
    assert bf16.backend_name == "paddle"
    batch = fp32.preprocess(rgb_photos())
    expected, got = fp32.run(batch), bf16.run(batch)
    assert (got.argmax(1) == expected.argmax(1)).all(), (got.argmax(1), expected.argmax(1))
    difference = np.abs(got - expected).max()
    assert 1e-4 < difference < SOFTMAX_BOUND  # above 1e-4: it did run in bf16, not fp32
    photo = tmp_path / "chelsea.png"
    Image.fromarray(rgb_photos()[1]).save(photo)
    cli = run_tool("predict.py", "--model-dir", str(imgsim_export), "--input", str(photo), "--precision", "bf16",
                   "--top-k", "1")
    assert cli.returncode == 0 and cli.stdout.startswith(f"{photo}: {expected[1].argmax()} "), cli.stderr


def test_bf16_errors_are_one_line(monkeypatch):
    with pytest.raises(ConfigError) as error:
        RuntimeOptions(device="gpu", precision="bf16")
    assert str(error.value) == ("precision='bf16' is the CPU path here (Paddle Inference with oneDNN); on "
                                "device='gpu' use precision='fp16'")
    with pytest.raises(ConfigError) as error:
        RuntimeOptions(precision="bf16", use_mkldnn=False)
    assert str(error.value) == ("precision='bf16' runs on oneDNN's kernels: use_mkldnn=False cannot run it; keep "
                                "use_mkldnn=True or use precision='fp32'")
    monkeypatch.setattr(backends, "cpu_has_fast_bf16", lambda: True)
    files = ModelFiles(Path("inference.json"), Path("inference.pdiparams"), onnx=Path("inference.onnx"))
    options = RuntimeOptions(precision="bf16")
    assert resolve_backend("auto", files, options) == "paddle"  # though auto runs fp32 on ONNX Runtime here
    with pytest.raises(ConfigError) as error:
        resolve_backend("onnxruntime", files, options)
    assert str(error.value) == ("precision='bf16' runs on the paddle backend only (Paddle Inference with oneDNN): "
                                "use backend='auto' or 'paddle'")
    monkeypatch.setattr(backends, "cpu_has_fast_bf16", lambda: False)
    with pytest.raises(ConfigError) as error:
        RuntimeOptions(precision="bf16")
    assert str(error.value) == NO_BF16


def test_predict_without_bf16_instructions_is_one_line(tmp_path, monkeypatch, capsys):
    model_dir = export_small_model(tmp_path / "model")
    Image.new("RGB", (40, 32), (90, 140, 200)).save(tmp_path / "blue.png")
    monkeypatch.setattr(backends, "cpu_has_fast_bf16", lambda: False)
    code = predict_main(["--model-dir", model_dir, "--input", str(tmp_path / "blue.png"), "--precision", "bf16"],
                        prog="predict.py")
    assert code == 1
    assert capsys.readouterr().err.splitlines() == [f"predict.py: error: {NO_BF16}"]
