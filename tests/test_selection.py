"""Choosing best (Global.best_metric, ties), early stopping (resumable) and the small-Eval-set warning."""
import re

import paddle
import pytest

from engine_fixtures import make_image_folder, tiny_config
from paddle_resnet.config import ConfigError, validate
from paddle_resnet.engine import Engine
from paddle_resnet.engine.selection import EarlyStop, is_new_best


def test_a_tie_goes_to_the_lower_eval_loss_then_the_later_epoch():
    best = {"value": 1.0, "loss": 0.30, "epoch": 2}
    assert not is_new_best("top1", {"top1": 1.0, "loss": 0.31}, best)
    assert is_new_best("top1", {"top1": 1.0, "loss": 0.29}, best)
    assert is_new_best("top1", {"top1": 1.0, "loss": 0.30}, best)  # the same of both: the later epoch
    assert not is_new_best("top1", {"top1": 0.75, "loss": 0.01}, best)
    assert is_new_best("loss", {"loss": 0.2}, {"value": 0.3, "loss": 0.3}) and not is_new_best(
        "loss", {"loss": 0.4}, {"value": 0.3, "loss": 0.3})
    assert is_new_best("macro_f1", {"macro_f1": 0.1, "loss": 9.0}, {"value": None})


def test_early_stop_counts_evals_without_a_gain_above_min_delta():
    stop = EarlyStop("top1", patience=2, min_delta=0.01)
    assert [stop.update(e, {"top1": v}) for e, v in enumerate([0.5, 0.6, 0.605, 0.7, 0.7, 0.709])] == [
        False, False, False, False, False, True]
    assert stop.describe() == "top1 has not improved by more than 0.01 for 2 evals (best 0.7000 at epoch 4)"
    again = EarlyStop("top1", patience=3, min_delta=0.01)
    again.set_state_dict(stop.state_dict())
    assert again.update(6, {"top1": 0.705}) is True


@pytest.mark.parametrize("settings,message", [
    ({"best_metric": "f1"}, "Global.best_metric 'f1' is not supported; choose one of top1, top5, loss, macro_f1, "
                            "weighted_f1, macro_recall; did you mean 'macro_f1'?"),
    ({"early_stop": {"patience": 2, "min_detla": 0.1}}, "unknown key Global.early_stop.min_detla; did you mean "
                                                        "'min_delta'?"),
    ({"early_stop": {"metric": "loss"}}, "missing required key Global.early_stop.patience (evals without "
                                         "improvement before the run stops)"),
    ({"early_stop": {"patience": 0}}, "Global.early_stop.patience must be an integer >= 1, got 0"),
    ({"early_stop": {"patience": 2, "min_delta": -1}}, "Global.early_stop.min_delta must be a number >= 0, got -1"),
    ({"early_stop": 5}, "Global.early_stop must be a mapping such as {patience: 5} (or null), got 5"),
])
def test_bad_settings_are_one_line(tmp_path, settings, message):
    with pytest.raises(ConfigError) as error:
        validate(tiny_config(tmp_path, tmp_path, tmp_path, Global=settings))
    assert str(error.value) == message


def test_early_stop_defaults_to_the_best_metric(tmp_path):
    config = validate(tiny_config(tmp_path, tmp_path, tmp_path,
                                  Global={"best_metric": "macro_f1", "early_stop": {"patience": 3}}))
    assert config["Global"]["early_stop"] == {"metric": "macro_f1", "patience": 3, "min_delta": 0.0}


def eval_lines(log):
    return [(int(e), float(t), float(l)) for e, t, l in re.findall(r"eval epoch (\d+): top1 ([\d.]+) top5 [\d.]+ "
                                                                   r"loss ([\d.]+)", log)]


@pytest.mark.slow
def test_best_among_ties_and_an_early_stop_that_resumes(tmp_path):
    train = make_image_folder(tmp_path / "train")
    val = make_image_folder(tmp_path / "val", per_class=4, seed=1)
    # min_delta 1.0: no later eval can improve top1 by more, so every eval after the first counts
    stop = {"patience": 3, "min_delta": 1.0}
    low_lr = {"lr": {"name": "Constant", "learning_rate": 0.005, "warmup_epoch": 0}}
    config = tiny_config(tmp_path, train, val, Global={"epochs": 2, "early_stop": stop}, Optimizer=low_lr)
    first = Engine(validate(config)).train()
    state = paddle.load(str(tmp_path / "out" / "latest.pdstates"))
    assert state["early_stop"]["evals_without_gain"] == 1 and not first["stopped_early"]
    config["Global"].update(epochs=8, checkpoints=str(tmp_path / "out" / "latest"))
    resumed = Engine(validate(config)).train()
    log = (tmp_path / "out" / "train.log").read_text()
    assert ("early stop: top1 has not improved by more than 1 for 3 evals (best "
            f"{eval_lines(log)[0][1]:.4f} at epoch 1); stopping after epoch 4 of 8") in log
    assert resumed["stopped_early"] and not (tmp_path / "out" / "epoch_5.pdparams").exists()
    evals = eval_lines(log)
    assert [e for e, _, _ in evals] == [1, 2, 3, 4]
    best = max(evals, key=lambda row: (row[1], -row[2], row[0]))  # top1, then lower loss, then later
    assert (resumed["best_epoch"], resumed["best_top1"]) == (best[0], pytest.approx(best[1], abs=1e-4))
    assert "the Eval set has fewer than 10 images in 3 of 3 classes (the fewest: 4)" in log
