"""The training curves of a run, one point per epoch: ``output_dir/training_curves.png`` (loss, learning
rate and top-1, drawn with matplotlib's Agg canvas, no display needed) and the same series as
``training_curves.json``. Both are rewritten atomically at the end of every epoch; a resumed run continues
the series of the run it resumes."""
import json
import os

from ..fileio import write_atomically

PLOT_FILE = "training_curves.png"
SERIES_FILE = "training_curves.json"
SERIES = ("epoch", "train_loss", "train_top1", "lr", "eval_top1", "eval_loss")


class TrainingCurves:
    def __init__(self, output_dir, first_epoch=0):
        self.output_dir = output_dir
        self.points = [p for p in self._read_earlier() if p["epoch"] <= first_epoch]

    def _read_earlier(self):
        """The points an interrupted run wrote (to continue them on resume); none when absent or unreadable."""
        try:
            with open(os.path.join(self.output_dir, SERIES_FILE), encoding="utf-8") as f:
                data = json.load(f)
            points = [dict(zip(SERIES, values)) for values in zip(*(data[key] for key in SERIES))]
            return [p for p in points if isinstance(p["epoch"], int)]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def add(self, epoch, train_loss, train_top1, lr, eval_result=None):
        """Records epoch ``epoch`` (1-based) and rewrites both files; ``eval_result`` when the epoch was evaluated."""
        eval_result = eval_result or {}
        self.points = [p for p in self.points if p["epoch"] != epoch]
        self.points.append({"epoch": epoch, "train_loss": train_loss, "train_top1": train_top1, "lr": lr,
                            "eval_top1": eval_result.get("top1"), "eval_loss": eval_result.get("loss")})
        series = {key: [p[key] for p in self.points] for key in SERIES}
        write_atomically(os.path.join(self.output_dir, SERIES_FILE),
                         lambda tmp: _write_text(tmp, json.dumps(series, indent=1)))
        write_atomically(os.path.join(self.output_dir, PLOT_FILE), lambda tmp: _plot(series, tmp))


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def _plot(series, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: no global backend or figure state
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(12, 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    loss_axes, lr_axes, top1_axes = figure.subplots(1, 3)
    epochs = series["epoch"]

    def line(axes, key, label):
        points = [(e, v) for e, v in zip(epochs, series[key]) if v is not None]
        if points:
            axes.plot(*zip(*points), marker="o", label=label)

    line(loss_axes, "train_loss", "train")
    line(loss_axes, "eval_loss", "eval")
    line(lr_axes, "lr", "lr")
    line(top1_axes, "train_top1", "train")
    line(top1_axes, "eval_top1", "eval")
    for axes, title in ((loss_axes, "loss"), (lr_axes, "learning rate (end of epoch)"), (top1_axes, "top-1")):
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if axes is not lr_axes:
            axes.legend()
    figure.savefig(path, format="png", dpi=80)
