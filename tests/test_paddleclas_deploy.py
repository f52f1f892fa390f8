"""Inference models exported by PaddleClas itself, and PaddleClas's deploy config, through Predictor and predict.py.

The reference is PaddleClas 2.6.0's own ResNet50_vd (the paddleclas wheel's code, imported by
tests/paddleclas_code.py) in dygraph, on PaddleClas's default preprocessing written here from its
deploy/python/preprocess.py with PIL + numpy: cv2's INTER_LINEAR resize of the short side to 256 with
int(round()) sizes, center crop 224, ``x * 0.00392157``, ImageNet mean/std, CHW.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import paddle
import pytest
from PIL import Image

from paddle_resnet.cli.predict import main as predict_main
from paddle_resnet.deploy import Predictor
from paddle_resnet.deploy.paddleclas import read_deploy_config
from paddleclas_code import paddleclas_resnet, paddleclas_root
from test_config import alias_bomb
from test_weights import seeded_array

ROOT = Path(__file__).resolve().parents[1]
STOCK_CONFIG = ROOT / "tests" / "fixtures" / "paddleclas" / "inference_cls.yaml"  # deploy/configs/, unmodified
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
DEFAULTS_LOG = ("{} has no inference.yml: read as a PaddleClas export, preprocessed as PaddleClas's predict_cls.py "
                "does (RGB, resize short side to 256, center crop 224, ImageNet mean/std, CHW; resized with PIL's "
                "bilinear where PaddleClas's default is cv2's), no class names; -c inference_cls.yaml changes that")


# ---- PaddleClas's default preprocessing, independently of paddle_resnet ----

def cv2_linear_resize(img, width, height):
    """``cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)``: half-pixel centres, edge clamped,
    no antialiasing (up to cv2's fixed-point rounding)."""
    def taps(out_size, in_size):
        x = (np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5
        left = np.floor(x).astype(int)
        frac = np.where(left < 0, 0.0, x - left).astype(np.float32)
        left = np.clip(left, 0, in_size - 1)
        return left, np.clip(left + 1, 0, in_size - 1), frac
    top, bottom, fy = taps(height, img.shape[0])
    left, right, fx = taps(width, img.shape[1])
    img = img.astype(np.float32)
    rows = img[top] * (1 - fy)[:, None, None] + img[bottom] * fy[:, None, None]
    out = rows[:, left] * (1 - fx)[None, :, None] + rows[:, right] * fx[None, :, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def paddleclas_preprocess(path):
    img = np.asarray(Image.open(path).convert("RGB"))  # predict_cls.py: cv2.imread, then BGR -> RGB
    height, width = img.shape[:2]
    percent = 256 / min(width, height)
    img = cv2_linear_resize(img, int(round(width * percent)), int(round(height * percent)))
    height, width = img.shape[:2]
    top, left = (height - 224) // 2, (width - 224) // 2
    img = img[top:top + 224, left:left + 224]
    return ((img.astype(np.float32) * np.float32(0.00392157) - MEAN) / STD).transpose(2, 0, 1)


# ---- fixtures ----

@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from skimage import data
    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        Image.fromarray(getattr(data, name)()).save(folder / f"{name}.jpg", quality=95)
    return folder


@pytest.fixture(scope="module")
def paddleclas_export(tmp_path_factory, photos):
    """PaddleClas's ResNet50_vd with seeded weights, exported by paddle.jit.save (no inference.yml), and its
    dygraph logits on the photos. The classifier bias centres the photos' pooled features, so that the top-1
    class depends on the photo and not on the features' common mean (random weights give every photo one class)."""
    resnet = paddleclas_resnet()
    model = resnet.ResNet50_vd(class_num=1000)
    model.set_state_dict({k: seeded_array(k, tuple(v.shape)) for k, v in model.state_dict().items()})
    model.eval()
    features = []
    hook = model.fc.register_forward_pre_hook(lambda layer, inputs: features.append(inputs[0].numpy()))
    batch = np.stack([paddleclas_preprocess(photos / f"{name}.jpg") for name in PHOTOS])
    with paddle.no_grad():
        model(paddle.to_tensor(batch))
    hook.remove()
    weight = model.fc.weight.numpy()
    model.fc.bias.set_value((-features[0].mean(axis=0) @ weight).astype(np.float32))
    logits = features[0] @ weight + model.fc.bias.numpy()  # what the model now computes, without running it again
    folder = tmp_path_factory.mktemp("paddleclas_resnet50_vd")
    spec = [paddle.static.InputSpec([None, 3, 224, 224], "float32", name="x")]
    paddle.jit.save(paddle.jit.to_static(model, input_spec=spec), str(folder / "inference"))
    return folder, logits


# ---- a PaddleClas export without inference.yml ----

@pytest.mark.slow
def test_paddleclas_export_predicts_the_top1_of_paddleclas_dygraph(paddleclas_export, photos, caplog):
    folder, reference = paddleclas_export
    assert sorted(os.listdir(folder)) == ["inference.json", "inference.pdiparams"]
    with caplog.at_level("INFO", logger="paddle_resnet.deploy.paddleclas"):
        predictor = Predictor(folder, backend="paddle", cpu_threads=2)
    assert [r.getMessage() for r in caplog.records] == [DEFAULTS_LOG.format(folder)]
    paths = [str(photos / f"{name}.jpg") for name in PHOTOS]
    predictions = predictor.predict(paths, top_k=5)
    top1 = [int(i) for i in reference.argmax(axis=1)]
    assert len(set(top1)) == len(PHOTOS)  # the photos get different classes: the comparison means something
    assert [p.class_ids[0] for p in predictions] == top1
    assert [p.label_names[0] for p in predictions] == [str(i) for i in top1]  # no names unless given
    # The exported model outputs logits (no softmax): the scores are their softmax.
    logits = predictor.run(predictor.preprocess(paths))
    assert not np.allclose(logits.sum(axis=1), 1.0)
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    np.testing.assert_allclose([p.scores for p in predictions],
                               np.take_along_axis(probabilities, np.array([p.class_ids for p in predictions]), 1),
                               rtol=1e-5)
    for ours, theirs in zip(logits, reference):  # PIL's resize vs cv2's moves logits a little, not the ranking
        assert np.corrcoef(ours, theirs)[0, 1] > 0.999


def test_class_names_that_do_not_fit_the_model_name_the_map_file(paddleclas_export, tmp_path):
    folder, _ = paddleclas_export
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"{i} class {i}\n" for i in range(10)))
    config = tmp_path / "inference_cls.yaml"
    shutil.copy(STOCK_CONFIG, config)
    with pytest.raises(ValueError) as info:
        Predictor(folder, use_mkldnn=False,
                  paddleclas_config=read_deploy_config(config, [f"PostProcess.Topk.class_id_map_file={labels}"]))
    assert str(info.value) == (f"{folder}: the model has 1000 classes but the label list has 10 names. The class "
                               f"names come from PostProcess.Topk.class_id_map_file {labels}: give one "
                               f"'<class id> <name>' line per class of the model")


@pytest.mark.slow
def test_predict_cli_with_paddleclas_stock_deploy_config(paddleclas_export, photos, tmp_path):
    """deploy/configs/inference_cls.yaml unmodified, run from PaddleClas's deploy folder as its docs do (so its
    class_id_map_file, ../ppcls/utils/imagenet1k_label_list.txt, is the wheel's); only the model folder and
    the images are given, with -o as PaddleClas's commands pass them."""
    folder, reference = paddleclas_export
    deploy = Path(paddleclas_root()) / "deploy"
    label_list = (deploy.parent / "ppcls" / "utils" / "imagenet1k_label_list.txt").read_text().splitlines()
    names = dict(line.split(" ", 1) for line in label_list)
    out = tmp_path / "predictions.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "predict.py"), "-c", str(STOCK_CONFIG),
         "-o", f"Global.inference_model_dir={folder}", "-o", f"Global.infer_imgs={photos}", "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=deploy, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    predictions = {Path(p["input"]).stem: p for p in json.loads(out.read_text())}
    top1 = [int(i) for i in reference.argmax(axis=1)]
    assert [predictions[name]["class_ids"][0] for name in PHOTOS] == top1
    assert [predictions[name]["label_names"][0] for name in PHOTOS] == [names[str(i)] for i in top1]
    assert {len(p["class_ids"]) for p in predictions.values()} == {5}  # PostProcess.Topk.topk
    for expected in (f"{STOCK_CONFIG}: Global.use_gpu is true but this PaddlePaddle is a CPU-only build; "
                     f"running on the CPU",
                     f"{STOCK_CONFIG}: Global.enable_benchmark=True has no effect here: predict_cls.py itself "
                     f"never reads it; time the model with predict.py --benchmark",
                     f"{STOCK_CONFIG}: PostProcess.SavePreLabel is ignored: copying each image into a folder "
                     f"named after its class is not done here; use predict.py --json",
                     f"{folder}: preprocessing and class names from {STOCK_CONFIG} (PaddleClas deploy config"):
        assert expected in done.stderr


@pytest.mark.slow
def test_paddleclas_old_ir_export_pdmodel(tmp_path, photos):
    """inference.pdmodel (Paddle 2's program format, written by PaddleClas exports before Paddle 3)."""
    paddleclas_resnet()  # skips when the wheel is missing
    script = tmp_path / "export_old_ir.py"
    script.write_text(
        "import sys\nimport numpy as np, paddle\n"
        f"sys.path[:0] = [{str(ROOT / 'tests')!r}]\n"
        "from paddleclas_code import import_ppcls\nfrom test_weights import seeded_array\n"
        "from test_paddleclas_deploy import PHOTOS, paddleclas_preprocess\n"
        "model = import_ppcls('arch.backbone.legendary_models.resnet').ResNet18_vd(class_num=10)\n"
        "model.set_state_dict({k: seeded_array(k, tuple(v.shape)) for k, v in model.state_dict().items()})\n"
        "model.eval()\n"
        f"x = np.stack([paddleclas_preprocess({str(photos)!r} + f'/{{n}}.jpg') for n in PHOTOS])\n"
        "logits = model(paddle.to_tensor(x)).numpy()\n"
        f"np.save({str(tmp_path / 'logits.npy')!r}, logits)\n"
        "spec = [paddle.static.InputSpec([None, 3, 224, 224], 'float32', name='x')]\n"
        f"paddle.jit.save(paddle.jit.to_static(model, input_spec=spec), {str(tmp_path / 'model' / 'inference')!r})\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLAGS_enable_pir_api": "0"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert "inference.pdmodel" in os.listdir(tmp_path / "model")
    out = tmp_path / "predictions.json"
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "predict.py"), "--model-dir", str(tmp_path / "model"),
                           "--input", str(photos), "--top-k", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert DEFAULTS_LOG.format(tmp_path / "model") in done.stderr
    predictions = {Path(p["input"]).stem: p["class_ids"][0] for p in json.loads(out.read_text())}
    reference = np.load(tmp_path / "logits.npy")
    assert [predictions[name] for name in PHOTOS] == [int(i) for i in reference.argmax(axis=1)]


# ---- inference_cls.yaml: every key read, refused or warned about ----

def run_predict(capsys, config, *overrides, model_dir="unused", infer_imgs="unused"):
    code = predict_main(["-c", str(config), "-o", f"Global.inference_model_dir={model_dir}",
                         "-o", f"Global.infer_imgs={infer_imgs}", *sum((["-o", o] for o in overrides), [])],
                        prog="predict.py")
    return code, capsys.readouterr().err


@pytest.mark.parametrize("override, message", [
    ("PreProcess.transform_ops.1={CropImag: {size: 224}}",
     "PreProcess.transform_ops[1]: op 'CropImag' is not supported; choose one of ResizeImage, CropImage, "
     "NormalizeImage, ToCHWImage; did you mean 'CropImage'?"),
    ("PreProcess.transform_ops.0={RandFlipImage: {}}",
     "PreProcess.transform_ops[0]: RandFlipImage is not supported here: it is random; an inference pipeline must "
     "be deterministic"),
    ("PreProcess.transform_ops.2={NormalizeImage: {channel_num: 4}}",
     "PreProcess.transform_ops[2].NormalizeImage.channel_num 4 is not supported: the fourth, all-zero channel "
     "of channel_num 4 is for 4-channel models; use 3"),
    ("PreProcess.transform_ops.1={CropImage: {size: 0}}",
     "PreProcess.transform_ops: CropImage: size must be an int from 1 to 8192 or [width, height] of such ints, "
     "got 0"),
    ("PreProcess.transform_ops.3=null",
     "PreProcess.transform_ops[3] must be {OpName: {arguments}}, got None"),
    ("PreProcess.transform_ops.1={CropImage: {size: 300}}",
     "PreProcess.transform_ops cannot run: CropImage failed: image 341x256 is smaller than the crop 300x300; "
     "resize it first (ResizeImage)"),
    ("Global.batch_sise=2",
     "Global.batch_sise is not a key of PaddleClas's deploy Global section; known keys: use_gpu, enable_mkldnn, "
     "use_fp16, use_int8, use_tensorrt, use_onnx, use_npu, use_xpu, use_mlu, enable_benchmark, benchmark, "
     "enable_profile, ir_optim, batch_size, cpu_num_threads, gpu_mem, infer_imgs, inference_model_dir, "
     "save_log_path, model_name; did you mean 'batch_size'?"),
    ("Global.batch_size=0", "Global.batch_size must be an integer >= 1, got 0"),
    ("Global.use_fp16=true", "Global.use_fp16 true needs a GPU (Global.use_gpu: true with a CUDA build of "
                             "PaddlePaddle); on the CPU set it to false"),
    ("Global.use_gpu=yes please", "Global.use_gpu must be true or false, got 'yes please'"),
    ("PostProcess.Topk.topk=0", "PostProcess.Topk.topk must be an integer >= 1, got 0"),
    ("PostProcess.Topk.class_id_map=x.txt",
     "PostProcess.Topk has no argument 'class_id_map'; its arguments are topk, class_id_map_file, delimiter, "
     "label_list; did you mean 'class_id_map_file'?"),
    ("PostProcess.ThreshOutput={threshold: 0.5}",
     "PostProcess op 'ThreshOutput' is not supported; choose one of Topk, SavePreLabel; did you mean 'Topk'?"),
    ("Preprocess={}",
     "unknown section 'Preprocess'; a PaddleClas classification deploy config has Global, PreProcess, "
     "PostProcess; did you mean 'PreProcess'?"),
])
def test_deploy_config_errors_are_one_line(capsys, override, message):
    code, err = run_predict(capsys, STOCK_CONFIG, override)
    assert (code, err) == (1, f"predict.py: error: {STOCK_CONFIG}: {message}\n")


@pytest.mark.parametrize("content, message", [
    ("0 cat\nfoo\n", " line 2: expected '<class id> <name>', got 'foo'"),
    ("0 cat\nx dog\n", " line 2: expected '<class id> <name>', got 'x dog'"),
    ("0 cat\n0 dog\n", " line 2: class id 0 is listed twice"),
    ("0 cat\n2 dog\n", ": class ids must run from 0 to 1 (one line per class); 1 is missing"),
    ("\n\n", ": no '<class id> <name>' line"),
])
def test_class_id_map_file_errors_name_the_file_and_line(capsys, tmp_path, content, message):
    labels = tmp_path / "labels.txt"
    labels.write_text(content)
    code, err = run_predict(capsys, STOCK_CONFIG, f"PostProcess.Topk.class_id_map_file={labels}")
    assert (code, err) == (1, f"predict.py: error: {labels}{message}\n")


def test_class_id_map_file_size_is_capped(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("paddle_resnet.labels.MAX_LABEL_FILE_BYTES", 64)
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"{i} class {i}\n" for i in range(10)))
    code, err = run_predict(capsys, STOCK_CONFIG, f"PostProcess.Topk.class_id_map_file={labels}")
    assert (code, err) == (1, f"predict.py: error: class id map {labels} has 100 bytes, more than the 64 allowed\n")


def test_class_id_map_file_as_paddleclas_reads_it(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("1\tsiamese cat\r\n0\ttabby cat\r\n\n")  # any order, CRLF, a trailing blank line
    deploy = read_deploy_config(STOCK_CONFIG, [f"PostProcess.Topk.class_id_map_file={labels}",
                                               'PostProcess.Topk.delimiter="\\t"'])
    assert deploy.label_names == ["tabby cat", "siamese cat"]


def test_oversized_or_binary_files_are_refused(capsys, tmp_path):
    config = tmp_path / "big.yaml"
    config.write_bytes(b"#" * ((1 << 20) + 1))
    assert run_predict(capsys, config) == (1, f"predict.py: error: deploy config {config} has 1,048,577 bytes, more "
                                              f"than the 1,048,576 allowed\n")
    labels = tmp_path / "labels.txt"
    labels.write_bytes(b"0 \xff\xfe\n")
    code, err = run_predict(capsys, STOCK_CONFIG, f"PostProcess.Topk.class_id_map_file={labels}")
    assert (code, err) == (1, f"predict.py: error: class id map {labels} is neither UTF-8 nor GBK text (byte 0xff at "
                            f"offset 2)\n")


def test_stock_deploy_config_is_read_as_paddleclas_means_it(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="paddle_resnet.deploy.paddleclas"):
        deploy = read_deploy_config(STOCK_CONFIG, ["PostProcess.Topk.class_id_map_file=" + str(tmp_path / "no.txt")])
    assert (deploy.model_dir, deploy.infer_imgs, deploy.batch_size, deploy.top_k) == (
        "./models", "./images/ImageNet/ILSVRC2012_val_00000010.jpeg", 1, 5)
    assert deploy.predictor_options == {"device": "cpu", "use_mkldnn": True, "cpu_threads": 10}
    assert deploy.image_shape == (3, 224, 224) and deploy.label_names is None
    assert deploy.transform_ops == [
        {"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}},
        {"NormalizeImage": {"scale": 0.00392157, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                            "order": ""}},
        {"ToCHWImage": None}]
    assert (f"{STOCK_CONFIG}: PostProcess.Topk.class_id_map_file {tmp_path / 'no.txt'} does not exist: predictions "
            f"carry class ids, no names") in caplog.text


def test_command_line_arguments_win_over_the_deploy_config():
    from paddle_resnet.cli.predict import apply_deploy_config, parse_args
    args = parse_args(["-c", str(STOCK_CONFIG), "--model-dir", "mine", "--top-k", "2", "--cpu-threads", "1"])
    apply_deploy_config(args)
    assert (args.model_dir, args.input, args.top_k, args.batch_size, args.cpu_threads, args.device, args.backend) == (
        "mine", "./images/ImageNet/ILSVRC2012_val_00000010.jpeg", 2, 1, 1, "cpu", "auto")


@pytest.mark.parametrize("argv, message", [
    (["--input", "x.jpg"], "--model-dir is required (or -c with Global.inference_model_dir)"),
    (["--model-dir", "m", "--input", "x.jpg", "-o", "Global.batch_size=2"],
     "-o overrides a value of the -c config; give -c"),
])
def test_predict_arguments_without_a_deploy_config(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        predict_main(argv, prog="predict.py")
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"predict.py: error: {message}"


def deploy_config_with(tmp_path, *replacements):
    """The stock inference_cls.yaml with each (old, new) text of ``replacements`` replaced."""
    text = STOCK_CONFIG.read_text()
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "inference_cls.yaml"
    path.write_text(text)
    return path


def test_alias_bomb_in_a_deploy_config_label_list_is_refused_at_once(capsys, tmp_path):
    """Before: the bomb (anchored under SavePreLabel, which is ignored) reached Topk's label_list check, whose
    message formatted it: 9**8 copies of 324 bytes, gigabytes and minutes."""
    bomb = "".join(f"    {line}\n" for line in alias_bomb().splitlines())  # lines 32-40
    path = deploy_config_with(tmp_path, ("  SavePreLabel:\n    save_dir: ./pre_label/\n", ""),
                              ("  Topk:\n    topk: 5\n", "  SavePreLabel:\n" + bomb + "  Topk:\n    topk: 5\n"
                                                         "    label_list: *i\n"))
    started = time.perf_counter()
    code, err = run_predict(capsys, path)
    assert time.perf_counter() - started < 1
    assert (code, err) == (1, f"predict.py: error: deploy config {path}: aliases expand to more than 10,000 nodes "
                              f"(at line 36); write the values out instead\n")


def test_duplicate_key_in_a_deploy_config_names_both_lines(capsys, tmp_path):
    path = deploy_config_with(tmp_path, ("    topk: 5\n", "    topk: 5\n    topk: 1\n"))
    assert run_predict(capsys, path) == (1, f"predict.py: error: deploy config {path}: duplicate key 'topk' at "
                                            f"lines 32 and 33\n")
