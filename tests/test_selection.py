"""Choosing best (Global.best_metric, ties), early stopping (resumable) and the small-Eval-set warning."""
import re

import paddle
import pytest

from engine_fixtures import make_image_folder, tiny_config
from paddle_resnet.config import ConfigError, validate
from paddle_resnet.engine import Engine
from paddle_resnet.engine.selection import EarlyStop, is_new_best
from paddle_resnet.errors import InputError


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
    ({"early_stop": {"patience": 2}, "eval_during_train": False},
     "Global.early_stop counts evals, and Global.eval_during_train is false: set it true (or drop early_stop)"),
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
def test_best_among_ties_an_early_stop_that_resumes_and_the_average_of_its_checkpoints(tmp_path, capsys):
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
    averaged_then_evaluated(tmp_path, config, capsys)


def averaged_then_evaluated(tmp_path, config, capsys):
    from paddle_resnet.cli.avg_checkpoints import main
    from engine_fixtures import write_config
    config["Global"].pop("checkpoints")
    path = write_config(tmp_path / "c.yaml", config)
    assert main(["-c", path, "--last", "2"], prog="avg-checkpoints") == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("[")]  # not the log
    assert printed[0] == f"averaged epochs 3, 4 of {tmp_path / 'out'} into {tmp_path / 'out' / 'avg_last2'}.pdparams"
    direct = Engine(validate({**config, "Global": {**config["Global"],
                                                   "pretrained_model": str(tmp_path / "out" / "avg_last2")}}),
                    "eval").evaluate()
    assert printed[1] == (f"eval average: top1 {direct['top1']:.4f} loss {direct['loss']:.4f} macro_f1 "
                          f"{direct['macro_f1']:.4f} over 12 images")
    assert re.fullmatch(r"eval epoch 4: top1 [\d.]+ loss [\d.]+ macro_f1 [\d.]+ over 12 images", printed[2])


def save_epochs(folder, count, class_num=3):
    """Small checkpoints of a run's epochs 1..count (the averaging reads any weights, not a model)."""
    import numpy as np
    from paddle_resnet.engine.checkpoint import save_checkpoint
    states = []
    for epoch in range(1, count + 1):
        rng = np.random.default_rng(epoch)
        state = {"conv1.weight": rng.normal(size=(4, 3, 3, 3)), "fc.weight": rng.normal(size=(512, class_num)),
                 "fc.bias": rng.normal(size=class_num), "layer4.1.bn2._variance": rng.random(4)}
        state = {key: value.astype("float32") for key, value in state.items()}
        save_checkpoint(str(folder / f"epoch_{epoch}"), {k: paddle.to_tensor(v) for k, v in state.items()}, None,
                        {"arch": "resnet18", "class_num": class_num, "class_names": ["a", "b", "c"][:class_num]})
        states.append(state)
    return states


def test_averaging_the_last_checkpoints_is_their_mean(tmp_path):
    import numpy as np
    from paddle_resnet.engine.averaging import average_checkpoints
    from paddle_resnet.engine.checkpoint import read_run_info
    states = save_epochs(tmp_path, 3)
    assert average_checkpoints(str(tmp_path), 2, str(tmp_path / "avg")) == [2, 3]
    averaged = paddle.load(str(tmp_path / "avg.pdparams"))
    for key in ("conv1.weight", "fc.bias", "layer4.1.bn2._variance"):
        np.testing.assert_allclose(averaged[key].numpy(), (states[1][key] + states[2][key]) / 2, rtol=1e-6)
    assert read_run_info(str(tmp_path / "avg"))["class_names"] == ["a", "b", "c"]
    with pytest.raises(InputError) as error:
        average_checkpoints(str(tmp_path), 5, str(tmp_path / "avg"))
    assert str(error.value) == (f"{tmp_path} has 3 epoch checkpoints (epoch_1, epoch_2, epoch_3), fewer than the 5 "
                                f"to average; a run keeps one every Global.save_interval epochs")
    (tmp_path / "other").mkdir()
    save_epochs(tmp_path / "other", 1, class_num=2)
    (tmp_path / "other" / "epoch_1.pdparams").rename(tmp_path / "epoch_4.pdparams")
    with pytest.raises(InputError, match=r"epoch_4.pdparams: fc.weight is \[512, 2\], \[512, 3\] in .*epoch_3.pdparams"):
        average_checkpoints(str(tmp_path), 2, str(tmp_path / "avg"))
