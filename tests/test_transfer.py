"""Transfer learning end to end with configs/finetune_imagefolder.yaml, through the command-line tools:
photo folder -> split_dataset.py -> fine-tune from a checkpoint of another class count -> export -> predict."""
import json
import os
import re

import numpy as np
import paddle
import pytest

from conftest import ROOT, run_tool
from engine_fixtures import make_image_folder
from paddle_resnet.config import load_config
from paddle_resnet.labels import read_class_indices
from paddle_resnet.models import build_model

CONFIG = os.path.join(ROOT, "configs", "finetune_imagefolder.yaml")
COLOUR_NAMES = ["red", "green", "blue"]  # make_image_folder's class0..2; sorted, they become blue, green, red
LISTS = {"Train": "train_list.txt", "Eval": "val_list.txt"}  # as split_dataset.py writes them
pytestmark = pytest.mark.slow  # whole trainings and tools in subprocesses


def run_ok(tool, *args):
    result = run_tool(tool, *args)
    assert result.returncode == 0, f"{tool} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def photo_folder(root):
    make_image_folder(root, per_class=8, size=32)
    for index, name in enumerate(COLOUR_NAMES):
        os.rename(root / f"class{index}", root / name)
    return root


def overrides(photos, pretrained, out):
    """The config adapted to the tiny folder: resnet18, 32 px, 3 epochs at lr 0.03 with the backbone frozen."""
    values = [
        "Arch.name=resnet18", "Arch.class_num=3", "Arch.freeze=backbone",
        "Optimizer.lr.learning_rate=0.03", "Optimizer.lr.warmup_epoch=0",
        f"Global.pretrained_model={pretrained}", f"Global.output_dir={out / 'train'}", "Global.epochs=3",
        "Global.save_interval=1", "Global.image_shape=[3,32,32]", "Global.device=cpu", "Global.use_visualdl=false",
        f"Global.save_inference_dir={out / 'inference'}",
        "DataLoader.Train.dataset.transform_ops.1.RandCropImage.size=32",
        "DataLoader.Eval.dataset.transform_ops.1.ResizeImage.resize_short=32",
        "DataLoader.Eval.dataset.transform_ops.2.CropImage.size=32",
    ]
    for mode, list_file in LISTS.items():
        values += [f"DataLoader.{mode}.dataset.image_root={photos}",
                   f"DataLoader.{mode}.dataset.cls_label_path={photos / list_file}",
                   f"DataLoader.{mode}.sampler.batch_size=8", f"DataLoader.{mode}.loader.num_workers=0"]
    return [arg for value in values for arg in ("-o", value)]


def another_task_checkpoint():
    """resnet18 weights for 7 classes, every tensor (BN statistics too) perturbed: a fresh model built with
    the same seed would otherwise equal it, and the backbone check below would pass without any loading."""
    rng = np.random.default_rng(0)
    return {k: (v.numpy() * rng.uniform(0.8, 1.2, v.shape) + rng.uniform(-0.01, 0.01, v.shape)).astype("float32")
            for k, v in build_model("resnet18", num_classes=7).state_dict().items()}


def test_config_loads_with_named_pretrained_weights_and_five_classes():
    config = load_config(CONFIG)
    assert config["Global"]["pretrained_model"] == "imgsim:resnet50"
    assert (config["Arch"]["name"], config["Arch"]["class_num"]) == ("resnet50", 5)
    assert config["Arch"]["lr_mult_list"] == [0.1, 0.1, 0.2, 0.2, 0.3]
    assert config["DataLoader"]["Train"]["dataset"]["cls_label_path"] == "data/flower_photos/train_list.txt"


def test_photos_split_finetune_export_predict_with_names(tmp_path):
    photos, out = photo_folder(tmp_path / "photos"), tmp_path / "out"
    split = run_ok("split_dataset.py", "--src", str(photos), "--val-ratio", "0.25")
    assert "3 classes: 18 train, 6 val images" in split
    names = read_class_indices(photos / "class_indices.json")
    assert names == ["blue", "green", "red"]

    pretrained = tmp_path / "resnet18_7classes.pdparams"
    checkpoint = another_task_checkpoint()
    paddle.save({k: paddle.to_tensor(v) for k, v in checkpoint.items()}, str(pretrained))
    args = ["-c", CONFIG, *overrides(photos, pretrained, out)]

    log = run_ok("train.py", *args)
    head_lines = [line for line in log.splitlines() if "classifier head re-initialised:" in line]
    assert len(head_lines) == 1 and head_lines[0].endswith(
        "classifier head re-initialised: the checkpoint has 7 classes, the model has 3 classes"), log
    after_epoch_1 = paddle.load(str(out / "train" / "epoch_1.pdparams"))
    for key, value in checkpoint.items():
        if not key.startswith("fc."):  # frozen backbone, BN statistics included: exactly the checkpoint's
            np.testing.assert_array_equal(after_epoch_1[key].numpy(), value, err_msg=key)
    assert list(after_epoch_1["fc.weight"].shape) == [512, 3]

    weights = ["-o", f"Global.pretrained_model={out / 'train' / 'latest'}"]
    run_ok("export_model.py", *args, *weights)
    evaluated = re.search(r"eval: top1 (\d\.\d{4}) .* over (\d+) images \(0 skipped\)",
                          run_ok("eval.py", *args, *weights))
    assert evaluated and evaluated.group(2) == "6"

    run_ok("predict.py", "--model-dir", str(out / "inference"), "--input", str(photos / "*" / "*.png"),
             "--top-k", "2", "--json", str(tmp_path / "predictions.json"))
    predictions = {p["input"]: p for p in json.loads((tmp_path / "predictions.json").read_text())}
    assert len(predictions) == 24
    correct = 0
    for line in (photos / "val_list.txt").read_text().splitlines():
        path, label = line.split()
        assert names[int(label)] == path.split("/")[0]
        prediction = predictions[str(photos / path)]
        assert prediction["label_names"] == [names[i] for i in prediction["class_ids"]]
        correct += prediction["label_names"][0] == names[int(label)]
    assert f"{correct / 6:.4f}" == evaluated.group(1)
    assert correct >= 4  # the head learned the colours (chance: 2 of 6)
