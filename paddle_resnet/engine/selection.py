"""Which epoch is ``best`` and when to stop: ``Global.best_metric`` and ``Global.early_stop``.

The best epoch is the one whose eval has the best ``best_metric`` (the highest, or for ``loss`` the lowest); a
tie goes to the lower eval loss, and a tie on that too to the later epoch, so that of several epochs that all
get 4 of 4 validation images right, the one that is surest of them (then the longest trained) is kept.

Early stopping ends the run once ``patience`` evals in a row have not improved ``metric`` by more than
``min_delta``; its count is saved in the training state, so a resumed run goes on counting.
"""
import math

from ..checks import check_int, shown
from ..errors import ConfigError, check_choice, did_you_mean, is_number

BEST_METRICS = ("top1", "top5", "loss", "macro_f1", "weighted_f1", "macro_recall")
EARLY_STOP_KEYS = ("metric", "patience", "min_delta")
MIN_EVAL_IMAGES_PER_CLASS = 10  # fewer and epochs that differ little tie on the Eval set


def lower_is_better(metric):
    return metric == "loss"


def improvement(metric, value, reference):
    """How much ``value`` improves on ``reference`` (positive: better); ``reference`` None: infinitely."""
    if reference is None:
        return math.inf
    return reference - value if lower_is_better(metric) else value - reference


def is_new_best(metric, result, best):
    """Whether eval ``result`` (of a later epoch than ``best``'s) replaces ``best``: a better metric, or the
    same metric and a lower eval loss, or the same of both (the later epoch wins the tie)."""
    if best.get("value") is None:
        return True
    gain = improvement(metric, result[metric], best["value"])
    if gain != 0:
        return gain > 0
    return result["loss"] <= best.get("loss", math.inf)


def check_best_metric(key, value, topk):
    check_choice(key, value, [m for m in BEST_METRICS if not m.startswith("top") or int(m[3:]) in topk])


def check_early_stop(value, best_metric, topk):
    """``Global.early_stop``: null, or {metric (default: best_metric), patience (>= 1), min_delta (>= 0,
    default 0)} -> the same with its defaults filled in (a new dict)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"Global.early_stop must be a mapping such as {{patience: 5}} (or null), got {shown(value)}")
    for key in value:
        if key not in EARLY_STOP_KEYS:
            raise ConfigError(f"unknown key Global.early_stop.{key}{did_you_mean(key, EARLY_STOP_KEYS)}")
    if "patience" not in value:
        raise ConfigError("missing required key Global.early_stop.patience (evals without improvement before "
                          "the run stops)")
    stop = {"metric": value.get("metric", best_metric), "patience": value["patience"],
            "min_delta": value.get("min_delta", 0.0)}
    check_best_metric("Global.early_stop.metric", stop["metric"], topk)
    check_int("Global.early_stop.patience", stop["patience"], 1)
    if not (is_number(stop["min_delta"], finite=True) and stop["min_delta"] >= 0):
        raise ConfigError(f"Global.early_stop.min_delta must be a number >= 0, got {shown(stop['min_delta'])}")
    return stop


class EarlyStop:
    """Counts the evals since ``metric`` last improved by more than ``min_delta``."""

    def __init__(self, metric, patience, min_delta=0.0):
        self.metric, self.patience, self.min_delta = metric, patience, float(min_delta)
        self.value, self.epoch, self.evals_without_gain = None, -1, 0

    def update(self, epoch, result):
        """Records an eval; True when the run should stop after it."""
        if improvement(self.metric, result[self.metric], self.value) > self.min_delta:
            self.value, self.epoch, self.evals_without_gain = result[self.metric], epoch, 0
        else:
            self.evals_without_gain += 1
        return self.evals_without_gain >= self.patience

    def state_dict(self):
        return {"metric": self.metric, "value": self.value, "epoch": self.epoch,
                "evals_without_gain": self.evals_without_gain}

    def set_state_dict(self, state):
        """A saved count, unless it was of another metric (then the count starts again)."""
        if state and state.get("metric") == self.metric:
            self.value, self.epoch = state.get("value"), state.get("epoch", -1)
            self.evals_without_gain = state.get("evals_without_gain", 0)

    def describe(self):
        return (f"{self.metric} has not improved by more than {self.min_delta:g} for {self.evals_without_gain} "
                f"evals (best {self.value:.4f} at epoch {self.epoch + 1})")


def small_eval_classes(labels, class_num):
    """(classes with fewer than MIN_EVAL_IMAGES_PER_CLASS Eval images, the fewest any class has)."""
    counts = [0] * class_num
    for label in labels:
        counts[int(label)] += 1
    small = [c for c in counts if c < MIN_EVAL_IMAGES_PER_CLASS]
    return len(small), min(counts) if counts else 0
