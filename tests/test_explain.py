"""A model trained on images whose class evidence (a coloured square) sits in one known quadrant: its Grad-CAM
heat maps lie in that quadrant, the explain tool writes them, and eval.py --report (--explain) reports on it
with the numbers of the eval and of scikit-learn."""
import fcntl
import json
import os
import re
import shutil

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import classification_report

from conftest import run_tool
from engine_fixtures import EVAL_OPS, tiny_config, write_config
from paddle_resnet.config import load_config
from paddle_resnet.engine import Engine
from paddle_resnet.engine.explain import Explainer, quadrant_shares

SIDE, PATCH = 64, 14  # 64 px: layer4's grid is 2x2, a cell per quadrant
COLORS = [(230, 40, 40), (40, 220, 40), (40, 40, 230)]
QUADRANTS = {(0, 0): "top left", (0, 1): "top right", (1, 0): "bottom left", (1, 1): "bottom right"}
MISLABELLED = 2  # val images of class0 that show class2's square: the report's gallery has them


def patch_image(color, quadrant, rng):
    """Gray noise with a square of ``color`` somewhere inside ``quadrant`` (row, column)."""
    pixels = np.clip(128 + rng.integers(-25, 25, (SIDE, SIDE, 3)), 0, 255).astype(np.uint8)
    half = SIDE // 2
    top = quadrant[0] * half + rng.integers(2, half - PATCH - 2)
    left = quadrant[1] * half + rng.integers(2, half - PATCH - 2)
    pixels[top:top + PATCH, left:left + PATCH] = color
    return pixels


def write_patch_folder(root, per_class, seed):
    """A class per colour, and one of plain noise: so that no colour can be told by the others' absence, and
    each class's evidence is its square."""
    rng = np.random.default_rng(seed)
    for label, color in enumerate(COLORS + [None]):
        (root / f"class{label}").mkdir(parents=True)
        for i in range(per_class):
            pixels = patch_image(color or (128, 128, 128), list(QUADRANTS)[i % 4], rng)
            Image.fromarray(pixels).save(root / f"class{label}" / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def patch_model(tmp_path_factory):
    """Trained once per test run: under pytest-xdist the workers share it (the first trains, under a lock)."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's folder, above each worker's
    root = shared / "gradcam_model"
    with open(shared / "gradcam_model.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "trained").exists():
            train_patch_model(root)
    return root, str(root / "c.yaml")


def train_patch_model(root):
    shutil.rmtree(root, ignore_errors=True)  # what a failed attempt left
    train, val = write_patch_folder(root / "train", 16, 0), write_patch_folder(root / "val", 4, 1)
    rng = np.random.default_rng(2)
    for i in range(MISLABELLED):
        Image.fromarray(patch_image(COLORS[2], (i, i), rng)).save(val / "class0" / f"mislabelled{i}.png")
    config = tiny_config(root, train, val, Global={"epochs": 6, "image_shape": [3, SIDE, SIDE], "save_interval": 0},
                         Arch={"name": "resnet18", "class_num": 4},
                         Optimizer={"name": "AdamW", "lr": {"name": "Cosine", "learning_rate": 0.003,
                                                            "warmup_epoch": 0}})
    config["DataLoader"]["Train"]["dataset"]["transform_ops"] = EVAL_OPS  # no flips: quadrants stay put
    path = write_config(root / "c.yaml", config)
    result = Engine(load_config(path)).train()
    assert result["best_top1"] == 16 / 18, result  # all but the mislabelled
    (root / "trained").touch()


@pytest.mark.slow
def test_the_heat_map_lies_in_the_quadrant_of_the_evidence(patch_model, tmp_path):
    root, config = patch_model
    engine = Engine(load_config(config, [f"Global.pretrained_model={root / 'out' / 'best'}"]), "infer")
    explainer = Explainer(engine)
    rng = np.random.default_rng(7)
    evidence_shares = []
    for (row, column), where in QUADRANTS.items():
        for label, color in enumerate(COLORS):
            path = tmp_path / f"{label}_{row}{column}.png"
            Image.fromarray(patch_image(color, (row, column), rng)).save(path)
            cam, class_id, probability, pixels = explainer.explain(str(path))
            shares = np.array(quadrant_shares(cam))
            assert (class_id, pixels.shape, pixels.dtype) == (label, (SIDE, SIDE, 3), np.uint8)
            # a 2x2 grid blurs into its neighbours when brought to 64 px: the evidence's quadrant holds the
            # most, and at least 1.4x the even share (0.25)
            assert shares[row, column] == shares.max() and shares[row, column] > 0.35, (where, label, shares)
            evidence_shares.append(shares[row, column])
    assert np.mean(evidence_shares) > 0.5


@pytest.mark.slow
def test_explain_tool_writes_overlays_and_names_a_bad_class(patch_model, tmp_path):
    root, config = patch_model
    weights = f"Global.pretrained_model={root / 'out' / 'best'}"
    out = run_tool("explain.py", "-c", config, "-o", weights, "--input", str(root / "val" / "class1"),
                   "--out", str(tmp_path / "cams"), "--class", "class1")
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if "_gradcam.png" in line]
    assert len(lines) == 4 and all(" class1 " in line for line in lines)
    with Image.open(tmp_path / "cams" / "000_gradcam.png") as overlay:
        assert overlay.size == (SIDE, SIDE)
    bad = run_tool("explain.py", "-c", config, "-o", weights, "--input", str(root / "val"), "--class", "class7")
    assert bad.returncode == 1
    assert bad.stderr.strip() == ("explain.py: error: --class 'class7' is not supported; choose one of class0, "
                                  "class1, class2, class3; did you mean 'class3'?")


@pytest.mark.slow
def test_eval_report_matches_the_eval_and_scikit_learn(patch_model):
    root, config = patch_model
    weights = f"Global.pretrained_model={root / 'out' / 'best'}"
    plain = run_tool("eval.py", "-c", config, "-o", weights)
    reported = run_tool("eval.py", "-c", config, "-o", weights, "--report", str(root / "rep"), "--explain")
    assert reported.returncode == 0, reported.stderr
    printed = [line for line in reported.stdout.splitlines() if line.startswith(("eval:", "report:"))]
    assert printed == [next(line for line in plain.stdout.splitlines() if line.startswith("eval:")),  # same figures
                       f"report: {root / 'rep' / 'report.html'}"]
    metrics = json.loads((root / "rep" / "metrics.json").read_text())
    rows = (root / "rep" / "confusion_matrix.csv").read_text().splitlines()
    assert rows[0] == "true \\ predicted,class0,class1,class2,class3"
    matrix = np.array([[int(v) for v in row.split(",")[1:]] for row in rows[1:]])
    assert matrix[0, 2] == MISLABELLED and np.trace(matrix) == 16 and matrix.sum() == 18
    labels = np.repeat(np.arange(4), matrix.sum(axis=1))
    predicted = np.concatenate([np.repeat(np.arange(4), row) for row in matrix])
    oracle = classification_report(labels, predicted, output_dict=True, zero_division=0)
    assert metrics["macro_f1"] == pytest.approx(oracle["macro avg"]["f1-score"])
    assert metrics["top1"] == pytest.approx(float(re.search(r"top1 ([\d.]+)", plain.stdout).group(1)), abs=1e-4)
    assert metrics["confused_pairs"] == [{"true": "class0", "predicted": "class2", "images": 2, "share_of_true": 1 / 3}]
    page = (root / "rep" / "report.html").read_text()
    gallery = page[page.index('id="gallery"'):]
    assert gallery.count('class="item"') == MISLABELLED and gallery.count('alt="Grad-CAM"') == MISLABELLED
    assert "mislabelled0.png" in gallery and "true: <b>class0</b>" in gallery
