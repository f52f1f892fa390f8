"""Training under hostile conditions: divergence, SIGTERM and SIGKILL with DataLoader workers, crafted
checkpoints, a file-size limit during a save."""
import json
import os
import pickle
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest

from conftest import ROOT, run_tool
from engine_fixtures import make_image_folder, tiny_config, write_config
from paddle_resnet.config import validate
from paddle_resnet.engine import Engine, TrainingDiverged
from paddle_resnet.engine.checkpoint import check_training_state, load_training_state, read_run_info, rng_state
from paddle_resnet.engine.run_dir import LOCK_FILE
from paddle_resnet.locks import lock_is_held
from paddle_resnet.engine.trainer import PREEMPTED_EXIT_CODE
from paddle_resnet.errors import InputError, UnsafeFileError


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return make_image_folder(root / "train"), make_image_folder(root / "val", per_class=4, seed=1)


@pytest.fixture(scope="module")
def trained(folders, tmp_path_factory):
    """A run of one epoch: its ``latest`` prefix and the state load_training_state gives for it."""
    tmp_path = tmp_path_factory.mktemp("trained")
    config = tiny_config(tmp_path, *folders, Global={"epochs": 1, "eval_during_train": False})
    Engine(validate(config)).train()
    latest = str(tmp_path / "out" / "latest")
    return latest, load_training_state(latest)


@pytest.fixture(scope="module")
def saved_state(tmp_path_factory):
    """A training state as Trainer saves it (without training: these tests only check its values), loaded back."""
    prefix = str(tmp_path_factory.mktemp("state") / "latest")
    model = paddle.nn.Linear(2, 3)
    paddle.save({"model": model.state_dict(), "optimizer": {}, "lr": {"last_epoch": 3, "last_lr": 0.05},
                 "epoch": 0, "global_step": 3, "best": {"top1": -1.0, "epoch": -1}, "ema": None, "scaler": None,
                 "rng": rng_state(), "run": {"arch": "resnet18"}, "partial": None}, prefix + ".pdstates")
    return load_training_state(prefix)


def load_weights(path):
    return {k: v.numpy() for k, v in paddle.load(path).items()}


def run_processes(marker):
    """Pids of live processes whose command line holds ``marker`` (the run's config path)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            pids.append(int(entry))
    return pids


def wait_until(condition, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


# ------------------------------------------------------------------ divergence
@pytest.mark.slow
def test_nan_eval_loss_stops_the_run_before_anything_is_saved(folders, tmp_path, monkeypatch):
    config = validate(tiny_config(tmp_path, *folders, Global={"epochs": 2}))
    engine = Engine(config)
    trainer = engine.trainer()
    summary = trainer.train_epoch(0)
    monkeypatch.setattr(trainer.evaluator, "evaluate", lambda *a, **k: {"top1": 0.9, "top5": 1.0, "loss": float("nan"),
                                                             "samples": 12, "skipped": 0})
    with pytest.raises(TrainingDiverged) as err:
        trainer.end_epoch(0, summary)
    assert str(err.value) == ("training diverged at epoch 1 (eval loss nan); no checkpoint of this run was saved "
                              "before. Lower Optimizer.lr.learning_rate or set Global.clip_grad_norm")
    assert not [name for name in os.listdir(tmp_path / "out") if name.startswith(("best", "latest"))]


@pytest.mark.slow
def test_non_finite_ema_weights_are_never_saved(folders, tmp_path):
    config = validate(tiny_config(tmp_path, *folders, Global={"epochs": 2, "eval_during_train": False},
                                  EMA={"use_ema": True, "decay": 0.5}))
    trainer = Engine(config).trainer()
    trainer.end_epoch(0, trainer.train_epoch(0))
    latest = tmp_path / "out" / "latest.pdstates"
    good = latest.read_bytes()
    summary = trainer.train_epoch(1)
    trainer.ema.shadow["fc.bias"].set_value(paddle.full_like(trainer.ema.shadow["fc.bias"], float("inf")))
    with pytest.raises(TrainingDiverged) as err:
        trainer.end_epoch(1, summary)
    assert str(err.value).startswith(f"training diverged at epoch 2 (1 of ")
    assert "are not finite, e.g. ema.fc.bias); the last good checkpoint is " \
           f"{tmp_path / 'out' / 'latest'} (epoch 1)." in str(err.value)
    assert latest.read_bytes() == good and not (tmp_path / "out" / "epoch_2.pdparams").exists()


@pytest.mark.slow
def test_diverged_resume_exits_1_and_keeps_the_good_latest(folders, tmp_path):
    constant = lambda lr: {"lr": {"name": "Constant", "learning_rate": lr, "warmup_epoch": 0}}
    first = run_tool("train.py", "-c", write_config(tmp_path / "a.yaml", tiny_config(
        tmp_path, *folders, Global={"epochs": 1}, Optimizer=constant(0.05))))
    assert first.returncode == 0, first.stderr
    latest = str(tmp_path / "out" / "latest")
    good = open(latest + ".pdparams", "rb").read()
    out = run_tool("train.py", "-c", write_config(tmp_path / "b.yaml", tiny_config(
        tmp_path, *folders, Global={"epochs": 3, "checkpoints": latest}, Optimizer=constant(1e30))))
    assert out.returncode == 1, out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert re.fullmatch(rf"train\.py: error: training diverged at epoch 2 \(\d+ of \d+ weight and state tensors are "
                        rf"not finite, e\.g\. \S+\); the last good checkpoint is {re.escape(latest)} \(epoch 1\)\. "
                        rf"Lower Optimizer\.lr\.learning_rate or set Global\.clip_grad_norm, and resume with "
                        rf"-o Global\.checkpoints={re.escape(latest)}", line), out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert open(latest + ".pdparams", "rb").read() == good
    assert all(np.isfinite(v).all() for v in load_weights(latest + ".pdparams").values())


# ------------------------------------------------------------------ SIGTERM and SIGKILL
def worker_config(tmp_path, folders, name, epochs):
    config = tiny_config(tmp_path, *folders, Global={"epochs": epochs, "output_dir": str(tmp_path / name),
                                                     "eval_during_train": False, "save_interval": 0})
    config["DataLoader"]["Train"]["sampler"]["batch_size"] = 4  # 6 steps per epoch
    config["DataLoader"]["Train"]["loader"] = {"num_workers": 2}
    return write_config(tmp_path / f"{name}.yaml", config)


def start_train(config_path):
    return subprocess.Popen([sys.executable, "tools/train.py", "-c", config_path], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})


def log_text(folder):
    path = folder / "train.log"
    return path.read_text() if path.exists() else ""


@pytest.mark.slow
def test_sigterm_saves_the_step_ends_the_workers_and_the_resume_matches_an_uninterrupted_run(folders, tmp_path):
    full = run_tool("train.py", "-c", worker_config(tmp_path, folders, "full", epochs=2))
    assert full.returncode == 0, full.stderr

    config_path = worker_config(tmp_path, folders, "run", epochs=2)
    run = tmp_path / "run"
    proc = start_train(config_path)
    try:
        assert wait_until(lambda: "epoch 1/2 step 2/6" in log_text(run) or proc.poll() is not None, 240)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=120)
        workers_gone = wait_until(lambda: not run_processes(config_path), 5)
    finally:
        for pid in run_processes(config_path):  # a failed run must not leave them to the rest of the suite
            os.kill(pid, signal.SIGKILL)
    assert proc.returncode == PREEMPTED_EXIT_CODE == 143, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    saved = re.search(rf"preempted by SIGTERM: saved {re.escape(str(run / 'latest'))} \(epoch 1, step (\d) of 6\); "
                      rf"resume with -o Global\.checkpoints={re.escape(str(run / 'latest'))}", log_text(run))
    assert saved and 2 <= int(saved.group(1)) < 6, log_text(run)[-2000:]
    assert workers_gone, "DataLoader workers outlived the run"
    assert not lock_is_held(str(run / LOCK_FILE))

    resumed = run_tool("train.py", "-c", config_path, "-o", f"Global.checkpoints={run / 'latest'}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"next epoch 1 from step {saved.group(1)} of 6" in log_text(run)
    a, b = load_weights(str(tmp_path / "full" / "latest.pdparams")), load_weights(str(run / "latest.pdparams"))
    assert a.keys() == b.keys()
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) <= 1e-5


@pytest.mark.slow
def test_ctrl_c_saves_the_step_like_sigterm_and_exits_130(folders, tmp_path):
    config_path = worker_config(tmp_path, folders, "run", epochs=2)
    run = tmp_path / "run"
    # as from a terminal: SIGINT at its default, whatever the test runner's is (a background job ignores it)
    proc = subprocess.Popen([sys.executable, "tools/train.py", "-c", config_path], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert wait_until(lambda: "epoch 1/2 step 2/6" in log_text(run) or proc.poll() is not None, 240)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=120)
        workers_gone = wait_until(lambda: not run_processes(config_path), 5)
    finally:
        for pid in run_processes(config_path):
            os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-3000:]
    assert re.search(r"preempted by SIGINT: saved .*latest \(epoch 1, step \d of 6\)", log_text(run))
    assert workers_gone and not lock_is_held(str(run / LOCK_FILE))
    assert "Traceback" not in err, err[-3000:]


@pytest.mark.slow
def test_sigkilled_run_leaves_no_dataloader_worker(folders, tmp_path):
    config_path = worker_config(tmp_path, folders, "run", epochs=40)
    proc = start_train(config_path)
    try:
        assert wait_until(lambda: len(run_processes(config_path)) >= 3 or proc.poll() is not None, 240), \
            "the workers never started"
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        orphans_gone = wait_until(lambda: not run_processes(config_path), 5)
    finally:
        for pid in run_processes(config_path):  # a failed run must not leave them to the rest of the suite
            os.kill(pid, signal.SIGKILL)
    assert orphans_gone, "DataLoader workers outlived the killed run"


# ------------------------------------------------------------------ crafted checkpoints
def write_pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def test_pdstates_of_shared_dicts_is_refused_quickly(tmp_path):
    node = {"w": 1.0}
    for _ in range(40):  # 2^40 paths through 40 dicts
        node = {"a": node, "b": node}
    prefix = tmp_path / "bomb"
    write_pickle(f"{prefix}.pdstates", {"model": node})
    assert os.path.getsize(f"{prefix}.pdstates") < 2000
    started = time.perf_counter()
    with pytest.raises(UnsafeFileError) as err:
        load_training_state(str(prefix))
    assert time.perf_counter() - started < 5
    assert str(err.value) == (f"{os.path.abspath(prefix)}.pdstates: not a training state: its values nest deeper "
                              f"than 64 levels or expand to more than 250,000 (shared containers)")


def test_pdstates_nested_too_deeply_is_refused(tmp_path):
    node = {}
    for _ in range(100):
        node = {"a": node}
    write_pickle(tmp_path / "deep.pdstates", node)
    with pytest.raises(UnsafeFileError, match="nest deeper than 64 levels"):
        load_training_state(str(tmp_path / "deep"))


def _crafted(state, key, value):
    state = dict(state)
    if "." in key:
        outer, inner = key.split(".", 1)
        state[outer] = dict(state[outer], **{inner: value})
    else:
        state[key] = value
    return state


@pytest.mark.parametrize("key,value,message", [
    ("epoch", "2", "epoch must be an integer from -1 to 999999, got '2'"),
    ("epoch", -7, "epoch must be an integer from -1 to 999999, got -7"),
    ("epoch", 10 ** 30, "epoch must be an integer from -1 to 999999, got 1000000000000000000000000000000"),
    ("epoch", True, "epoch must be an integer from -1 to 999999, got True"),
    ("global_step", -1, "global_step must be an integer from 0 to 9007199254740992, got -1"),
    ("best", {"top1": "x"}, "best must be {'top1': a number, 'epoch': an epoch}, got <dict of 1>"),
    ("lr.last_epoch", "3", "lr.last_epoch must be a number, got '3'"),
    ("rng.python", [3, [1, 2], None], "rng.python is not the RNG state rng_state() saves (got <list of 3>)"),
    ("rng.python", (3, tuple([2 ** 40] * 625), None),
     "rng.python is not the RNG state rng_state() saves (got <tuple of 3>)"),
    ("rng.numpy", ("MT19937", np.zeros(624, "int64"), 0, 0, 0.0),
     "rng.numpy is not the RNG state rng_state() saves (got <tuple of 5>)"),
    ("rng.paddle", "x", "rng.paddle is not the RNG state rng_state() saves (got 'x')"),
    ("model", [1], "model must be a dict, got [1]"),
])
def test_crafted_state_values_are_one_line_naming_the_key(saved_state, key, value, message):
    check_training_state(saved_state, "x.pdstates")  # the values as saved pass
    with pytest.raises(InputError) as err:
        check_training_state(_crafted(saved_state, key, value), "x.pdstates")
    assert str(err.value) == f"x.pdstates: not a valid training state: {message}"


def test_a_state_with_non_finite_weights_is_not_resumed_from(saved_state):
    name = next(iter(saved_state["model"]))
    weights = dict(saved_state["model"], **{name: saved_state["model"][name] * float("nan")})
    with pytest.raises(InputError) as err:
        check_training_state(dict(saved_state, model=weights), "x.pdstates")
    assert str(err.value) == f"x.pdstates: model holds non-finite values in 1 tensors ({name}); refusing to resume from it"


@pytest.mark.slow
def test_resume_from_crafted_values_is_one_line(folders, trained, tmp_path):
    latest, state = trained
    for key, value, expected in [
            ("epoch", -7, "epoch must be an integer from -1 to 999999, got -7"),
            ("partial", {"step": 99, "loader": {}}, "partial.step must be an integer from 0 to 3, got 99"),
            ("partial", {"step": 1, "loader": {"batches": 1, "batch_rng": {"state": 1}}},
             "partial.loader.batch_rng is not a PCG64 state (got <dict of 1>)")]:
        prefix = tmp_path / "crafted" / "latest"
        shutil.copytree(os.path.dirname(latest), prefix.parent, dirs_exist_ok=True)
        raw = paddle.load(latest + ".pdstates")
        raw[key] = value
        paddle.save(raw, f"{prefix}.pdstates")
        config = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders, Global={
            "epochs": 3, "checkpoints": str(prefix), "output_dir": str(tmp_path / "again")}))
        out = run_tool("train.py", "-c", config)
        assert out.returncode == 1, out.stderr[-2000:]
        assert out.stderr.strip().splitlines()[-1] == \
            f"train.py: error: {prefix}.pdstates: not a valid training state: {expected}", out.stderr[-2000:]


def test_deep_run_record_is_one_line(tmp_path):
    (tmp_path / "w.pdparams").write_bytes(b"")
    (tmp_path / "w.run.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(InputError) as err:
        read_run_info(str(tmp_path / "w.pdparams"))
    assert str(err.value) == (f"{tmp_path / 'w.run.json'}: not a valid checkpoint run record (nested too deeply); "
                              f"delete it to use the weights without it")


def test_run_record_fields_are_checked(tmp_path):
    (tmp_path / "w.run.json").write_text(json.dumps({"arch": ["resnet18"], "class_num": 3}))
    with pytest.raises(InputError, match=r"arch must be a str, got \['resnet18'\]"):
        read_run_info(str(tmp_path / "w.pdparams"))


# ------------------------------------------------------------------ a save over the file-size limit
def _limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))


@pytest.mark.slow
def test_save_over_the_file_size_limit_names_the_last_good_checkpoint(folders, trained, tmp_path):
    latest, _state = trained
    run = tmp_path / "run"
    shutil.copytree(os.path.dirname(latest), run)
    good = (run / "latest.pdparams").read_bytes()
    config = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders, Global={
        "epochs": 2, "output_dir": str(run), "checkpoints": str(run / "latest"), "eval_during_train": False}))
    out = subprocess.run([sys.executable, "tools/train.py", "-c", config], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "PYTHONPATH": ROOT}, preexec_fn=_limit_file_size)
    assert out.returncode == 1, out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1] == (
        f"train.py: error: cannot save checkpoint {run / 'latest'}: File too large; the last good checkpoint is "
        f"{run / 'latest'} (epoch 1)"), out.stderr[-2000:]
    assert (run / "latest.pdparams").read_bytes() == good
    assert load_training_state(str(run / "latest"))["epoch"] == 0
