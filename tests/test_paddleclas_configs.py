"""Every ResNet-family config of PaddleClas 2.6 runs here as shipped.

The 38 files of PaddleClas's ``ppcls/configs/ImageNet/`` folders ``ResNet/``, ``ResNeXt/`` and ``DataAugment/``
are vendored unmodified under ``tests/fixtures/paddleclas/configs/``. Each one is loaded with ``-o`` overrides
of what belongs to the data set and the machine only (class count, data paths, output folder, epochs, device),
and, in the slow test, trained two steps on real photos, evaluated and exported.

The slow test trains one config of each kind by default: configs of one model family that differ only in
numbers (ResNeXt50_32x4d and ResNeXt152_64x4d: same ops, optimizer, schedule and switches, other depth, width
and weight decay) run the same code, so the shallowest stands for its kind (21 of 38; the load test above
still checks every model name's depth, groups and stem). ``pytest --every-paddleclas-config`` trains all 38 (about 12 min
on 2 cores).
"""
import os
import re
import shutil
from pathlib import Path

import numpy as np
import paddle
import pytest
import yaml
from PIL import Image

from paddle_resnet.config import load_config
from paddle_resnet.models import model_args

CONFIG_ROOT = Path(__file__).parent / "fixtures" / "paddleclas" / "configs"
FOLDER_COUNTS = {"DataAugment": 9, "ResNeXt": 12, "ResNet": 17}
CONFIGS = sorted(str(path.relative_to(CONFIG_ROOT)) for path in CONFIG_ROOT.rglob("*.yaml"))
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")  # one class each
TRAIN_CROPS, EVAL_CROPS = [(0, 0), (16, 16)], [(8, 4)]  # 48 px crops of the photo scaled to a 64 px short side
BATCH = 4  # 8 train images: two steps
SIZE = 32  # RandCropImage / CropImage size; ResizeImage's short side is RESIZE
RESIZE = 36
# PaddleClas's learning rates are for its own batch; the linear scaling rule's reference for lr 0.1 is 256
# (Goyal et al.). Given the tiny batch, the recipe's lr 0.1 makes the 101- and 152-layer models give NaN in
# eval mode after two steps (their BN running statistics are still at their initial values).
RECIPE_BATCH = 256


def op_names(ops):
    return [op if isinstance(op, str) else next(iter(op)) for op in ops or []]


def data_overrides(data_root, output_dir):
    """The overrides a PaddleClas user makes for their own data: class count, lists, output, epochs, device."""
    overrides = [f"Arch.class_num={len(PHOTOS)}", f"Global.output_dir={output_dir}", "Global.device=cpu",
                 "Global.epochs=1"]
    for mode, split in (("Train", "train"), ("Eval", "val")):
        overrides += [f"DataLoader.{mode}.dataset.image_root={data_root}",
                      f"DataLoader.{mode}.dataset.cls_label_path={data_root}/{split}_list.txt"]
    return overrides


def small_run_overrides(raw):
    """What makes two steps cheap: batch size, workers and image sizes (the ops' indexes read from the file)."""
    overrides = [f"Global.image_shape=[{raw['Global']['image_shape'][0]}, {SIZE}, {SIZE}]",
                 f"Optimizer.lr.base_batch_size={RECIPE_BATCH}"]
    sizes = {"RandCropImage": ("size", SIZE), "CropImage": ("size", SIZE), "ResizeImage": ("resize_short", RESIZE)}
    for mode in ("Train", "Eval"):
        key = f"DataLoader.{mode}"
        overrides += [f"{key}.sampler.batch_size={BATCH}", f"{key}.loader.num_workers=0"]
        for index, name in enumerate(op_names(raw["DataLoader"][mode]["dataset"]["transform_ops"])):
            if name in sizes:
                option, value = sizes[name]
                overrides.append(f"{key}.dataset.transform_ops.{index}.{name}.{option}={value}")
    return overrides


def read_raw(name):
    with open(CONFIG_ROOT / name, encoding="utf-8") as f:
        return yaml.safe_load(f)


def expected_arch(arch_name):
    """What a PaddleClas model name means: depth, ResNeXt groups, the _vd stem."""
    depth, vd, groups = re.fullmatch(r"ResNe(?:t|Xt)(\d+)(_vd)?(?:_(\d+)x4d)?", arch_name).groups()
    return int(depth), bool(vd), int(groups or 1)


def shape_of(value):
    """``value`` with its numbers replaced by their type: what code it runs, not with which numbers."""
    if isinstance(value, dict):
        return tuple(sorted((key, shape_of(item)) for key, item in value.items()))
    if isinstance(value, list):
        return tuple(shape_of(item) for item in value)
    return type(value).__name__ if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def kind(name):
    """A config's kind: its model's family (ResNet or ResNeXt, _vd or not) and structure, not their numbers."""
    raw = read_raw(name)
    _depth, vd, groups = expected_arch(raw["Arch"].pop("name"))
    return vd, groups > 1, shape_of(raw)


def depth(name):
    return expected_arch(read_raw(name)["Arch"]["name"])[0]


def shallowest_of_each_kind(names):
    kinds = {}
    for name in sorted(names, key=lambda name: (depth(name), name)):
        kinds.setdefault(kind(name), name)
    return sorted(kinds.values())


def test_the_vendored_configs_are_the_38_files_of_the_three_folders():
    assert len(CONFIGS) == 38
    folders = [name.split(os.sep)[0] for name in CONFIGS]
    assert {folder: folders.count(folder) for folder in set(folders)} == FOLDER_COUNTS
    assert all(name.count(os.sep) == 1 for name in CONFIGS)


def test_one_config_of_each_kind_stands_for_the_others():
    representatives = shallowest_of_each_kind(CONFIGS)
    assert len(representatives) == 21
    assert "ResNeXt/ResNeXt50_32x4d.yaml" in representatives and "ResNeXt/ResNeXt152_64x4d.yaml" not in representatives
    assert kind("ResNeXt/ResNeXt50_32x4d.yaml") == kind("ResNeXt/ResNeXt152_64x4d.yaml")  # other weight decay
    assert kind("ResNet/ResNet18.yaml") != kind("ResNeXt/ResNeXt50_32x4d.yaml")  # grouped convolutions
    assert kind("ResNet/ResNet50.yaml") != kind("ResNet/ResNet101.yaml")  # Arch.pretrained: True
    assert all(name.startswith("DataAugment") for name in representatives[:9])  # every augmentation


@pytest.mark.parametrize("name", CONFIGS)
def test_config_loads_with_only_the_data_overridden(name, tmp_path):
    raw = read_raw(name)
    config = load_config(CONFIG_ROOT / name, data_overrides(tmp_path / "data", tmp_path / "out"))
    arch = config["Arch"]
    assert arch["name"] == raw["Arch"]["name"] and arch["class_num"] == len(PHOTOS)
    depth, vd, groups = expected_arch(arch["name"])
    built = model_args(arch["name"])
    assert built["depth"] == depth
    assert built.get("groups", 1) == groups
    assert (built.get("stem_type") == "deep") == vd and built.get("avg_down", False) == vd
    for mode in ("Train", "Eval"):
        dataset, raw_dataset = config["DataLoader"][mode]["dataset"], raw["DataLoader"][mode]["dataset"]
        listed = op_names(raw_dataset["transform_ops"])
        # PaddleClas's datasets transpose a still-HWC image to CHW; the loaded config spells that out.
        assert op_names(dataset["transform_ops"]) == listed + ["ToCHWImage"]
        assert op_names(dataset.get("batch_transform_ops")) == op_names(raw_dataset.get("batch_transform_ops"))
        assert dataset["image_root"] == str(tmp_path / "data")
    assert config["Optimizer"]["lr"]["learning_rate"] == raw["Optimizer"]["lr"]["learning_rate"]


# ------------------------------------------------------------------------------------------------ slow

@pytest.fixture(scope="module")
def photo_lists(tmp_path_factory):
    """A PaddleClas data folder: 48 px JPEG crops of four scikit-image photos, one class each, listed in
    train_list.txt (2 per class) and val_list.txt (1 per class)."""
    from skimage import data
    root = tmp_path_factory.mktemp("photos")
    lists = {"train": [], "val": []}
    for label, name in enumerate(PHOTOS):
        photo = Image.fromarray(getattr(data, name)()).convert("RGB")
        scale = 64 / min(photo.size)
        photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.BILINEAR)
        for split, corners in (("train", TRAIN_CROPS), ("val", EVAL_CROPS)):
            for x, y in corners:
                file_name = f"{name}_{x}_{y}.jpg"
                photo.crop((x, y, x + 48, y + 48)).save(root / file_name, quality=95)
                lists[split].append(f"{file_name} {label}")
    for split, lines in lists.items():
        (root / f"{split}_list.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def output_dir(tmp_path):
    """Removed after the test: a 152-layer model's checkpoints take about 2 GB."""
    yield tmp_path / "out"
    shutil.rmtree(tmp_path / "out", ignore_errors=True)


def recorded_losses(monkeypatch):
    from paddle_resnet.engine.trainer import Trainer
    losses, forward_backward = [], Trainer._forward_backward

    def recording(self, *args, **kwargs):
        loss, logits = forward_backward(self, *args, **kwargs)
        losses.append(float(loss))
        return loss, logits
    monkeypatch.setattr(Trainer, "_forward_backward", recording)
    return losses


def eval_mode_scores(model, batch, channels):
    """The trained model's softmax in eval mode; a 4-channel (*_ultra) model gets NormalizeImage's zero channel."""
    if channels == 4:
        batch = np.concatenate([batch, np.zeros_like(batch[:, :1])], axis=1)
    model.eval()
    with paddle.no_grad():
        return paddle.nn.functional.softmax(model(paddle.to_tensor(batch))).numpy()


def pytest_generate_tests(metafunc):
    if metafunc.function.__name__ == "test_config_trains_two_steps_evaluates_and_exports":
        every = metafunc.config.getoption("every_paddleclas_config")
        metafunc.parametrize("name", CONFIGS if every else shallowest_of_each_kind(CONFIGS))


@pytest.mark.slow
def test_config_trains_two_steps_evaluates_and_exports(name, photo_lists, output_dir, monkeypatch):
    from skimage import data
    from paddle_resnet.deploy import Predictor
    from paddle_resnet.engine import Engine
    raw = read_raw(name)
    config = load_config(CONFIG_ROOT / name, data_overrides(photo_lists, output_dir) + small_run_overrides(raw))
    engine = Engine(config)
    losses = recorded_losses(monkeypatch)
    engine.train()
    assert len(losses) == 2 and all(np.isfinite(losses)), losses
    top1 = engine.evaluate()["top1"]
    assert 0.0 <= top1 <= 1.0
    engine.export(str(output_dir / "inference"), onnx=False)
    assert {"inference.json", "inference.pdiparams", "inference.yml"} <= set(os.listdir(output_dir / "inference"))
    # oneDNN's graph passes take 2-9 s to set up per model here; the exported files are what is checked.
    predictor = Predictor(str(output_dir / "inference"), backend="paddle", warmup=0, use_mkldnn=False)
    batch = predictor.preprocess([data.coffee()])
    assert batch.shape == (1, 3, SIZE, SIZE)
    expected = eval_mode_scores(engine.model, batch, raw["Global"]["image_shape"][0])
    np.testing.assert_allclose(predictor.run(batch), expected, rtol=0, atol=1e-4)
