"""The evaluation report: its numbers against scikit-learn's, predict.py's records read back, and the page as
a browser shows it (eval.py --report on a trained model: test_explain.py)."""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import classification_report, confusion_matrix as sk_confusion_matrix

from paddle_resnet.cli.report import main as report_main
from paddle_resnet.deploy.folder_prediction.records import HEADER_KEY, to_json_line
from paddle_resnet.engine.report import (MAX_HEATMAP_CLASSES, Confusion, Predictions, calibration_bins, confused_block,
                                         expected_calibration_error, predictions_from_records, summarize,
                                         write_report)
from paddle_resnet.errors import InputError


def random_predictions(n=400, classes=8, seed=0, never_predicted=3, absent=5):
    """Scores with some skill; class ``never_predicted`` is never the top class, ``absent`` never a label
    (None: every class is both)."""
    rng = np.random.default_rng(seed)
    labels = rng.choice([c for c in range(classes) if c != absent], n)
    logits = rng.normal(size=(n, classes))
    logits[np.arange(n), labels] += 1.2
    if never_predicted is not None:
        logits[:, never_predicted] -= 10
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    top = np.argsort(-probabilities, axis=1)[:, :5]
    return Predictions(labels, top, np.take_along_axis(probabilities, top, axis=1),
                       [f"class {c}" for c in range(classes)], paths=None,
                       true_scores=probabilities[np.arange(n), labels]), probabilities


def test_metrics_equal_scikit_learns():
    predictions, probabilities = random_predictions()
    summary, confusion = summarize(predictions)
    labels, predicted = predictions.labels, predictions.topk_ids[:, 0]
    np.testing.assert_array_equal(confusion.dense(), sk_confusion_matrix(labels, predicted, labels=range(8)))
    oracle = classification_report(labels, predicted, output_dict=True, zero_division=0)
    for row in summary["per_class"]:
        c = row["class"].split()[1]
        if c in oracle:
            assert [row["precision"], row["recall"], row["f1"], row["support"]] == pytest.approx(
                [oracle[c][k] for k in ("precision", "recall", "f1-score", "support")], abs=1e-12)
    assert summary["per_class"][3]["precision"] == 0.0 and summary["per_class"][5]["support"] == 0
    for kind in ("macro", "weighted"):
        assert [summary[f"{kind}_{m}"] for m in ("precision", "recall", "f1")] == pytest.approx(
            [oracle[f"{kind} avg"][k] for k in ("precision", "recall", "f1-score")], abs=1e-12)
    assert summary["top1"] == pytest.approx(oracle["accuracy"], abs=1e-12)
    top5 = np.mean([label in row for label, row in zip(labels, np.argsort(-probabilities, axis=1)[:, :5])])
    assert summary["top5"] == pytest.approx(top5, abs=1e-12) and 0.3 < summary["top1"] < summary["top5"] < 1


def test_calibration_bins_and_ece_equal_scikit_learns_curve():
    predictions, _ = random_predictions(seed=1)
    confidence = predictions.topk_scores[:, 0]
    correct = predictions.topk_ids[:, 0] == predictions.labels
    mean_confidence, accuracy, count = calibration_bins(confidence, correct, bins=10)
    true_curve, predicted_curve = calibration_curve(correct, confidence, n_bins=10, strategy="uniform")
    filled = count > 0
    np.testing.assert_allclose(accuracy[filled], true_curve, atol=1e-12)
    np.testing.assert_allclose(mean_confidence[filled], predicted_curve, atol=1e-12)
    by_hand = sum(n * abs(a - c) for a, c, n in zip(accuracy[filled], mean_confidence[filled], count[filled]))
    assert expected_calibration_error(confidence, correct, bins=10) == pytest.approx(by_hand / len(confidence))
    assert expected_calibration_error(np.array([0.9] * 10), np.array([1] * 9 + [0])) == pytest.approx(0.0)


@pytest.mark.slow
def test_twenty_thousand_classes_show_their_most_confused_block(tmp_path):
    classes = 20_000
    labels = np.repeat(np.arange(classes), 2)
    predicted = labels.copy()
    confused = [(10, 500), (500, 10), (19_999, 3), (42, 43)]
    for i, (t, p) in enumerate(confused):
        predicted[2 * t] = p
    confusion = Confusion(labels, predicted, classes)
    block = confused_block(confusion)
    assert len(block) == MAX_HEATMAP_CLASSES and {3, 10, 42, 43, 500, 19_999} <= set(block.tolist())
    assert list(block) == sorted(block)
    names = [f"c{i}" for i in range(classes)]
    predictions = Predictions(labels, predicted[:, None], np.ones((len(labels), 1)), names, probabilities=False)
    write_report(str(tmp_path), predictions)
    rows = (tmp_path / "confusion_matrix.csv").read_text().splitlines()
    assert rows[0] == "true,predicted,images" and len(rows) == 1 + classes + len(confused)
    assert "c10,c500,1" in rows and "c10,c10,1" in rows and "c11,c11,2" in rows
    page = (tmp_path / "report.html").read_text()
    assert "Per class (the 1,000 of worst F1 of 20,000; all in per_class.csv)" in page
    assert page.count("<tr>") < 1100 and len((tmp_path / "per_class.csv").read_text().splitlines()) == 1 + classes


# ---------------------------------------------------------------- predict.py's records
def write_records(path, rows, top_k=2, header=True):
    lines = [to_json_line({HEADER_KEY: {"model": "0" * 64, "top_k": top_k, "backend": "onnxruntime",
                                        "precision": "fp32", "device": "cpu"}})] if header else []
    lines += [to_json_line({"path": p, "class_ids": ids, "scores": scores, "label_names": names, "error": error})
              for p, ids, scores, names, error in rows]
    path.write_bytes(b"".join(lines))
    return str(path)


@pytest.fixture
def labelled(tmp_path):
    """A val list of 4 images in 3 classes with class_indices.json, as split_dataset.py writes them."""
    root = tmp_path / "flowers"
    for name in ("daisy", "rose", "tulip"):
        (root / name).mkdir(parents=True)
    (root / "val_list.txt").write_text("daisy/a.jpg 0\ndaisy/b.jpg 0\nrose/c.jpg 1\ntulip/d.jpg 2\n")
    (root / "class_indices.json").write_text(json.dumps({"0": "daisy", "1": "rose", "2": "tulip"}))
    return root


def test_records_of_predict_py_against_a_list(labelled, tmp_path):
    names = ["daisy", "rose", "tulip"]
    rows = [(str(labelled / "daisy/a.jpg"), [0, 1], [0.9, 0.05], ["daisy", "rose"], None),
            (f"{labelled}/./daisy/b.jpg", [2, 0], [0.6, 0.3], ["tulip", "daisy"], None),
            (str(labelled / "rose/c.jpg"), [1, 2], [0.7, 0.2], ["rose", "tulip"], None),
            (str(labelled / "tulip/broken.jpg"), [], [], [], "cannot decode image"),
            (str(labelled / "tulip/d.jpg"), [0, 1], [0.5, 0.4], ["daisy", "rose"], None)]
    records = write_records(tmp_path / "preds.jsonl", rows)
    predictions = predictions_from_records(records, str(labelled / "val_list.txt"))
    assert predictions.class_names == names and predictions.probabilities
    np.testing.assert_array_equal(predictions.labels, [0, 0, 1, 2])
    np.testing.assert_array_equal(predictions.topk_ids[:, 0], [0, 2, 1, 0])
    np.testing.assert_allclose(predictions.true_scores, [0.9, 0.3, 0.7, np.nan])
    summary, _ = summarize(predictions)
    oracle = classification_report([0, 0, 1, 2], [0, 2, 1, 0], output_dict=True, zero_division=0)
    assert summary["macro_f1"] == pytest.approx(oracle["macro avg"]["f1-score"]) and summary["top1"] == 0.5
    assert summary["top2"] == 0.75
    assert summary["confused_pairs"][0] == {"true": "daisy", "predicted": "tulip", "images": 1, "share_of_true": 0.5}


def test_records_whose_names_differ_from_the_list_say_which(labelled, tmp_path):
    rows = [(str(labelled / "daisy/a.jpg"), [0, 1], [0.9, 0.05], ["daisy", "rose"], None),
            (str(labelled / "rose/c.jpg"), [1, 2], [0.7, 0.2], ["rose", "sunflower"], None)]
    records = write_records(tmp_path / "preds.jsonl", rows)
    with pytest.raises(InputError) as error:
        predictions_from_records(records, str(labelled / "val_list.txt"))
    assert str(error.value) == (f"{records} line 3: class 2 is 'sunflower' there but "
                                f"{labelled / 'class_indices.json'} names class 2 'tulip': the predictions come "
                                f"from a model of other classes than the list")


def test_the_report_command_names_an_image_the_list_does_not_label(labelled, tmp_path, capsys):
    rows = [(str(labelled / "daisy/a.jpg"), [0, 1], [0.9, 0.05], ["daisy", "rose"], None),
            (str(tmp_path / "elsewhere.jpg"), [1, 2], [0.7, 0.2], ["rose", "tulip"], None)]
    records = write_records(tmp_path / "preds.jsonl", rows)
    code = report_main(["--predictions", records, "--labels", str(labelled / "val_list.txt"),
                        "--out", str(tmp_path / "r")], prog="paddle-resnet report")
    assert code == 1 and not (tmp_path / "r").exists()
    assert capsys.readouterr().err == (
        f"paddle-resnet report: error: 1 of the 2 predictions in {records} are of images that "
        f"{labelled / 'val_list.txt'} does not list under {labelled} (e.g. line 3: '{tmp_path / 'elsewhere.jpg'}'): "
        f"give the list they are labelled in, or --image-root\n")
    (tmp_path / "cut.jsonl").write_bytes((tmp_path / "preds.jsonl").read_bytes()[:-5])
    assert report_main(["--predictions", str(tmp_path / "cut.jsonl"), "--labels", str(labelled / "val_list.txt")],
                       prog="report") == 1
    assert "cut.jsonl line 3: not a whole prediction record" in capsys.readouterr().err


# ---------------------------------------------------------------- the page in a browser
def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser(*args, timeout=60):
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def make_gallery_images(folder, count):
    from PIL import Image
    folder.mkdir()
    paths = []
    for i in range(count):
        pixels = np.full((40, 60, 3), (i * 40 % 255, 90, 160), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
        paths.append(str(folder / f"img{i}.png"))
    return paths


@pytest.mark.slow
@pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_the_page_shows_its_figures_and_gallery_in_a_browser(tmp_path):
    predictions, _ = random_predictions(n=60, classes=4, never_predicted=None, absent=None)
    predictions.class_names = ["cat <b>", "dog & co", "owl", "eel"]
    predictions.paths = make_gallery_images(tmp_path / "images", 60)
    page = write_report(str(tmp_path / "report"), predictions, gallery=5)
    summary, _ = summarize(predictions)
    dom = browser("--dump-dom", f"file://{page}").stdout
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
    assert f"top-1 accuracy {100 * summary['top1']:.2f}%" in text
    assert f"macro f1 {summary['macro_f1']:.4f}" in text
    assert "cat &lt;b&gt;" in dom and "cat <b>" not in dom and "dog &amp; co" in dom  # names are text, never markup
    gallery = dom[dom.index('id="gallery"'):]
    assert gallery.count('class="item"') == 5 and gallery.count('src="data:image/jpeg;base64,') == 5
    assert "src=\"file:" not in dom and "http" not in dom  # self-contained
    shot = tmp_path / "shot.png"
    browser(f"--screenshot={shot}", "--window-size=1200,2400", f"file://{page}")
    from PIL import Image
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    blue = (pixels[:, :, 2] > 150) & (pixels[:, :, 0] < 120)  # the heat map's filled cells and the bars
    assert pixels.shape[:2] == (2400, 1200) and blue.sum() > 5000
