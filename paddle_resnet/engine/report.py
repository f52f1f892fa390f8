"""The evaluation report: which classes fail, on which images, and how far the scores can be trusted.

``write_report(folder, predictions)`` writes, from one set of ``Predictions`` (an eval's, or predict.py's JSON
Lines records read by ``read_prediction_records``):

* ``metrics.json``: top-1/top-k, per-class precision, recall, F1 and support, macro and weighted averages, the
  most confused pairs, the expected calibration error (ECE);
* ``per_class.csv`` and ``confusion_matrix.csv`` (rows: true class, columns: predicted, with class names; beyond
  ``MAX_DENSE_CLASSES`` classes, one ``true,predicted,images`` row per non-zero cell);
* ``confusion_matrix.png`` (a heat map; beyond ``MAX_HEATMAP_CLASSES`` classes, the block of the classes most
  confused with one another) and ``reliability.png`` (accuracy against confidence);
* ``report.html``: all of it in one self-contained page (images inlined), with a gallery of the misclassified
  images (at most ``gallery`` of them, the most confident mistakes first) as small thumbnails.

The metrics are plain numpy and follow scikit-learn's definitions (``classification_report``: a class that is
never predicted has precision 0; the averages run over the classes present in the labels or the predictions;
``calibration_curve``'s equal-width bins). matplotlib draws the two figures (imported when they are drawn).
"""
import base64
import csv
import datetime
import html
import io
import json
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, OutputError

MAX_HEATMAP_CLASSES = 30  # more and the heat map shows the most confused block of this many classes
MAX_DENSE_CLASSES = 1000  # more and confusion_matrix.csv lists its non-zero cells
MAX_TABLE_ROWS = 1000  # classes in the page's per-class table (the worst); per_class.csv has them all
ANNOTATED_CLASSES = 15  # counts written in the cells up to this many classes
CALIBRATION_BINS = 15
TOP_CONFUSED_PAIRS = 20
DEFAULT_GALLERY = 48
MAX_GALLERY = 1000
THUMBNAIL_SIDE = 128
REPORT_FILE = "report.html"


@dataclass
class Predictions:
    """What a model said about each image of a labelled set.

    ``labels``: int [N] true classes; ``topk_ids``: int [N, k] the k best classes, best first; ``topk_scores``:
    [N, k] their probabilities; ``paths``: N image paths (or None); ``class_names``: C names;
    ``true_scores``: [N] the probability of the true class (NaN where unknown: not among a record's top k);
    ``probabilities``: whether the scores are probabilities (softmax), which calibration needs."""
    labels: np.ndarray
    topk_ids: np.ndarray
    topk_scores: np.ndarray
    class_names: list
    paths: list = None
    true_scores: np.ndarray = None
    probabilities: bool = True
    source: str = ""
    overlays: dict = field(default_factory=dict)  # path -> PNG bytes of a Grad-CAM overlay (explain.py)

    @property
    def predicted(self):
        return self.topk_ids[:, 0]

    @property
    def class_num(self):
        return len(self.class_names)


# ---------------------------------------------------------------- predictions made by predict.py
def predictions_from_records(records_path, list_path, image_root=None, class_names_path=None):
    """``Predictions`` of predict.py's JSON Lines output (``--output``) against a labelled list (PaddleClas's
    ``relative/path label`` lines, paths under ``image_root``: by default the list's folder). Class names come
    from ``class_names_path`` or the ``class_indices.json`` beside the list; a record whose class names differ
    from them, or an image the list does not label, is an InputError saying which."""
    from ..data.datasets import read_file_list
    from ..deploy.folder_prediction.records import path_keys, read_records, record_path
    from ..labels import CLASS_INDICES_FILE, read_class_indices

    root = os.path.dirname(os.path.abspath(list_path)) if image_root is None else image_root
    names_path = class_names_path or os.path.join(os.path.dirname(os.path.abspath(list_path)), CLASS_INDICES_FILE)
    names = read_class_indices(names_path) if class_names_path or os.path.isfile(names_path) else None
    key = path_keys()
    listed = read_file_list(list_path, None if names is None else len(names))
    truth = {key(os.path.join(root, relative)): label for relative, label in listed}
    run, records = read_records(records_path)
    kept = [(number, record, truth.get(key(record_path(record)))) for number, record in records
            if record["error"] is None]
    _check_all_labelled(kept, records_path, list_path, root)
    names = _checked_names(kept, names, names_path, records_path, max(truth.values()) + 1)
    k = min(len(record["class_ids"]) for _, record, _ in kept)
    ids = np.array([record["class_ids"][:k] for _, record, _ in kept], dtype=np.int64)
    scores = np.array([record["scores"][:k] for _, record, _ in kept], dtype=np.float64)
    labels = np.array([label for _, _, label in kept], dtype=np.int64)
    hit = ids == labels[:, None]
    true_scores = np.where(hit.any(axis=1), (scores * hit).sum(axis=1), np.nan)
    probabilities = bool(((scores >= 0) & (scores <= 1)).all() and (scores.sum(axis=1) <= 1 + 1e-3).all())
    unlabelled_in_list = len(truth) - len(kept)
    source = f"{records_path} ({run.get('backend')}, top {run.get('top_k')}) against {list_path}"
    if unlabelled_in_list > 0:
        source += f"; {unlabelled_in_list} listed images have no prediction"
    return Predictions(labels, ids, scores, names, paths=[record_path(r) for _, r, _ in kept],
                       true_scores=true_scores, probabilities=probabilities, source=source)


def _check_all_labelled(kept, records_path, list_path, root):
    if not kept:
        raise InputError(f"{records_path} holds no prediction (only unreadable images, or none at all)")
    outside = [(number, record) for number, record, label in kept if label is None]
    if outside:
        number, record = outside[0]
        raise InputError(f"{len(outside)} of the {len(kept)} predictions in {records_path} are of images that "
                         f"{list_path} does not list under {root} (e.g. line {number}: {record['path']!r}): give "
                         f"the list they are labelled in, or --image-root")


def _checked_names(kept, names, names_path, records_path, listed_classes):
    """The class names (``names``, or else the records' own, or else the ids): every record must name each
    class id as ``names`` does."""
    seen = {}
    for number, record, _ in kept:
        for class_id, name in zip(record["class_ids"], record["label_names"]):
            if names is not None and (class_id >= len(names) or names[class_id] != name):
                known = (f"{names_path} names class {class_id} {names[class_id]!r}" if class_id < len(names)
                         else f"{names_path} has {len(names)} classes")
                raise InputError(f"{records_path} line {number}: class {class_id} is {name!r} there but {known}: "
                                 f"the predictions come from a model of other classes than the list")
            seen.setdefault(class_id, name)
    if names is not None:
        return names
    count = max(listed_classes, max(seen) + 1)
    return [seen.get(i, str(i)) for i in range(count)]


# ---------------------------------------------------------------- metrics (numpy)
class Confusion:
    """The confusion matrix of top-1 predictions, held by its non-zero cells (a dense matrix of 100,000 classes
    would take 80 GB): ``hits``, ``predicted`` and ``support`` per class, and ``cells`` {(true, predicted):
    images}. ``dense()`` is the [C, C] matrix (row: true class, column: predicted class)."""

    def __init__(self, labels, predicted, class_num):
        labels, predicted = np.asarray(labels, np.int64), np.asarray(predicted, np.int64)
        self.class_num = class_num
        self.support = np.bincount(labels, minlength=class_num)
        self.predicted = np.bincount(predicted, minlength=class_num)
        self.hits = np.bincount(labels[labels == predicted], minlength=class_num)
        codes, counts = np.unique(labels * class_num + predicted, return_counts=True)
        self.cells = {(int(c // class_num), int(c % class_num)): int(n) for c, n in zip(codes, counts)}

    def block(self, classes):
        """The matrix restricted to ``classes`` (rows and columns in that order)."""
        where = {c: i for i, c in enumerate(classes)}
        out = np.zeros((len(classes), len(classes)), dtype=np.int64)
        for (true, predicted), count in self.cells.items():
            if true in where and predicted in where:
                out[where[true], where[predicted]] = count
        return out

    def dense(self):
        return self.block(range(self.class_num))

    def off_diagonal(self):
        return {cell: n for cell, n in self.cells.items() if cell[0] != cell[1]}


def _ratio(numerator, denominator):
    numerator, denominator = np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def per_class_metrics(hits, predicted, support):
    """{precision, recall, f1, support} arrays [C] from the counts per class (0 where undefined, as
    scikit-learn's zero_division=0)."""
    precision, recall = _ratio(hits, predicted), _ratio(hits, support)
    return {"precision": precision, "recall": recall, "f1": _ratio(2 * precision * recall, precision + recall),
            "support": np.asarray(support)}


def averaged_metrics(hits, predicted, support):
    """macro and weighted precision, recall and F1 over the classes present in the labels or predictions."""
    classes = per_class_metrics(hits, predicted, support)
    present = (np.asarray(predicted) + np.asarray(support)) > 0
    weights = classes["support"][present]
    out = {}
    for name in ("precision", "recall", "f1"):
        values = classes[name][present]
        out[f"macro_{name}"] = float(values.mean()) if values.size else 0.0
        out[f"weighted_{name}"] = float((values * weights).sum() / weights.sum()) if weights.sum() else 0.0
    return out


def topk_accuracy(labels, topk_ids, k):
    return float((topk_ids[:, :k] == np.asarray(labels)[:, None]).any(axis=1).mean())


def top_confused_pairs(confusion, count=TOP_CONFUSED_PAIRS):
    """[(true class, predicted class, images)] of the largest off-diagonal cells, largest first."""
    ranked = sorted(confusion.off_diagonal().items(), key=lambda item: (-item[1], item[0]))[:count]
    return [(true, predicted, n) for (true, predicted), n in ranked]


def calibration_bins(confidence, correct, bins=CALIBRATION_BINS):
    """Equal-width confidence bins as scikit-learn's calibration_curve makes them: -> (mean confidence,
    accuracy, count) per bin, [bins] each (NaN for an empty bin)."""
    confidence, correct = np.asarray(confidence, np.float64), np.asarray(correct, np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.searchsorted(edges[1:-1], confidence)
    count = np.bincount(which, minlength=bins)
    mean_confidence = _ratio(np.bincount(which, confidence, minlength=bins), count)
    accuracy = _ratio(np.bincount(which, correct, minlength=bins), count)
    empty = count == 0
    mean_confidence[empty], accuracy[empty] = np.nan, np.nan
    return mean_confidence, accuracy, count


def expected_calibration_error(confidence, correct, bins=CALIBRATION_BINS):
    """sum over bins of |accuracy - mean confidence| x the bin's share of the images."""
    mean_confidence, accuracy, count = calibration_bins(confidence, correct, bins)
    filled = count > 0
    return float((np.abs(accuracy - mean_confidence)[filled] * count[filled]).sum() / max(count.sum(), 1))


def summarize(predictions):
    """Every figure of the report, as plain values (what metrics.json holds)."""
    labels, predicted = predictions.labels, predictions.predicted
    confusion = Confusion(labels, predicted, predictions.class_num)
    counts = confusion.hits, confusion.predicted, confusion.support
    names = predictions.class_names
    k = predictions.topk_ids.shape[1]
    summary = {"images": int(len(labels)), "classes": predictions.class_num, "source": predictions.source,
               "top1": topk_accuracy(labels, predictions.topk_ids, 1),
               f"top{min(5, k)}": topk_accuracy(labels, predictions.topk_ids, min(5, k)),
               **averaged_metrics(*counts)}
    classes = per_class_metrics(*counts)
    summary["per_class"] = [{"class": names[c], "precision": float(classes["precision"][c]),
                             "recall": float(classes["recall"][c]), "f1": float(classes["f1"][c]),
                             "support": int(classes["support"][c])} for c in range(predictions.class_num)]
    summary["confused_pairs"] = [{"true": names[t], "predicted": names[p], "images": n,
                                  "share_of_true": n / int(classes["support"][t])}
                                 for t, p, n in top_confused_pairs(confusion)]
    if predictions.probabilities:
        confidence, correct = predictions.topk_scores[:, 0], predicted == labels
        summary["ece"] = expected_calibration_error(confidence, correct)
        summary["calibration"] = [{"confidence": _finite_or_none(c), "accuracy": _finite_or_none(a), "images": int(n)}
                                  for c, a, n in zip(*calibration_bins(confidence, correct))]
    return summary, confusion


def _finite_or_none(value):
    return None if np.isnan(value) else float(value)


# ---------------------------------------------------------------- files
def write_report(folder, predictions, gallery=DEFAULT_GALLERY):
    """Writes the report's files into ``folder`` (created); returns the path of report.html."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create the report folder {folder}: {error.strerror or error}") from None
    summary, confusion = summarize(predictions)
    figures = {"confusion": heatmap_png(confusion, predictions.class_names)}
    if predictions.probabilities:
        figures["reliability"] = reliability_png(summary["calibration"], summary["ece"])
    files = {"metrics.json": json.dumps(summary, indent=1, ensure_ascii=False) + "\n",
             "per_class.csv": _per_class_csv(summary["per_class"]),
             "confusion_matrix.csv": _matrix_csv(confusion, predictions.class_names),
             "confusion_matrix.png": figures["confusion"], REPORT_FILE: None}
    if "reliability" in figures:
        files["reliability.png"] = figures["reliability"]
    files[REPORT_FILE] = report_html(summary, figures, gallery_entries(predictions, gallery))
    for name, content in files.items():
        _write(os.path.join(folder, name), content)
    return os.path.join(folder, REPORT_FILE)


def _write(path, content):
    from ..fileio import write_atomically
    data = content.encode("utf-8") if isinstance(content, str) else content

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    try:
        write_atomically(path, write)
    except OSError as error:
        raise OutputError(f"cannot write {path}: {getattr(error, 'reason', None) or error.strerror or error}") from None


def _csv_text(rows):
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _per_class_csv(rows):
    return _csv_text([["class", "precision", "recall", "f1", "support"]]
                     + [[r["class"], f"{r['precision']:.6f}", f"{r['recall']:.6f}", f"{r['f1']:.6f}", r["support"]]
                        for r in rows])


def _matrix_csv(confusion, names):
    """The whole matrix up to MAX_DENSE_CLASSES classes; beyond, its non-zero cells (true, predicted, images)."""
    if confusion.class_num > MAX_DENSE_CLASSES:
        return _csv_text([["true", "predicted", "images"]]
                         + [[names[t], names[p], n] for (t, p), n in sorted(confusion.cells.items())])
    return _csv_text([["true \\ predicted", *names]]
                     + [[name, *row.tolist()] for name, row in zip(names, confusion.dense())])


# ---------------------------------------------------------------- figures
def confused_block(confusion, size=MAX_HEATMAP_CLASSES):
    """The ``size`` classes with the most images confused (as true or as predicted class), in class order."""
    mass = np.zeros(confusion.class_num, dtype=np.int64)
    for (true, predicted), n in confusion.off_diagonal().items():
        mass[true] += n
        mass[predicted] += n
    return np.sort(np.argsort(-mass, kind="stable")[:size])


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: no global state, no display
    from matplotlib.figure import Figure
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure, dpi=80):
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=dpi)
    return out.getvalue()


def heatmap_png(confusion, names):
    """The confusion matrix as rates of each true class (a full row sums to 1), class names on both axes."""
    shown = np.arange(len(names)) if len(names) <= MAX_HEATMAP_CLASSES else confused_block(confusion)
    block = confusion.block(shown.tolist())
    rates = _ratio(block, confusion.support[shown][:, None].repeat(len(shown), axis=1))
    side = min(4 + 0.32 * len(shown), 14)
    figure = _figure(side + 1.5, side)
    axes = figure.subplots()
    image = axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    labels = [_short(names[i]) for i in shown]
    axes.set_xticks(range(len(shown)), labels, rotation=90, fontsize=8)
    axes.set_yticks(range(len(shown)), labels, fontsize=8)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    title = "confusion matrix (share of each true class)"
    if len(shown) < len(names):
        title = f"most confused {len(shown)} of {len(names)} classes (share of each true class)"
    axes.set_title(title)
    if len(shown) <= ANNOTATED_CLASSES:
        for (row, column), count in np.ndenumerate(block):
            axes.text(column, row, str(count), ha="center", va="center", fontsize=8,
                      color="white" if rates[row, column] > 0.5 else "black")
    figure.colorbar(image, ax=axes, shrink=0.8)
    return _png(figure)


def _short(name, limit=24):
    return name if len(name) <= limit else name[:limit - 1] + "…"


def reliability_png(calibration, ece):
    figure = _figure(5.5, 5)
    axes = figure.subplots()
    filled = [b for b in calibration if b["images"]]
    width = 1.0 / len(calibration)
    centers = [(i + 0.5) * width for i, b in enumerate(calibration) if b["images"]]
    axes.bar(centers, [b["accuracy"] for b in filled], width=width * 0.9, color="#4878cf", label="accuracy")
    axes.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    axes.plot([b["confidence"] for b in filled], [b["accuracy"] for b in filled], "o", color="#d65f5f",
              label="mean confidence of the bin")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("confidence (top-1 probability)")
    axes.set_ylabel("accuracy")
    axes.set_title(f"reliability diagram, ECE {ece:.4f}")
    axes.legend(loc="upper left")
    return _png(figure)


# ---------------------------------------------------------------- gallery
def gallery_order(predictions, count):
    """The indices of the misclassified images, the most confident mistakes first, at most ``count``."""
    wrong = np.flatnonzero(predictions.predicted != predictions.labels)
    return wrong[np.argsort(-predictions.topk_scores[wrong, 0], kind="stable")][:max(count, 0)]


def gallery_entries(predictions, count):
    """The misclassified images, the most confident mistakes first, at most ``count``: dicts of path, true
    and predicted names, their scores and a thumbnail (JPEG bytes, or None when the file cannot be read)."""
    if predictions.paths is None:
        return []
    names = predictions.class_names
    entries = []
    for i in gallery_order(predictions, count):
        path = predictions.paths[i]
        true_score = None if predictions.true_scores is None else predictions.true_scores[i]
        entries.append({"path": path, "true": names[predictions.labels[i]],
                        "predicted": names[predictions.predicted[i]],
                        "score": float(predictions.topk_scores[i, 0]),
                        "true_score": None if true_score is None or np.isnan(true_score) else float(true_score),
                        "thumbnail": thumbnail(path), "overlay": predictions.overlays.get(path)})
    return entries


def thumbnail(path, side=THUMBNAIL_SIDE):
    """JPEG bytes of the image at ``path`` shrunk to fit ``side`` pixels; None when it cannot be read (the
    project's bounded decoder: no FIFO, no decompression bomb)."""
    from PIL import Image

    from ..data.transforms import DecodeImage
    try:
        pixels = DecodeImage()(path)
    except (OSError, InputError):
        return None
    image = Image.fromarray(pixels)
    image.thumbnail((side, side))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


# ---------------------------------------------------------------- html
def _data_uri(data, kind):
    return f"data:image/{kind};base64,{base64.b64encode(data).decode('ascii')}"


def _e(text):
    return html.escape(str(text), quote=True)


def _percent(value):
    return f"{100 * value:.2f}%"


STYLE = """
body{font-family:sans-serif;margin:2em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.gallery{display:flex;flex-wrap:wrap;gap:10px}
.item{width:280px;border:1px solid #ddd;padding:6px;font-size:12px;word-break:break-all}
.item img{max-width:128px;max-height:128px;vertical-align:top}.bad{color:#b00}
"""


def _summary_rows(summary):
    rows = [("images", summary["images"]), ("classes", summary["classes"]),
            ("top-1 accuracy", _percent(summary["top1"]))]
    rows += [(f"top-{key[3:]} accuracy", _percent(summary[key])) for key in summary
             if key.startswith("top") and key != "top1"]
    for kind in ("macro", "weighted"):
        rows += [(f"{kind} {name}", f"{summary[f'{kind}_{name}']:.4f}") for name in ("precision", "recall", "f1")]
    if "ece" in summary:
        rows.append(("expected calibration error (ECE)", f"{summary['ece']:.4f}"))
    return rows


def _table(header, rows, table_id):
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><tr>{head}</tr>{body}</table>'


def _gallery_html(entries):
    items = []
    for entry in entries:
        pictures = "".join(f'<img alt="{alt}" src="{_data_uri(data, kind)}"> ' for alt, data, kind in (
            ("image", entry["thumbnail"], "jpeg"), ("Grad-CAM", entry["overlay"], "png")) if data)
        true_score = f" ({entry['true_score']:.3f})" if entry["true_score"] is not None else ""
        items.append(f'<div class="item">{pictures or "<i>unreadable</i>"}<br>'
                     f'true: <b>{_e(entry["true"])}</b>{true_score}<br>'
                     f'predicted: <b class="bad">{_e(entry["predicted"])}</b> ({entry["score"]:.3f})<br>'
                     f'{_e(entry["path"])}</div>')
    return f'<div class="gallery" id="gallery">{"".join(items)}</div>'


def report_html(summary, figures, gallery):
    """The whole report as one page: no file or network access needed to show it."""
    per_class = sorted(summary["per_class"], key=lambda r: (r["f1"], -r["support"]))
    sections = [
        f"<h1>Evaluation report</h1><p>{_e(summary['source'])}; written "
        f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}</p>",
        _table(["figure", "value"], _summary_rows(summary), "summary"),
        f'<h2>Confusion matrix</h2><img alt="confusion matrix" src="{_data_uri(figures["confusion"], "png")}">',
        "<h2>Most confused pairs</h2>" + (_table(
            ["true class", "predicted as", "images", "share of the true class"],
            [(p["true"], p["predicted"], p["images"], _percent(p["share_of_true"])) for p in summary["confused_pairs"]],
            "confused") if summary["confused_pairs"] else "<p>none: every image is classified right</p>"),
    ]
    if "reliability" in figures:
        sections.append(f'<h2>Calibration</h2><img alt="reliability diagram" '
                        f'src="{_data_uri(figures["reliability"], "png")}">')
    shown = (f"the {MAX_TABLE_ROWS:,} of worst F1 of {len(per_class):,}; all in per_class.csv"
             if len(per_class) > MAX_TABLE_ROWS else "worst F1 first")
    sections.append(f"<h2>Per class ({shown})</h2>" + _table(
        ["class", "precision", "recall", "F1", "support"],
        [(r["class"], f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", r["support"])
         for r in per_class[:MAX_TABLE_ROWS]], "per-class"))
    if gallery:
        sections.append(f"<h2>Misclassified images ({len(gallery)} most confident mistakes)</h2>"
                        + _gallery_html(gallery))
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Evaluation report</title>'
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>\n")
