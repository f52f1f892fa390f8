"""The training curves of a run: ``output_dir/training_curves.png`` (drawn with matplotlib's Agg canvas, no
display needed) and the same series as ``training_curves.json``, both rewritten atomically at the end of every
epoch; a resumed run continues the series of the run it resumes.

Two kinds of series: per step, the training loss (raw, and smoothed by a debiased exponential moving average,
as TensorBoard smooths) and the learning rate, so that even a one-epoch run shows how it went; per epoch, the
train and eval loss and top-1. The x axis is in epochs for both (step k of an epoch of n steps is at
``epoch - 1 + k / n``). At most ``MAX_STEP_POINTS`` steps are kept: beyond, every other point is dropped and
only every 2nd (4th, ...) step recorded from then on.
"""
import json
import os

from ..fileio import write_atomically

PLOT_FILE = "training_curves.png"
SERIES_FILE = "training_curves.json"
SERIES = ("epoch", "train_loss", "train_top1", "lr", "eval_top1", "eval_loss")
STEP_SERIES = ("step", "epoch", "loss", "lr")
MAX_STEP_POINTS = 4000
SMOOTHING = 0.9


class TrainingCurves:
    def __init__(self, output_dir, first_epoch=0, first_step=0):
        self.output_dir = output_dir
        epochs, steps = self._read_earlier()
        self.points = [p for p in epochs if p["epoch"] <= first_epoch]
        self.steps = [p for p in steps if p["step"] <= first_step]
        self.stride = 1
        while len(self.steps) > MAX_STEP_POINTS:
            self._thin()

    def _read_earlier(self):
        """The points an interrupted run wrote (to continue them on resume); none when absent or unreadable."""
        try:
            with open(os.path.join(self.output_dir, SERIES_FILE), encoding="utf-8") as f:
                data = json.load(f)
            points = [dict(zip(SERIES, values)) for values in zip(*(data[key] for key in SERIES))]
            steps = data.get("steps", {})
            step_points = [dict(zip(STEP_SERIES, values)) for values in zip(*(steps[key] for key in STEP_SERIES))]
            return ([p for p in points if isinstance(p["epoch"], int)],
                    [p for p in step_points if isinstance(p["step"], int)])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return [], []

    def _thin(self):
        self.steps = self.steps[::2]
        self.stride *= 2

    def add_step(self, step, epoch, loss, lr):
        """Records a training step (``step``: the optimizer steps done so far), at ``epoch`` (fractional, 1.0 = the end of the
        first), with its loss and learning rate; written with the next ``add``."""
        if step % self.stride:
            return
        self.steps.append({"step": step, "epoch": epoch, "loss": loss, "lr": lr})
        if len(self.steps) > MAX_STEP_POINTS:
            self._thin()

    def add(self, epoch, train_loss, train_top1, lr, eval_result=None):
        """Records epoch ``epoch`` (1-based) and rewrites both files; ``eval_result`` when the epoch was evaluated."""
        eval_result = eval_result or {}
        self.points = [p for p in self.points if p["epoch"] != epoch]
        self.points.append({"epoch": epoch, "train_loss": train_loss, "train_top1": train_top1, "lr": lr,
                            "eval_top1": eval_result.get("top1"), "eval_loss": eval_result.get("loss")})
        series = {key: [p[key] for p in self.points] for key in SERIES}
        series["steps"] = {key: [p[key] for p in self.steps] for key in STEP_SERIES}
        write_atomically(os.path.join(self.output_dir, SERIES_FILE),
                         lambda tmp: _write_text(tmp, json.dumps(series, indent=1)))
        write_atomically(os.path.join(self.output_dir, PLOT_FILE), lambda tmp: _plot(series, tmp))


def smoothed(values, weight=SMOOTHING):
    """A debiased exponential moving average: the first points are not pulled towards 0."""
    out, average = [], 0.0
    for i, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight ** i))
    return out


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def _plot(series, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: no global backend or figure state
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 6.4), layout="constrained")
    FigureCanvasAgg(figure)
    (step_loss_axes, step_lr_axes), (loss_axes, top1_axes) = figure.subplots(2, 2)
    steps = series["steps"]
    if steps["step"]:
        step_loss_axes.plot(steps["epoch"], steps["loss"], color="#4878cf", alpha=0.3, linewidth=0.8, label="per step")
        step_loss_axes.plot(steps["epoch"], smoothed(steps["loss"]), color="#4878cf", label="smoothed")
        step_lr_axes.plot(steps["epoch"], steps["lr"], color="#6acc65", label="lr")
    epochs = series["epoch"]

    def line(axes, key, label):
        points = [(e, v) for e, v in zip(epochs, series[key]) if v is not None]
        if points:
            axes.plot(*zip(*points), marker="o", label=label)

    line(loss_axes, "train_loss", "train (epoch mean)")
    line(loss_axes, "eval_loss", "eval")
    line(top1_axes, "train_top1", "train")
    line(top1_axes, "eval_top1", "eval")
    titles = ((step_loss_axes, "training loss per step"), (step_lr_axes, "learning rate per step"),
              (loss_axes, "loss per epoch"), (top1_axes, "top-1 per epoch"))
    for axes, title in titles:
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0] and axes is not step_lr_axes:
            axes.legend()
    figure.savefig(path, format="png", dpi=80)
