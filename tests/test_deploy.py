"""Export to Paddle Inference / ONNX, the Predictor, and tools/predict.py (small ResNet18s at 64x64)."""
import json
import logging
import os
import stat
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import yaml
import paddle
import pytest
from PIL import Image

from paddle_resnet import build_model, fileio
from paddle_resnet.data.pipeline import build_transforms
from paddle_resnet.deploy import InferenceConfig, Predictor, export_inference
from paddle_resnet.deploy.benchmark import measure, timings_table
from paddle_resnet.errors import ConfigError, InputError, MissingFileError, UserError, short_repr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 64
EVAL_OPS = [
    {"DecodeImage": {"to_rgb": True, "channel_first": False}},
    {"ResizeImage": {"resize_short": 72}},
    {"CropImage": {"size": SIZE}},
    {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                        "order": ""}},
    "ToCHWImage",
]
LABELS = [f"class_{i}" for i in range(10)]


def calibrated_model(name, seed=0):
    """A model whose BN running statistics are those of a real batch, as after training: folding BN into
    the convolutions at export then changes the weights, which is what parity has to survive."""
    paddle.seed(seed)
    model = build_model(name, num_classes=len(LABELS))
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            layer._momentum = 0.0  # running stats := this batch's stats
    model.train()
    with paddle.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "When training, we now always track global mean ..."
        model(paddle.to_tensor(np.random.default_rng(seed).standard_normal((8, 3, SIZE, SIZE), dtype=np.float32)))
    model.eval()
    return model


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """(model name, softmax, onnx) -> (dygraph model, export dir); each exported once per module."""
    cache = {}

    def get(name="resnet18", softmax=False, onnx=False):
        key = (name, softmax, onnx)
        if key not in cache:
            model = calibrated_model(name)
            directory = tmp_path_factory.mktemp(f"{name}_{'softmax' if softmax else 'logits'}")
            export_inference(model, directory, image_shape=(3, SIZE, SIZE), eval_ops=EVAL_OPS, label_list=LABELS,
                             softmax=softmax, onnx=onnx, model_name=name)
            cache[key] = (model, directory)
        return cache[key]
    return get


@pytest.fixture(scope="module")
def predictor(exports):
    """Like ``exports``, but a Predictor on the export (Paddle Inference unless ``backend`` says otherwise)."""
    cache = {}

    def get(name="resnet18", softmax=False, onnx=False, backend="paddle"):
        key = (name, softmax, onnx, backend)
        if key not in cache:
            cache[key] = Predictor(exports(name, softmax, onnx)[1], backend=backend)
        return cache[key]
    return get


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    directory = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(1)
    paths = []
    for i, (h, w) in enumerate([(80, 100), (120, 90)]):
        path = directory / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def dygraph(model, batch):
    with paddle.no_grad():
        return model(paddle.to_tensor(batch)).numpy()


def random_batch(batch_size, seed=2):
    return np.random.default_rng(seed).standard_normal((batch_size, 3, SIZE, SIZE), dtype=np.float32)


def run_predict_tool(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "predict.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def write_unreadable_images(folder):
    """A corrupt PNG, an empty JPEG and a text file named .jpg; returns their paths."""
    folder.mkdir(exist_ok=True)
    files = {"corrupt.png": b"\x89PNG\r\n\x1a\n" + bytes(40), "empty.jpg": b"", "notes.jpg": b"just some text\n"}
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return [str(folder / name) for name in sorted(files)]


# ---- parity -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["resnet18", "resnet18_vd", "resnet18_v2"])
@pytest.mark.slow
def test_paddle_inference_matches_dygraph(exports, predictor, name):
    onnx = name == "resnet18"  # the ONNX tests reuse this export
    model, _ = exports(name, onnx=onnx)
    for batch_size in (1, 3, 8):
        batch = random_batch(batch_size)
        np.testing.assert_allclose(predictor(name, onnx=onnx).run(batch), dygraph(model, batch), rtol=0, atol=1e-5)


@pytest.mark.slow
def test_onnxruntime_matches_paddle_inference(predictor):
    paddle_predictor = predictor(onnx=True)
    onnx_predictor = predictor(onnx=True, backend="onnxruntime")
    for batch_size in (1, 3, 8):
        batch = random_batch(batch_size)
        np.testing.assert_allclose(onnx_predictor.run(batch), paddle_predictor.run(batch), rtol=0, atol=1e-4)


@pytest.mark.slow
def test_auto_backend_prefers_onnxruntime_on_cpu_when_exported(exports):
    assert Predictor(exports("resnet18", onnx=True)[1], warmup=0).backend_name == "onnxruntime"
    assert Predictor(exports("resnet18", softmax=True)[1], warmup=0).backend_name == "paddle"


def test_onnxruntime_threads_stop_spinning_when_a_run_returns(predictor):
    """Folder prediction decodes between model calls on the cores the model's threads would spin on."""
    from paddle_resnet.deploy.backends import SPINNING_STOP, OnnxRuntimeBackend

    served = predictor(onnx=True, backend="onnxruntime")
    assert served.backend.session.get_session_options().get_session_config_entry(SPINNING_STOP) == "1"
    spinning = OnnxRuntimeBackend(served.files.onnx, served.options, session_config={SPINNING_STOP: "0"})
    assert spinning.session.get_session_options().get_session_config_entry(SPINNING_STOP) == "0"


@pytest.mark.slow
def test_exported_files_load_with_paddle_alone(exports, tmp_path):
    """The directory is self-contained: a fresh process with only paddle (no paddle_resnet) runs it."""
    model, directory = exports("resnet18", onnx=True)
    batch = random_batch(3)
    np.save(tmp_path / "batch.npy", batch)
    script = textwrap.dedent(f"""
        import sys, numpy as np, paddle.inference as pi
        config = pi.Config({str(directory / "inference.json")!r}, {str(directory / "inference.pdiparams")!r})
        config.disable_glog_info()
        predictor = pi.create_predictor(config)
        handle = predictor.get_input_handle(predictor.get_input_names()[0])
        handle.reshape([3, 3, {SIZE}, {SIZE}])
        handle.copy_from_cpu(np.load({str(tmp_path / "batch.npy")!r}))
        predictor.run()
        output = predictor.get_output_handle(predictor.get_output_names()[0])
        np.save({str(tmp_path / "out.npy")!r}, output.copy_to_cpu())
        assert not any(m.startswith("paddle_resnet") for m in sys.modules), "paddle_resnet was imported"
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), dygraph(model, batch), rtol=0, atol=1e-5)


# ---- inference.yml, preprocessing, softmax --------------------------------------------------------------------

def test_inference_yml_round_trip(exports):
    _, directory = exports("resnet18", onnx=True)
    config = InferenceConfig.load(directory)
    assert config.transform_ops == EVAL_OPS
    assert config.image_shape == (3, SIZE, SIZE)
    assert config.label_list == LABELS and config.model_name == "resnet18" and config.softmax is False
    assert config.model_files == {"program": "inference.json", "params": "inference.pdiparams",
                                  "onnx": "inference.onnx"}
    assert all((directory / name).is_file() for name in config.model_files.values())
    summary = config.to_dict()["preprocess"]["summary"]
    assert summary["resize_short"] == 72 and summary["crop_size"] == [SIZE, SIZE]
    assert summary["mean"] == [0.485, 0.456, 0.406] and summary["std"] == [0.229, 0.224, 0.225]
    assert summary["channel_order"] == "RGB" and summary["layout"] == "CHW"
    assert not [p for p in os.listdir(directory) if p.startswith(".")], "staging or commit folder left behind"


def test_predictor_preprocessing_equals_build_transforms(predictor, images):
    predictor = predictor(onnx=True)
    reference = build_transforms(EVAL_OPS)
    pil_image = Image.open(images[1])
    array = np.asarray(Image.open(images[0]).convert("RGB"))
    expected = np.stack([reference(open(images[0], "rb").read()), reference(pil_image), reference(array)])
    np.testing.assert_array_equal(predictor.preprocess([images[0], pil_image, array]), expected)


@pytest.mark.slow
def test_softmax_is_applied_by_default(exports, predictor, images):
    model, _ = exports("resnet18", softmax=True)
    predictor = predictor(softmax=True)
    batch = predictor.preprocess(images)
    probabilities = predictor.run(batch)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    logits = dygraph(model, batch)
    np.testing.assert_allclose(probabilities, np.exp(logits) / np.exp(logits).sum(1, keepdims=True), atol=1e-5)


def test_softmax_off_exports_logits_and_predict_still_gives_probabilities(predictor, images):
    predictor = predictor(onnx=True)
    logits = predictor.run(predictor.preprocess(images))
    assert not np.allclose(logits.sum(axis=1), 1.0)
    result = predictor.predict(images, top_k=len(LABELS))[0]
    assert abs(sum(result.scores) - 1.0) < 1e-5
    assert result.scores == sorted(result.scores, reverse=True)
    assert result.label_names == [LABELS[i] for i in result.class_ids]


# ---- bad inputs and requests --------------------------------------------------------------------------------

def test_unreadable_image_is_skipped_and_reported(predictor, images, tmp_path, caplog):
    broken, missing = tmp_path / "broken.jpg", tmp_path / "missing.jpg"
    broken.write_bytes(b"not an image")
    predictor = predictor(softmax=True)
    with caplog.at_level(logging.WARNING):
        results = predictor.predict([images[0], str(broken), str(missing), images[1]], top_k=3, batch_size=2)
    assert [r.input for r in results] == [images[0], str(broken), str(missing), images[1]]
    assert [r.skipped for r in results] == [False, True, True, False]
    assert all(len(r.class_ids) == 3 for r in results if not r.skipped)
    assert str(broken) in caplog.text and str(missing) in caplog.text


def test_skip_reasons_name_the_file_whatever_the_decoder_says(predictor, tmp_path):
    unreadable = write_unreadable_images(tmp_path / "bad") + [str(tmp_path / "missing.jpg")]
    results = predictor(softmax=True).predict(unreadable)
    assert [r.input for r in results] == unreadable and all(r.skipped for r in results)
    for path, result in zip(unreadable, results):
        assert path in result.error and "BytesIO" not in result.error and "\n" not in result.error


@pytest.mark.parametrize("argument", ["top_k", "batch_size"])
@pytest.mark.parametrize("value", [0, -1, 2.5])
def test_predict_rejects_counts_below_one(predictor, images, argument, value):
    with pytest.raises(InputError, match=f"^{argument} must be an integer >= 1, got {value}$"):
        predictor(softmax=True).predict(images, **{argument: value})


def test_bad_device_precision_and_backend_are_config_errors(exports):
    _, directory = exports("resnet18", softmax=True)
    for options, message in (({"device": "cuda"}, "device 'cuda' is not supported; choose one of cpu, gpu"),
                             ({"precision": "fp64"}, "precision 'fp64' is not supported"),
                             ({"backend": "onnx"}, "backend 'onnx' is not supported; choose one of auto, paddle, "
                                                   "onnxruntime; did you mean 'onnxruntime'?"),
                             ({"max_batch_size": 0}, "max_batch_size must be an integer >= 1, got 0")):
        with pytest.raises(ConfigError) as error:
            Predictor(directory, warmup=0, **options)
        assert message in str(error.value)
    with pytest.raises(MissingFileError, match="backend='onnxruntime' needs inference.onnx"):
        Predictor(directory, backend="onnxruntime", warmup=0)


@pytest.mark.parametrize("text, reason", [
    ("model_name: [unclosed\n", "while parsing"),
    ("- a list, not a mapping\n", "the file must be a dict"),
    ("image_shape: [3, big, 64]\n", "image_shape must be [C, H, W] with 1 or 3 channels and sides from 1 to 8192"),
    ("preprocess: {transform_ops: [DecodeImage, {NoSuchOp: {}}]}\n", "preprocess.transform_ops cannot be built"),
    ("input: {dtype: float16}\n", "input.dtype 'float16' is not supported; the Predictor feeds float32"),
    ("data_format: nhwc\n", "data_format must be NCHW or NHWC, got 'nhwc'"),
])
@pytest.mark.slow
def test_corrupt_inference_yml_is_a_config_error_naming_the_file(exports, tmp_path, text, reason):
    _, directory = exports("resnet18", softmax=True)
    copy = tmp_path / "export"
    shutil.copytree(directory, copy)
    (copy / "inference.yml").write_text(text)
    with pytest.raises(ConfigError) as error:
        Predictor(copy, warmup=0)
    message = str(error.value)
    assert str(copy / "inference.yml") in message and reason in message and "\n" not in message


def damaged_copy(exports, tmp_path, damage):
    """A copy of the resnet18 export with ``damage(folder)`` applied (found by the hostile probe)."""
    _, directory = exports("resnet18", softmax=True)
    copy = tmp_path / "export"
    shutil.copytree(directory, copy)
    damage(copy)
    return copy


def edit_yml(change):
    def damage(folder):
        data = yaml.safe_load((folder / "inference.yml").read_text())
        change(data)
        (folder / "inference.yml").write_text(yaml.safe_dump(data))
    return damage


def truncate(name, keep):
    def damage(folder):
        (folder / name).write_bytes((folder / name).read_bytes()[:keep])
    return damage


@pytest.mark.parametrize("damage, reason", [
    (lambda folder: (folder / "inference.yml").write_text(""), "is not a valid inference.yml (the file is empty)"),
    (edit_yml(lambda d: d["model_files"].update(params="../../../etc/passwd")),
     "model_files.params must be a file name inside the folder, got '../../../etc/passwd'"),
    (edit_yml(lambda d: d["preprocess"]["transform_ops"].append({"ResizeImage": {"size": 64}})),
     "preprocess.transform_ops cannot be built (transform_ops: ResizeImage must come before NormalizeImage"),
    (edit_yml(lambda d: d["preprocess"]["transform_ops"].insert(3, {"CropImage": {"size": 32}})),
     "preprocess.transform_ops turn a 197x131 image into [3, 32, 32], not the model's input [3, 64, 64]"),
    (edit_yml(lambda d: d.update(label_list=["a"])), "the model has 10 classes but the label list has 1 names"),
    (edit_yml(lambda d: d["preprocess"].update(transform_ops=[])),
     "preprocess.transform_ops must start with DecodeImage, got no ops"),
    (edit_yml(lambda d: d["preprocess"]["transform_ops"].pop(0)),
     "preprocess.transform_ops must start with DecodeImage, got 'ResizeImage'"),
    (edit_yml(lambda d: d["preprocess"]["transform_ops"][-2]["NormalizeImage"].update(std=[1.0, float("nan"), 1.0])),
     "preprocess.transform_ops cannot be built (transform_ops: NormalizeImage: std must be a list of finite non-zero numbers, "
     "one per channel, got [1.0, nan, 1.0])"),
    (truncate("inference.pdiparams", 100_000), "the runtime cannot load the model files ("),
    (truncate("inference.json", 3000), "the runtime cannot load the model files ("),
])
@pytest.mark.slow
def test_a_damaged_export_is_one_line_naming_the_folder(exports, tmp_path, damage, reason):
    copy = damaged_copy(exports, tmp_path, damage)
    with pytest.raises(ConfigError) as error:
        Predictor(copy, backend="paddle")
    message = str(error.value)
    assert str(copy) in message and reason in message and "\n" not in message, message


def test_missing_model_file_names_the_file_and_the_export_command(exports, tmp_path):
    _, directory = exports("resnet18", softmax=True)
    # Without inference.yml the folder is read as a PaddleClas export (tests/test_paddleclas_deploy.py).
    for missing in ("inference.pdiparams", "inference.json"):
        copy = tmp_path / missing
        shutil.copytree(directory, copy)
        (copy / missing).unlink()
        with pytest.raises(MissingFileError) as error:
            Predictor(copy)
        message = str(error.value)
        assert f"{missing} is missing" in message
        assert "python tools/export_model.py -c configs/" in message
        assert f"-o Global.save_inference_dir={copy}" in message


@pytest.mark.skipif(paddle.is_compiled_with_cuda(), reason="checks the errors of a CPU-only Paddle")
def test_gpu_and_tensorrt_on_cpu_only_paddle_fail_clearly(exports):
    _, directory = exports("resnet18", softmax=True)
    with pytest.raises(RuntimeError, match="CPU-only build.*paddlepaddle-gpu"):
        Predictor(directory, backend="paddle", device="gpu", use_tensorrt=True, precision="fp16")
    with pytest.raises(RuntimeError, match="CPU-only build") as error:
        Predictor(directory, device="gpu")
    assert isinstance(error.value, UserError)
    with pytest.raises(ValueError, match="TensorRT runs on NVIDIA GPUs"):
        Predictor(directory, use_tensorrt=True)
    with pytest.raises(ValueError, match="needs device='gpu'"):
        Predictor(directory, precision="fp16")


def test_missing_model_dir_says_so(tmp_path):
    with pytest.raises(MissingFileError, match=f"^the inference directory {tmp_path / 'none'} does not exist. "
                                               "Export the model first: python tools/export_model.py"):
        Predictor(tmp_path / "none")


def test_nhwc_model_refuses_onnx_export(tmp_path):
    model = build_model("resnet18", num_classes=2, data_format="NHWC")
    with pytest.raises(ValueError, match="NHWC"):
        export_inference(model, tmp_path, image_shape=(3, SIZE, SIZE), eval_ops=EVAL_OPS, onnx=True)
    assert not (tmp_path / "inference.yml").exists()


@pytest.mark.slow
def test_reexport_replaces_files_it_no_longer_writes(exports, tmp_path):
    model, _ = exports("resnet18", softmax=True)
    (tmp_path / "inference.onnx").write_bytes(b"from an earlier export")
    (tmp_path / "class_indices.json").write_text(json.dumps({str(i): f"name{i}" for i in range(len(LABELS))}))
    written = export_inference(model, tmp_path, image_shape=(3, SIZE, SIZE), eval_ops=EVAL_OPS)
    assert set(written) == {"program", "params", "config"}
    assert not (tmp_path / "inference.onnx").exists(), "a stale ONNX file would not match the new weights"
    assert (tmp_path / "class_indices.json").exists()
    predictor = Predictor(tmp_path, warmup=0)
    assert predictor.backend_name == "paddle"
    assert predictor.label_names == [f"name{i}" for i in range(len(LABELS))]


def test_crop_size_must_match_image_shape(tmp_path):
    with pytest.raises(ConfigError, match="does not match image_shape"):
        export_inference(build_model("resnet18", num_classes=2), tmp_path, image_shape=(3, 224, 224),
                         eval_ops=EVAL_OPS)


# ---- an export is one unit: a kill leaves the old one or (after recovery) the new one, never a mix ----------

NEW_LABELS = [f"new_{i}" for i in range(len(LABELS))]


class Killed(BaseException):
    """Stands for SIGKILL: nothing of the export runs after it."""


@pytest.fixture
def old_export(exports, tmp_path):
    """A copy of an export with ONNX and LABELS, to export a different model over."""
    model, directory = exports("resnet18", onnx=True)
    copy = tmp_path / "export"
    shutil.copytree(directory, copy)
    return model, copy


def export_over(directory, model):
    """Exports ``model`` (other weights than the old export's) with other labels and without ONNX."""
    export_inference(model, directory, image_shape=(3, SIZE, SIZE), eval_ops=EVAL_OPS, label_list=NEW_LABELS,
                     softmax=False)


def assert_serves(directory, model, labels, backend):
    predictor = Predictor(directory, warmup=0)
    assert predictor.label_names == labels and predictor.backend_name == backend
    batch = random_batch(2)
    np.testing.assert_allclose(predictor.run(batch), dygraph(model, batch), rtol=0, atol=1e-4)


@pytest.mark.parametrize("moves_before_kill", [0, 1, 2])
@pytest.mark.slow
def test_kill_after_the_commit_serves_the_new_export_and_recover_completes_it(old_export, monkeypatch,
                                                                               moves_before_kill):
    _, directory = old_export
    new_model = calibrated_model("resnet18", seed=1)
    real_replace, moved = os.replace, []

    def replace_then_die(src, dst):
        if fileio.COMMIT_SUFFIX in os.fspath(src):  # a move out of the commit folder
            if len(moved) == moves_before_kill:
                raise Killed()
            moved.append(dst)
        real_replace(src, dst)
    monkeypatch.setattr(os, "replace", replace_then_die)
    with pytest.raises(Killed):
        export_over(directory, new_model)
    monkeypatch.undo()
    assert (directory / ".inference.commit").is_dir()

    assert_serves(directory, new_model, NEW_LABELS, "paddle")
    fileio.recover(directory)
    assert sorted(os.listdir(directory)) == ["inference.json", "inference.pdiparams", "inference.yml"]
    assert_serves(directory, new_model, NEW_LABELS, "paddle")


@pytest.mark.slow
def test_kill_before_the_commit_leaves_the_previous_export(old_export, monkeypatch):
    old_model, directory = old_export
    before = sorted(os.listdir(directory))
    real_rename = os.rename

    def die_at_commit(src, dst):
        if os.fspath(dst).endswith(fileio.COMMIT_SUFFIX):
            raise Killed()
        real_rename(src, dst)
    monkeypatch.setattr(os, "rename", die_at_commit)
    with pytest.raises(Killed):
        export_over(directory, calibrated_model("resnet18", seed=1))
    monkeypatch.undo()
    assert sorted(os.listdir(directory)) == before
    assert_serves(directory, old_model, LABELS, "onnxruntime")


# ---- tools/predict.py ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_predict_tool_input_matching_nothing(tmp_path):
    pattern = str(tmp_path / "nothing" / "*.jpg")
    result = run_predict_tool("--model-dir", tmp_path, "--input", pattern)
    assert result.returncode == 1  # a user error; 2 is argparse's, for a malformed command line
    assert f"--input {short_repr(pattern)} matches no image file" in result.stderr


@pytest.mark.slow
def test_predict_tool_end_to_end(exports, images, tmp_path):
    _, directory = exports("resnet18", softmax=True)
    input_dir = tmp_path / "in"
    input_dir.mkdir()
    for path in images:
        shutil.copy(path, input_dir)
    (input_dir / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    (input_dir / "notes.txt").write_text("not an image file name: ignored")
    out = tmp_path / "out.json"
    result = run_predict_tool("--model-dir", directory, "--input", input_dir, "--top-k", 2, "--json", out)
    assert result.returncode == 0, result.stderr[-2000:]
    records = json.loads(out.read_text())
    assert [os.path.basename(r["input"]) for r in records] == ["broken.jpg", "img0.png", "img1.png"]
    assert records[0]["error"] and not records[0]["class_ids"]
    for record in records[1:]:
        assert record["error"] is None and len(record["class_ids"]) == 2
        assert record["label_names"] == [LABELS[i] for i in record["class_ids"]]
        assert 0 < record["scores"][1] <= record["scores"][0] <= 1
        assert f"{record['label_names'][0]} {record['scores'][0]:.4f}" in result.stdout
    assert "1 of 3 inputs could not be read" in result.stderr
    broken = str(input_dir / "broken.jpg")
    assert records[0]["input"] == broken and broken in records[0]["error"]
    assert f"{broken}: SKIPPED (" in result.stdout and "BytesIO" not in result.stdout + result.stderr


@pytest.mark.parametrize("option, value", [("--top-k", "-1"), ("--top-k", "0"), ("--batch-size", "0"),
                                           ("--cpu-threads", "0"), ("--benchmark-batch-sizes", "x")])
@pytest.mark.slow
def test_predict_tool_rejects_counts_below_one(tmp_path, option, value):
    result = run_predict_tool("--model-dir", tmp_path, "--input", tmp_path, option, value)
    assert result.returncode == 2
    bound = "from 1 to 64" if option == "--cpu-threads" else ">= 1"
    expected = f"predict.py: error: argument {option}: must be an integer {bound}, got {value}"
    assert result.stderr.splitlines()[-1] == expected


@pytest.mark.slow
def test_predict_tool_fails_when_no_input_could_be_read(exports, tmp_path):
    _, directory = exports("resnet18", softmax=True)
    unreadable = write_unreadable_images(tmp_path / "bad")
    out = tmp_path / "out.json"
    result = run_predict_tool("--model-dir", directory, "--input", tmp_path / "bad", "--json", out)
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.splitlines()[-1] == "predict.py: error: none of the 3 inputs could be read"
    skipped_lines = result.stdout.splitlines()
    assert len(skipped_lines) == 3
    for path, line in zip(unreadable, skipped_lines):
        assert line.startswith(f"{path}: SKIPPED (") and path in line[len(path) + 1:]
    records = json.loads(out.read_text())
    assert [r["input"] for r in records] == unreadable and all(r["input"] in r["error"] for r in records)
    assert "BytesIO" not in result.stdout + result.stderr + out.read_text()


@pytest.mark.slow
def test_predict_json_never_replaces_a_fifo_or_a_folder(exports, images, tmp_path):
    _, directory = exports("resnet18", softmax=True)
    fifo, folder = tmp_path / "fifo.json", tmp_path / "folder.json"
    os.mkfifo(fifo)
    folder.mkdir()
    for target, kind in [(fifo, "a FIFO"), (folder, "a folder")]:
        result = run_predict_tool("--model-dir", directory, "--input", images[0], "--json", target)
        assert result.returncode == 1 and result.stdout == ""
        assert result.stderr.splitlines()[-1] == (f"predict.py: error: cannot write --json {target}: it is {kind}, "
                                                  "not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(folder) == []


@pytest.mark.slow
def test_predict_tool_missing_model_dir_is_one_line(images, tmp_path):
    missing = tmp_path / "no_model"
    result = run_predict_tool("--model-dir", missing, "--input", images[0])
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"predict.py: error: the inference directory {missing} does not exist. Export the model first: "
        "python tools/export_model.py -c configs/<model>.yaml -o Global.pretrained_model=<weights.pdparams> "
        f"-o Global.save_inference_dir={missing}"]


def test_predict_tool_reports_user_errors_in_one_line_and_keeps_tracebacks_of_bugs(images, monkeypatch, capsys):
    import paddle_resnet.deploy
    from paddle_resnet.cli import predict

    def predictor_raising(error):
        def create(*args, **kwargs):
            raise error
        return create
    monkeypatch.setattr(paddle_resnet.deploy, "Predictor", predictor_raising(ConfigError("bad value")))
    assert predict.main(["--model-dir", "m", "--input", images[0]], prog="predict.py") == 1
    assert capsys.readouterr().err == "predict.py: error: bad value\n"
    monkeypatch.setattr(paddle_resnet.deploy, "Predictor", predictor_raising(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        predict.main(["--model-dir", "m", "--input", images[0]], prog="predict.py")


def test_benchmark_table_has_one_row_per_timing():
    timings = [measure(name, lambda: None, batch_size, warmup=0, min_runs=3, min_seconds=0)
               for name in ("a", "b") for batch_size in (1, 8)]
    table = timings_table(timings, gflop_per_image=1.0, reference="a")
    assert len(table.splitlines()) == 2 + len(timings)
    assert "| b | 8 |" in table and "vs a" in table
