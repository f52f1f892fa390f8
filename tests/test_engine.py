"""Config parsing and the training engine, on small real image files."""
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import paddle
import pytest

from conftest import ROOT, run_tool
from engine_fixtures import make_image_folder, tiny_config, write_config
from paddle_resnet.config import ConfigError, apply_override, load_config, validate
from paddle_resnet.engine import Engine, TrainingDiverged
from paddle_resnet.engine.device import DeviceUnavailable
from paddle_resnet.engine.trainer import cpu_amp_message
from paddle_resnet.errors import InputError, OutputError


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return make_image_folder(root / "train"), make_image_folder(root / "val", per_class=4, seed=1)


def load_weights(path):
    return {k: v.numpy() for k, v in paddle.load(path).items()}


# ------------------------------------------------------------------ config
@pytest.mark.parametrize("text,value", [
    ("10", 10), ("0.5", 0.5), ("1e-4", 1e-4), ("true", True), ("False", False), ("null", None),
    ("[3, 32, 32]", [3, 32, 32]), ("output/run1", "output/run1"), ("__import__('os')", "__import__('os')"),
])
def test_override_values_are_typed_safely(text, value):
    config = {}
    apply_override(config, f"Global.x={text}")
    assert config["Global"]["x"] == value
    assert type(config["Global"]["x"]) is type(value)


def test_overrides_reach_nested_keys_and_list_items(folders, tmp_path):
    path = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders))
    config = load_config(path, ["Optimizer.lr.learning_rate=0.2", "DataLoader.Train.sampler.batch_size=4",
                                "DataLoader.Train.dataset.transform_ops.1.RandFlipImage.flip_code=0"])
    assert config["Optimizer"]["lr"]["learning_rate"] == 0.2
    assert config["DataLoader"]["Train"]["sampler"]["batch_size"] == 4
    assert config["DataLoader"]["Train"]["dataset"]["transform_ops"][1] == {"RandFlipImage": {"flip_code": 0}}
    assert config["Global"]["eval_interval"] == 1  # defaults filled in


@pytest.mark.parametrize("override,message", [
    ("Global.epoch=3", "unknown key Global.epoch; did you mean 'epochs'?"),
    ("Optimizr.name=Momentum", "unknown section 'Optimizr'; did you mean 'Optimizer'?"),
    ("Optimizer.lr.warmup_epochs=1", "unknown key Optimizer.lr.warmup_epochs; did you mean 'warmup_epoch'?"),
    ("Global.epochs=1.5", "Global.epochs must be int, got float 1.5"),
    ("Global.use_visualdl=1", "Global.use_visualdl must be a bool (true/false), got 1"),
    ("Arch.name=null", "missing required key Arch.name in section Arch"),
    ("DataLoader.Train.dataset.transform_ops.9.X=1", "DataLoader.Train.dataset.transform_ops is a list of 4 items; '9' is not an index of it"),
    ("Global.epochs", "override 'Global.epochs' must look like Section.key=value"),
])
def test_bad_overrides_name_the_problem(folders, tmp_path, override, message):
    path = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders))
    config = load_config(path)  # the base is valid
    assert config["Global"]["epochs"] == 2
    with pytest.raises(ConfigError) as err:
        load_config(path, [override])
    assert message in str(err.value)


def test_missing_required_key_names_its_section():
    with pytest.raises(ConfigError, match="missing required key Arch.name in section Arch"):
        validate({"Arch": {"class_num": 3}})


def test_every_shipped_config_is_valid():
    names = sorted(f for f in os.listdir(os.path.join(ROOT, "configs")) if f.endswith(".yaml"))
    assert {"resnet18.yaml", "resnet50.yaml", "resnet50_vd.yaml", "resnet50_v2.yaml", "quickstart.yaml"} <= set(names)
    archs = {name: load_config(os.path.join(ROOT, "configs", name))["Arch"]["name"] for name in names}
    assert archs == {**{n: n[:-len(".yaml")] for n in names if n.startswith("resnet")},
                     "quickstart.yaml": "resnet18", "finetune_imagefolder.yaml": "resnet50"}


def test_imagenet_recipe():
    config = load_config(os.path.join(ROOT, "configs", "resnet50.yaml"))
    opt = config["Optimizer"]
    assert (opt["name"], opt["momentum"], opt["regularizer"]["coeff"]) == ("Momentum", 0.9, 1e-4)
    assert (opt["lr"]["name"], opt["lr"]["learning_rate"], opt["lr"]["base_batch_size"]) == ("Cosine", 0.1, 256)
    assert opt["lr"]["warmup_epoch"] == 5 and config["Global"]["epochs"] == 120
    assert config["DataLoader"]["Train"]["sampler"]["batch_size"] == 64
    assert config["DataLoader"]["Train"]["dataset"]["cls_label_path"] == "data/ILSVRC2012/train_list.txt"


# ------------------------------------------------------------------ errors before training
def test_missing_data_stops_before_the_model_is_built(folders, tmp_path, monkeypatch):
    config = validate(tiny_config(tmp_path, tmp_path / "nowhere", folders[1]))
    import paddle_resnet.engine.engine as engine_module
    monkeypatch.setattr(engine_module, "build_model", lambda *a, **k: pytest.fail("model built before data check"))
    with pytest.raises(FileNotFoundError) as err:
        Engine(config)
    assert str(tmp_path / "nowhere") in str(err.value)
    assert "README.md, section 'Preparing data'" in str(err.value)


@pytest.mark.skipif(paddle.is_compiled_with_cuda(), reason="checks the error of a CPU-only Paddle")
def test_gpu_on_a_cpu_only_paddle_is_a_clear_error(folders, tmp_path):
    config = validate(tiny_config(tmp_path, *folders, Global={"device": "gpu"}))
    with pytest.raises(DeviceUnavailable, match="Global.device=gpu, but this Paddle build has no CUDA support"):
        Engine(config)


@pytest.mark.slow
def test_bad_label_in_list_is_an_error_before_training(folders, tmp_path):
    listing = tmp_path / "train_list.txt"
    listing.write_text("class0/000.png 0\nclass1/000.png 7\n")
    config = tiny_config(tmp_path, *folders)
    config["DataLoader"]["Train"]["dataset"] = {"name": "FileList", "image_root": str(folders[0]),
                                                "cls_label_path": str(listing),
                                                "transform_ops": config["DataLoader"]["Train"]["dataset"]["transform_ops"]}
    out = run_tool("train.py", "-c", write_config(tmp_path / "c.yaml", config))
    assert out.returncode == 1
    assert f"{listing}, line 2" in out.stderr and "label 7" in out.stderr
    assert not os.path.exists(tmp_path / "out" / "latest.pdparams")


# ------------------------------------------------------------------ training
@pytest.mark.slow
def test_train_writes_checkpoints_logs_and_visualdl(folders, tmp_path):
    config = validate(tiny_config(tmp_path, *folders, Global={"use_visualdl": True}))
    result = Engine(config).train()
    out = tmp_path / "out"
    for name in ("latest.pdparams", "latest.pdstates", "best.pdparams", "epoch_1.pdparams", "config.yaml",
                 "train.log"):
        assert (out / name).is_file(), name
    assert os.listdir(out / "vdl")
    log = (out / "train.log").read_text()
    assert re.search(r"epoch 2/2 step 3/3 loss [\d.]+ lr [\d.]+ top1 [\d.]+ top5 [\d.]+ ips [\d.]+ img/s eta", log)
    assert "effective config" in log
    best = re.findall(r"best top1 ([\d.]+)", log)[-1]
    assert result["best_top1"] == pytest.approx(float(best), abs=1e-4) and result["best_epoch"] in (1, 2)
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    for suffix in (".pdparams", ".pdstates", ".run.json"):  # epoch_2 is latest, not serialised twice
        assert (out / f"epoch_2{suffix}").read_bytes() == (out / f"latest{suffix}").read_bytes()
    assert paddle.load(str(out / "epoch_1.pdstates"))["epoch"] == 0  # rewriting latest left epoch 1's copy alone
    assert paddle.load(str(out / "latest.pdstates"))["epoch"] == 1


@pytest.mark.parametrize("links", [True, False], ids=["hard-links", "no-hard-links"])
def test_copy_checkpoint_stays_a_copy_when_the_source_is_rewritten(tmp_path, monkeypatch, links):
    from paddle_resnet.engine.checkpoint import copy_checkpoint, save_checkpoint
    if not links:
        def no_links(*_args):
            raise PermissionError(1, "Operation not permitted")
        monkeypatch.setattr(os, "link", no_links)
    save_checkpoint(str(tmp_path / "latest"), {"w": paddle.ones([2])}, {"epoch": 0}, {"arch": "resnet18"})
    copy_checkpoint(str(tmp_path / "latest"), str(tmp_path / "epoch_1"))
    assert os.stat(tmp_path / "epoch_1.pdstates").st_nlink == (2 if links else 1)
    save_checkpoint(str(tmp_path / "latest"), {"w": paddle.zeros([2])}, {"epoch": 1}, {"arch": "resnet18"})
    assert paddle.load(str(tmp_path / "epoch_1.pdparams"))["w"].tolist() == [1.0, 1.0]
    assert paddle.load(str(tmp_path / "epoch_1.pdstates")) == {"epoch": 0}
    assert (tmp_path / "epoch_1.run.json").read_text() == (tmp_path / "latest.run.json").read_text()
    assert os.stat(tmp_path / "epoch_1.pdparams").st_nlink == 1  # latest's rename dropped the shared inode


@pytest.mark.slow
def test_loss_goes_to_zero_on_a_fixed_batch(tmp_path):
    """One list of 6 images repeated: every step sees the same unshuffled, unaugmented batch."""
    data = make_image_folder(tmp_path / "one", per_class=2)
    files = sorted(str(p.relative_to(data)) for p in data.rglob("*.png"))
    listing = tmp_path / "fixed.txt"
    listing.write_text("".join(f"{f} {int(f[5])}\n" for f in files) * 30)
    config = tiny_config(tmp_path, data, data, Global={"epochs": 1, "eval_during_train": False, "save_interval": 0,
                                                       "print_batch_step": 5},
                         Optimizer={"lr": {"name": "Constant", "learning_rate": 0.05, "warmup_epoch": 0},
                                    "regularizer": {"name": "L2", "coeff": 0.0}})
    train = config["DataLoader"]["Train"]
    train["dataset"] = {"name": "FileList", "image_root": str(data), "cls_label_path": str(listing),
                        "transform_ops": config["DataLoader"]["Eval"]["dataset"]["transform_ops"]}
    train["sampler"] = {"batch_size": 6, "shuffle": False}
    Engine(validate(config)).train()
    losses = [float(v) for v in re.findall(r"step \d+/30 loss ([\d.]+)", (tmp_path / "out" / "train.log").read_text())]
    # the logged loss is the running mean since the epoch began; the last steps pull it down to ~0
    first_step = 5 * losses[0]
    last_steps = (30 * losses[-1] - 25 * losses[-2]) / 5
    assert first_step > 0.5 and last_steps < 0.01


@pytest.mark.slow
def test_divergence_names_the_last_good_checkpoint_and_never_replaces_it(folders, tmp_path):
    constant = lambda lr: {"lr": {"name": "Constant", "learning_rate": lr, "warmup_epoch": 0}}
    Engine(validate(tiny_config(tmp_path, *folders, Global={"epochs": 1}, Optimizer=constant(0.05)))).train()
    latest = str(tmp_path / "out" / "latest")  # a good checkpoint; resuming from it with lr 1e30 diverges
    good = {suffix: open(latest + suffix, "rb").read() for suffix in (".pdparams", ".pdstates")}
    diverging = tiny_config(tmp_path, *folders, Global={"epochs": 3, "checkpoints": latest}, Optimizer=constant(1e30))
    with pytest.raises(TrainingDiverged) as err:
        Engine(validate(diverging)).train()
    # epoch 2's last update makes the weights non-finite while its step losses stay finite (BN)
    assert re.fullmatch(rf"training diverged at epoch 2 \(\d+ of \d+ weight and state tensors are not finite, e\.g\. "
                        rf"\S+\); the last good checkpoint is {re.escape(latest)} \(epoch 1\)\. Lower "
                        rf"Optimizer\.lr\.learning_rate or set Global\.clip_grad_norm, and resume with "
                        rf"-o Global\.checkpoints={re.escape(latest)}", str(err.value)), str(err.value)
    assert {suffix: open(latest + suffix, "rb").read() for suffix in good} == good
    assert not os.path.exists(tmp_path / "out" / "epoch_2.pdparams")


@pytest.mark.slow
def test_amp_on_cpu_falls_back_to_fp32_with_a_warning(folders, tmp_path, caplog):
    config = validate(tiny_config(tmp_path, *folders, Global={"epochs": 1}, AMP={"use_amp": True, "level": "O2"}))
    engine = Engine(config)
    engine.train()
    assert "AMP.use_amp needs a CUDA GPU; training in fp32 on the CPU" in (tmp_path / "out" / "train.log").read_text()
    assert engine.model.conv1.weight.dtype == paddle.float32


@pytest.mark.parametrize("cpu_has_bf16,message", [
    (False, "AMP.use_amp with AMP.dtype bfloat16: this CPU has no bf16 instructions (avx512_bf16 or amx_bf16 in "
            "/proc/cpuinfo); training in fp32"),
    (True, "AMP.use_amp with AMP.dtype bfloat16 on the CPU: Paddle 3.3.1 has no CPU bf16 training step that is "
           "faster than fp32 (its autocast is off on the CPU, its static bf16 rewrite runs the forward "
           "convolutions in fp32: docs/benchmarks.md#bf16-training); training in fp32")])
def test_bf16_amp_on_the_cpu_says_why_it_trains_in_fp32(cpu_has_bf16, message):
    assert cpu_amp_message("bfloat16", cpu_has_bf16) == message
    assert cpu_amp_message("float16", cpu_has_bf16) == "AMP.use_amp needs a CUDA GPU; training in fp32 on the CPU"


@pytest.mark.slow
def test_accumulation_ema_clipping_and_mixup_run(folders, tmp_path):
    config = tiny_config(tmp_path, *folders, Global={"epochs": 1, "accum_steps": 3, "clip_grad_norm": 1.0},
                         EMA={"use_ema": True, "decay": 0.5})
    config["DataLoader"]["Train"]["dataset"]["batch_transform_ops"] = [{"MixupOperator": {"alpha": 0.2}}]
    config["DataLoader"]["Train"]["sampler"]["batch_size"] = 4  # 24 images: 6 batches, 2 optimizer steps
    engine = Engine(validate(config))
    engine.train()
    state = paddle.load(str(tmp_path / "out" / "latest.pdstates"))
    assert state["global_step"] == 2
    ema, model = state["ema"], state["model"]
    assert not np.allclose(ema["fc.weight"].numpy(), model["fc.weight"].numpy())
    best = load_weights(str(tmp_path / "out" / "best.pdparams"))
    np.testing.assert_array_equal(best["fc.weight"], ema["fc.weight"].numpy())  # best holds the evaluated EMA weights


@pytest.mark.slow
def test_freezing_keeps_the_backbone_and_its_bn_statistics(folders, tmp_path):
    config = validate(tiny_config(tmp_path, *folders, Global={"epochs": 1},
                                  Arch={"name": "resnet18", "class_num": 3, "freeze": "backbone"}))
    engine = Engine(config)
    before = {k: v.numpy().copy() for k, v in engine.model.state_dict().items()}
    engine.train()
    after = engine.model.state_dict()
    changed = sorted(k for k in before if not np.array_equal(before[k], after[k].numpy()))
    assert changed == ["fc.bias", "fc.weight"]


@pytest.mark.slow
def test_lr_mult_list_scales_each_stage(folders, tmp_path):
    config = validate(tiny_config(tmp_path, *folders, Global={"epochs": 1},
                                  Arch={"name": "resnet18", "class_num": 3, "lr_mult_list": [0.0, 0.0, 0.0, 0.0, 1.0]}))
    engine = Engine(config)
    before = engine.model.layer3[0].conv1.weight.numpy().copy()
    engine.train()
    np.testing.assert_array_equal(engine.model.layer3[0].conv1.weight.numpy(), before)


@pytest.mark.slow
def test_unreadable_images_are_skipped_and_counted(tmp_path):
    train = make_image_folder(tmp_path / "train")
    (tmp_path / "train" / "class1" / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "train" / "class2" / "empty.png").write_bytes(b"")
    config = validate(tiny_config(tmp_path, train, train, Global={"epochs": 1}))
    Engine(config).train()
    log = (tmp_path / "out" / "train.log").read_text()
    assert "broken.png" in log and "empty.png" in log
    assert "epoch 1: skipped 2 unreadable image(s)" in log
    assert "over 24 images" in log  # eval saw the 24 good ones, labels intact


@pytest.mark.slow
# ------------------------------------------------------------------ tools
def test_eval_tool_matches_the_in_training_eval(folders, tmp_path):
    path = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders, Global={"epochs": 2}))
    trained = run_tool("train.py", "-c", path)
    assert trained.returncode == 0, trained.stderr
    best = re.search(r"best top1 ([\d.]+) at epoch (\d+)", trained.stdout)
    log = (tmp_path / "out" / "train.log").read_text()
    in_training = re.search(rf"eval epoch {best.group(2)}: top1 ([\d.]+) top5 [\d.]+ loss ([\d.]+)", log)
    evaluated = run_tool("eval.py", "-c", path, "-o", f"Global.pretrained_model={tmp_path / 'out' / 'best'}")
    assert evaluated.returncode == 0, evaluated.stderr
    printed = re.search(r"eval: top1 ([\d.]+) top5 [\d.]+ loss ([\d.]+) over 12 images", evaluated.stdout)
    assert printed.group(1) == in_training.group(1) == best.group(1)
    assert printed.group(2) == in_training.group(2)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(folders, tmp_path):
    """SIGKILL during epoch 3 (or its save), resume from latest: the final weights equal an uninterrupted run's."""
    def config_for(name):
        return write_config(tmp_path / f"{name}.yaml", tiny_config(tmp_path, *folders, Global={
            "epochs": 4, "output_dir": str(tmp_path / name), "eval_during_train": False}))
    full = run_tool("train.py", "-c", config_for("full"))
    assert full.returncode == 0, full.stderr

    resumed_cfg = config_for("killed")
    proc = subprocess.Popen([sys.executable, "tools/train.py", "-c", resumed_cfg], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = tmp_path / "killed" / "epoch_2.pdstates"
    deadline = time.time() + 240
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "epoch_4.pdparams").exists()
    resumed = run_tool("train.py", "-c", resumed_cfg, "-o", f"Global.checkpoints={tmp_path / 'killed' / 'latest'}")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in (tmp_path / "killed" / "train.log").read_text()
    a, b = load_weights(str(tmp_path / "full" / "latest.pdparams")), load_weights(str(tmp_path / "killed" / "latest.pdparams"))
    assert a.keys() == b.keys()
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) <= 1e-5


@pytest.mark.slow
def test_resume_from_weights_only_names_the_right_option(folders, tmp_path):
    path = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders))
    weights = tmp_path / "w"
    paddle.save(paddle.vision.models.resnet18(num_classes=3).state_dict(), str(weights) + ".pdparams")
    out = run_tool("train.py", "-c", path, "-o", f"Global.checkpoints={weights}")
    assert out.returncode == 1
    assert f"cannot resume: {weights}.pdstates does not exist ({weights}.pdparams holds weights only: " \
           "use Global.pretrained_model for it)" in out.stderr


@pytest.mark.slow
def test_two_process_cpu_training_keeps_ranks_identical(folders, tmp_path):
    lr = {"name": "Cosine", "learning_rate": 0.005, "warmup_epoch": 0}  # 0.05 saturates the 12 eval outputs
    path = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders, Global={"epochs": 2}, Optimizer={"lr": lr}))
    out = subprocess.run([sys.executable, "tools/launch.py", "--nproc_per_node", "2",
                          "--log_dir", str(tmp_path / "launch"), "tools/train.py", "-c", path],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    logs = "".join((tmp_path / "launch" / f).read_text() for f in sorted(os.listdir(tmp_path / "launch")))
    assert out.returncode == 0, out.stderr[-3000:] + logs[-3000:]
    # A quiet console: only the project's lines, none of Paddle's (launcher, C++ log, FLAGS banner, warnings).
    console = (out.stdout + out.stderr).splitlines()
    assert console and all(re.match(r"\[\d\d:\d\d:\d\d\] (INFO|WARNING) |best top1 ", line) for line in console), console
    log = (tmp_path / "out" / "train.log").read_text()
    assert "weights identical on all 2 ranks" in log
    assert "step 2/2" in log  # 24 images, batch 8 per rank: 2 steps per rank and epoch
    assert "over 12 images" in log  # both ranks evaluated their shares, each image counted once
    evaluated = run_tool("eval.py", "-c", path, "-o", f"Global.pretrained_model={tmp_path / 'out' / 'latest'}")
    assert evaluated.returncode == 0, evaluated.stderr
    # Global.dist_bn (reduce) averaged the ranks' BN statistics before the last eval and save, so the
    # rank-0 checkpoint is the model both ranks evaluated: eval.py prints the same top-1 and loss.
    figures = r"top1 (\S+) .*loss (\S+) over 12 images"
    in_training = re.findall(r"eval epoch 2: " + figures, log)
    assert in_training and in_training == re.findall(figures, evaluated.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["eval.py", "export_model.py"])
def test_eval_and_export_need_weights(folders, tmp_path, tool):
    out = run_tool(tool, "-c", write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders)))
    assert out.returncode == 1
    mode = "eval" if tool == "eval.py" else "export"
    assert out.stderr.strip() == (f"{tool}: error: Global.pretrained_model is not set: {mode} needs trained "
                                  f"weights, e.g. -o Global.pretrained_model={tmp_path / 'out' / 'best'}")


@pytest.mark.parametrize("name", ["Momentum", "AdamW"])
@pytest.mark.slow
def test_no_weight_decay_on_bn_and_bias(name):
    from paddle_resnet import build_model
    from paddle_resnet.engine.optim import build_optimizer
    model = build_model("resnet18", num_classes=3)
    config = {"name": name, "momentum": 0.9, "use_nesterov": False, "no_weight_decay_on_bn_bias": True,
              "regularizer": {"name": "L2", "coeff": 0.5}}
    optimizer = build_optimizer(config, model, 0.1)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    for param in model.parameters():  # zero gradients: whatever moves, weight decay moved it
        param.grad = paddle.zeros_like(param)
    optimizer.step()
    after = model.state_dict()
    moved = {k for k in before if not np.array_equal(before[k], after[k].numpy())}
    assert "conv1.weight" in moved and "fc.weight" in moved and "layer1.0.conv1.weight" in moved
    assert not {k for k in moved if k.startswith(("bn1.", "layer1.0.bn1.")) or k == "fc.bias"}


# ------------------------------------------------------------------ resume and output (hostile cases)
def train_once(tmp_path, folders, name="run", **sections):
    config = tiny_config(tmp_path, *folders, **sections)
    config["Global"].update({"output_dir": str(tmp_path / name), "epochs": 2, "eval_during_train": False})
    Engine(validate(config)).train()
    return str(tmp_path / name / "latest")


@pytest.mark.parametrize("change,message", [
    ({"Arch": {"name": "resnet34", "class_num": 3}}, "it was trained as resnet18 with 3 classes, Momentum, the config "
                                                     "builds resnet34 with 3 classes, Momentum"),
    ({"Optimizer": {"name": "AdamW", "lr": {"name": "Cosine", "learning_rate": 0.01, "warmup_epoch": 0}}},
     "it was trained as resnet18 with 3 classes, Momentum, the config builds resnet18 with 3 classes, AdamW"),
    ({"checkpoint_classes": 5}, "it was trained as resnet18 with 5 classes, Momentum, the config builds resnet18 "
                                "with 3 classes, Momentum"),
])
@pytest.mark.slow
def test_resume_with_another_model_or_optimizer_is_one_line(folders, tmp_path, change, message):
    latest = train_once(tmp_path, folders)
    if "checkpoint_classes" in change:  # the same data, a checkpoint of another class count
        state = paddle.load(latest + ".pdstates")
        state["run"]["class_num"] = change.pop("checkpoint_classes")
        paddle.save(state, latest + ".pdstates")
    config = tiny_config(tmp_path, *folders, **change)
    config["Global"].update({"output_dir": str(tmp_path / "again"), "epochs": 4, "checkpoints": latest})
    with pytest.raises(ConfigError) as err:
        Engine(validate(config)).train()
    assert str(err.value) == (f"cannot resume from {latest}: {message}; resume with the config it was trained "
                              f"with (its config.yaml), or start from its weights with "
                              f"-o Global.pretrained_model={latest}")


@pytest.mark.slow
def test_resume_with_epochs_already_done_is_an_error_not_a_no_op(folders, tmp_path):
    latest = train_once(tmp_path, folders)
    path = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders, Global={
        "output_dir": str(tmp_path / "run"), "epochs": 2, "checkpoints": latest}))
    out = run_tool("train.py", "-c", path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip() == (f"train.py: error: Global.epochs is 2 but {latest} has already finished epoch 2: "
                                  f"nothing left to train; set Global.epochs above 2 to train on")


@pytest.mark.slow
def test_zero_batches_per_epoch_is_an_error_before_training(folders, tmp_path):
    config = tiny_config(tmp_path, *folders)
    config["DataLoader"]["Train"]["sampler"].update({"batch_size": 64, "drop_last": True})  # 24 images
    out = run_tool("train.py", "-c", write_config(tmp_path / "c.yaml", config))
    assert out.returncode == 1
    assert out.stderr.strip() == ("train.py: error: DataLoader.Train gives 0 batches per epoch: 24 images, batch_size "
                                  "64 and drop_last true; lower DataLoader.Train.sampler.batch_size or set "
                                  "drop_last: false")
    assert not os.path.exists(tmp_path / "out" / "best.pdparams")


@pytest.mark.slow
def test_zero_eval_batches_is_an_error_before_training(folders, tmp_path):
    config = tiny_config(tmp_path, *folders)
    config["DataLoader"]["Eval"]["sampler"].update({"batch_size": 64, "drop_last": True})  # 12 images
    with pytest.raises(InputError) as err:
        Engine(validate(config)).train()
    assert str(err.value) == ("DataLoader.Eval gives 0 batches per epoch: 12 images, batch_size 64 and drop_last "
                              "true; lower DataLoader.Eval.sampler.batch_size or set drop_last: false")
    assert not os.path.exists(tmp_path / "out" / "latest.pdparams")


def test_a_refused_run_leaves_no_output_dir(folders, tmp_path):
    """Found by the hostile probe: a refused weights file or Eval loader left an output folder with a lock and log."""
    bad = tmp_path / "bad.pdparams"
    bad.write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00]\x94.")  # a pickled list, not weights
    refused = tiny_config(tmp_path, *folders, Global={"output_dir": str(tmp_path / "a"), "pretrained_model": str(bad)})
    with pytest.raises(InputError):
        Engine(validate(refused))
    no_eval_batch = tiny_config(tmp_path, *folders, Global={"output_dir": str(tmp_path / "b")})
    no_eval_batch["DataLoader"]["Eval"]["sampler"].update({"batch_size": 64, "drop_last": True})
    with pytest.raises(InputError):
        Engine(validate(no_eval_batch)).train()
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_an_output_dir_that_cannot_be_made_is_one_line(folders, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    config = tiny_config(tmp_path, *folders, Global={"output_dir": str(tmp_path / "file" / "out")})
    with pytest.raises(OutputError) as err:
        Engine(validate(config))
    assert str(err.value) == f"Global.output_dir '{tmp_path / 'file' / 'out'}' cannot be created: Not a directory"


@pytest.mark.slow
def test_a_live_run_owns_its_output_dir_and_a_killed_one_does_not(folders, tmp_path):
    out_dir = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time\n"
        "from paddle_resnet.engine.run_dir import lock_output_dir\n"
        f"lock_output_dir({str(out_dir)!r}); print('locked', flush=True); time.sleep(300)")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        path = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders, Global={"epochs": 1}))
        refused = run_tool("train.py", "-c", path)
        assert refused.returncode == 1
        assert re.fullmatch(rf"train\.py: error: Global\.output_dir '{re.escape(str(out_dir))}' is in use by a live "
                            rf"training run \(pid {holder.pid} on \S+ since [\d-]+ [\d:]+\); choose another "
                            rf"Global\.output_dir or stop that run first", refused.stderr.strip()), refused.stderr
        assert not (out_dir / "train.log").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    resumed = run_tool("train.py", "-c", path)  # the kernel released the dead run's lock
    assert resumed.returncode == 0, resumed.stderr
    assert (out_dir / "best.pdparams").is_file()


@pytest.mark.slow
def test_start_cleans_what_killed_runs_left_and_finishes_a_committed_checkpoint(folders, tmp_path):
    latest = train_once(tmp_path, folders, Global={"epochs": 2})
    run = tmp_path / "run"
    # A run killed after committing epoch 3's unit but before moving its files into place:
    commit = run / ".latest.commit"
    commit.mkdir()
    state = paddle.load(latest + ".pdstates")
    state["epoch"] = 2
    paddle.save(state, str(commit / "latest.pdstates"))
    (run / ".best.pdparams.tmp-99-deadbeef").write_bytes(b"\0" * 1000)
    (run / ".epoch_3.staging-99-deadbeef").mkdir()
    config = tiny_config(tmp_path, *folders, Global={"output_dir": str(run), "epochs": 4, "checkpoints": latest,
                                                     "eval_during_train": False})
    engine = Engine(validate(config))
    names = sorted(os.listdir(run))
    assert not [n for n in names if "tmp" in n or "staging" in n or "commit" in n], names
    assert "removed 2 unfinished file(s) of a killed run" in (run / "train.log").read_text()
    engine.train()
    assert "resumed from" in (run / "train.log").read_text() and "next epoch 4" in (run / "train.log").read_text()


@pytest.mark.slow
def test_checkpoint_files_follow_the_umask(folders, tmp_path):
    old = os.umask(0o022)
    try:
        latest = train_once(tmp_path, folders, Global={"epochs": 1})
    finally:
        os.umask(old)
    for suffix in (".pdparams", ".pdstates"):
        assert os.stat(latest + suffix).st_mode & 0o777 == 0o644


@pytest.mark.slow
def test_ema_weights_are_restored_when_eval_fails(folders, tmp_path, monkeypatch):
    config = validate(tiny_config(tmp_path, *folders, Global={"epochs": 1}, EMA={"use_ema": True, "decay": 0.5}))
    engine = Engine(config)
    trainer = engine.trainer()
    trainer.train_epoch(0)
    live = {k: v.numpy().copy() for k, v in trainer.model.state_dict().items()}
    monkeypatch.setattr(trainer.evaluator, "evaluate", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("eval failed")))
    with pytest.raises(RuntimeError, match="eval failed"):
        trainer.evaluate_and_keep_best(0)
    after = trainer.model.state_dict()
    assert all(np.array_equal(live[k], after[k].numpy()) for k in live)


def test_launch_is_paddles_launcher_with_its_log_quiet_unless_verbose(monkeypatch):
    from paddle_resnet.cli.launch import launch_arguments
    monkeypatch.delenv("PADDLE_RESNET_VERBOSE", raising=False)
    assert launch_arguments(["--nproc_per_node", "2", "tools/train.py", "-c", "c.yaml", "-v"]) == [
        "--log_level", "WARNING", "--nproc_per_node", "2", "tools/train.py", "-c", "c.yaml", "-v"]
    assert launch_arguments(["--log_level", "DEBUG", "tools/train.py"]) == ["--log_level", "DEBUG", "tools/train.py"]
    monkeypatch.setenv("PADDLE_RESNET_VERBOSE", "1")  # what -v before the script sets
    assert launch_arguments(["-v", "--nproc_per_node", "2", "tools/train.py"]) == [
        "--nproc_per_node", "2", "tools/train.py"]
