"""Config validation: every bad value is one line naming the key, the value and the allowed ones, before
anything is built; tools print it without a traceback and exit 1, while a real bug keeps its traceback."""
import copy
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, run_tool
from engine_fixtures import make_image_folder, tiny_config, write_config
from paddle_resnet.cli import common
from paddle_resnet.config import load_config, validate
from paddle_resnet.errors import ConfigError, UserError, short_repr


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return make_image_folder(root / "train", per_class=2), make_image_folder(root / "val", per_class=1, seed=1)


def config_with(tmp_path, folders, override):
    """The tiny config with one dotted key set (list items by index)."""
    config = copy.deepcopy(tiny_config(tmp_path, *folders))  # the fixtures' op lists are shared
    keys, value = override
    node = config
    for key in keys.split(".")[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    last = keys.split(".")[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return config


BAD_VALUES = [
    ("DataLoader.Train.sampler.batch_size", 0, "DataLoader.Train.sampler.batch_size must be an integer >= 1, got 0"),
    ("DataLoader.Eval.sampler.batch_size", -8, "DataLoader.Eval.sampler.batch_size must be an integer >= 1, got -8"),
    ("Global.print_batch_step", 0, "Global.print_batch_step must be an integer >= 1, got 0"),
    ("Global.eval_interval", 0, "Global.eval_interval must be an integer >= 1, got 0"),
    ("Global.epochs", 0, "Global.epochs must be an integer >= 1, got 0"),
    ("Global.save_interval", -1, "Global.save_interval must be an integer >= 0, got -1"),
    ("Global.seed", -3, "Global.seed must be an integer from 0 to 4294967295, got -3"),
    ("Global.accum_steps", 0, "Global.accum_steps must be an integer >= 1, got 0"),
    ("Global.num_threads", 0, "Global.num_threads must be an integer from 1 to 64 (or null), got 0"),
    ("Global.clip_grad_norm", -1.0, "Global.clip_grad_norm must be a number > 0 (or null), got -1.0"),
    ("Global.device", "cuda", "Global.device 'cuda' is not supported; choose one of auto, cpu, gpu; did you mean 'cpu'?"),
    ("Global.dist_bn", "average", "Global.dist_bn 'average' is not supported; choose one of reduce, broadcast, none; "
                                  "did you mean 'reduce'?"),
    ("Global.image_shape", [3, 0, 16], "Global.image_shape must be [channels, height, width] with 1, 3 or 4 channels "
                                       "and sides from 1 to 8192, got [3, 0, 16]"),
    ("Arch.class_num", 0, "Arch.class_num must be an integer >= 1, got 0"),
    ("Arch.name", "resnet5O", "Arch: unknown model 'resnet5O'; did you mean 'resnet50'? Available: resnet18, "),
    ("Arch.groups", 32, "Arch: depth 18 uses BasicBlock, which supports only groups=1 and base_width=64"),
    ("Arch.data_format", "NWHC", "Arch: data_format 'NWHC' is not supported; choose one of NCHW, NHWC"),
    ("Arch.in_channels", 1, "Arch.in_channels is 1 but Global.image_shape 3 channels: set both to the same number"),
    ("Arch.freeze", 7, "Arch.freeze must be 'backbone' or a stage number 0..3 (0 = stem only), got 7"),
    ("Arch.lr_mult_list", [0.1, 1.0], "Arch.lr_mult_list must be 5 numbers >= 0 (stem, layer1, layer2, layer3, "
                                      "layer4), got [0.1, 1.0]"),
    ("Optimizer.name", "SGD", "Optimizer.name 'SGD' is not supported; choose one of Momentum, AdamW"),
    ("Optimizer.momentum", 1.5, "Optimizer.momentum must be a number >= 0 and < 1, got 1.5"),
    ("Optimizer.lr.name", "cosine", "Optimizer.lr.name 'cosine' is not supported; choose one of Cosine, "
                                    "CosineWarmup, Step, Piecewise, MultiStepDecay, Linear, Constant; "
                                    "did you mean 'Cosine'?"),
    ("Optimizer.lr.learning_rate", 0.0, "Optimizer.lr.learning_rate must be a number > 0, got 0.0"),
    ("Optimizer.lr.learning_rate", float("nan"), "Optimizer.lr.learning_rate must be a number > 0, got nan"),
    ("Optimizer.lr.warmup_epoch", -1.0, "Optimizer.lr.warmup_epoch must be a number >= 0, got -1.0"),
    ("Optimizer.regularizer.name", "L1", "Optimizer.regularizer.name 'L1' is not supported; choose one of L2"),
    ("DataLoader.Train.dataset.name", "ImageNet", "DataLoader.Train.dataset.name 'ImageNet' is not supported; "
                                                  "choose one of FileList, ImageNetDataset, ImageFolder"),
    ("DataLoader.Train.sampler.name", "RandomSampler", "DataLoader.Train.sampler.name 'RandomSampler' is not "
                                                       "supported; choose one of DistributedBatchSampler, BatchSampler"),
    ("DataLoader.Train.loader.num_workers", -1, "DataLoader.Train.loader.num_workers must be an integer from 0 to 64, got -1"),
    ("DataLoader.Train.dataset.cls_label_path", "x.txt", "DataLoader.Train.dataset.cls_label_path is for FileList"),
    ("Loss.Train", [{"CELoss": {"epsilon": 1.0}}], "Loss.Train.CELoss.epsilon must be a number >= 0 and < 1, got 1.0"),
    ("Loss.Train", [{"LovaszLoss": {}}], "Loss.Train entry 'LovaszLoss' is not supported; choose one of CELoss, "
                                        "SoftTargetCrossEntropy, FocalLoss"),
    ("Loss.Eval", [{"CELoss": {"epsilom": 0.1}}], "unknown key Loss.Eval.CELoss.epsilom; did you mean 'epsilon'?"),
    ("Metric.Eval", [{"TopkAcc": {"topk": [0, 5]}}], "Metric.Eval.TopkAcc.topk must be a list of integers >= 1 "
                                                     "that includes 1 (the best checkpoint is chosen by top-1), "
                                                     "got [0, 5]"),
    ("Metric.Train", "TopkAcc", "Metric.Train must be list, got str 'TopkAcc'"),
    ("Metric.Eval", [], "Metric.Eval must be a list with one entry such as [{TopkAcc: {...}}], got []"),
    ("AMP.level", "O3", "AMP.level 'O3' is not supported; choose one of O1, O2"),
    ("AMP.dtype", "fp16", "AMP.dtype 'fp16' is not supported; choose one of float16, bfloat16"),
    ("EMA.decay", 1.0, "EMA.decay must be a number > 0 and < 1, got 1.0"),
    # found by the hostile probe
    ("DataLoader.Train.loader.num_workers", 100000, "DataLoader.Train.loader.num_workers must be an integer from 0 "
                                                    "to 64, got 100000"),
    ("Global.image_shape", [3, 100000, 100000], "Global.image_shape must be [channels, height, width] with 1, 3 or 4 "
                                                "channels and sides from 1 to 8192, got [3, 100000, 100000]"),
    ("Optimizer.lr.learning_rate", float("inf"), "Optimizer.lr.learning_rate must be a number > 0, got inf"),
    ("Metric.Eval", [{"TopkAcc": {"topk": [10]}}], "Metric.Eval.TopkAcc.topk must be a list of integers >= 1 that "
                                                   "includes 1 (the best checkpoint is chosen by top-1), got [10]"),
    ("Global.output_dir", "", "Global.output_dir must be a path (a non-empty string), got ''"),
    ("Global.output_dir", None, "Global.output_dir must be a path (a non-empty string), got None"),
    ("Global.epochs", True, "Global.epochs must be int, got bool True"),
    ("DataLoader.Train.dataset.transform_ops.1", {"ResizeImage": {"size": 100000}},
     "DataLoader.Train.dataset.transform_ops: ResizeImage: size must be an int from 1 to 8192 or [width, height] "
     "of such ints, got 100000"),
]


@pytest.mark.parametrize("key,value,message", BAD_VALUES, ids=[f"{k}={v!r}" for k, v, _ in BAD_VALUES])
def test_bad_values_are_one_line_naming_key_value_and_choices(folders, tmp_path, key, value, message):
    with pytest.raises(ConfigError) as err:
        validate(config_with(tmp_path, folders, (key, value)))
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(message), text


def test_a_bad_value_stops_before_any_model_is_built(folders, tmp_path, monkeypatch):
    import paddle_resnet.models.resnet as resnet
    monkeypatch.setattr(resnet.ResNet, "__init__", lambda *a, **k: pytest.fail("a model was built"))
    with pytest.raises(ConfigError):
        validate(config_with(tmp_path, folders, ("DataLoader.Train.sampler.batch_size", 0)))


def test_exponent_floats_read_the_same_from_a_file_and_from_overrides(folders, tmp_path):
    path = tmp_path / "c.yaml"
    write_config(path, tiny_config(tmp_path, *folders))
    text = path.read_text().replace("learning_rate: 0.05", "learning_rate: 1e-3")
    assert "learning_rate: 1e-3" in text
    path.write_text(text)
    assert load_config(str(path))["Optimizer"]["lr"]["learning_rate"] == 0.001
    assert load_config(str(path), ["Optimizer.lr.learning_rate=2E-4"])["Optimizer"]["lr"]["learning_rate"] == 2e-4


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("Global:\n  epochs: [1, 2\n  seed: 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(err.value).startswith(f"config file {path} is not valid YAML: ")
    assert "(line 3, column" in str(err.value) and "\n" not in str(err.value)


def test_a_config_that_is_not_a_mapping_is_refused(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- Global\n- Arch\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(err.value) == (f"config file {path} must be a mapping of sections (Global, Arch, ...), "
                              f"got list ['Global', 'Arch']")


def test_override_into_a_value_that_is_not_a_section(folders, tmp_path):
    path = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders))
    with pytest.raises(ConfigError) as err:
        load_config(path, ["Global.epochs.x=1"])
    assert str(err.value) == "override 'Global.epochs.x=1': Global.epochs is int 2, not a section with keys"


@pytest.mark.slow
@pytest.mark.parametrize("tool", ["train.py", "eval.py", "export_model.py"])
def test_tools_print_one_line_and_exit_1(folders, tmp_path, tool):
    path = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders))
    out = subprocess.run([sys.executable, f"tools/{tool}", "-c", path, "-o", "DataLoader.Train.sampler.batch_size=0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert out.stderr.strip() == (f"{tool}: error: DataLoader.Train.sampler.batch_size must be an integer >= 1, "
                                  f"got 0")


def test_a_real_bug_keeps_its_traceback(monkeypatch):
    def buggy(*args, **kwargs):
        raise ValueError("an internal bug")
    monkeypatch.setattr(common, "load_config", buggy)
    with pytest.raises(ValueError, match="an internal bug"):  # not SystemExit: the traceback is printed
        common.run_engine("d", "train", ["-c", "x.yaml"], lambda engine, args: None)
    assert not issubclass(ValueError, UserError)


# ---- hostile YAML (issue 20): refused while the file is read, in one bounded line ----

def alias_bomb(levels=9, width=9):
    """``a: &a [324 bytes]``, ``b: &b [*a x 9]``, ...: 9**8 copies of ``a`` once expanded (a few hundred bytes)."""
    lines = ["a: &a [" + ",".join(["x" * 36] * width) + "]"]
    for level in range(1, levels):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * width) + "]")
    return "\n".join(lines) + "\n"


def bomb_config(folders, tmp_path):
    """The tiny config with the bomb anchored in Arch.freeze (any value passes the schema there) and used as
    Global.image_shape, whose check formatted the value it refused: ``repr`` expanded it."""
    text = open(write_config(tmp_path / "ok.yaml", tiny_config(tmp_path, *folders))).read()
    assert text.startswith("Arch:\n") and "  image_shape:\n  - 3\n  - 16\n  - 16\n" in text
    bomb = "".join(f"    {line}\n" for line in alias_bomb().splitlines())  # lines 3-11
    text = text.replace("Arch:\n", "Arch:\n  freeze:\n" + bomb, 1)
    path = tmp_path / "bomb.yaml"
    path.write_text(text.replace("  image_shape:\n  - 3\n  - 16\n  - 16\n", "  image_shape: *i\n"))
    return path


def test_alias_bomb_is_refused_at_once_in_one_short_line(folders, tmp_path):
    path = bomb_config(folders, tmp_path)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert time.perf_counter() - started < 1
    assert str(err.value) == (f"config file {path}: aliases expand to more than 10,000 nodes (at line 7); "
                              f"write the values out instead")


@pytest.mark.slow
def test_alias_bomb_under_a_2_gib_address_space(folders, tmp_path):
    """Before: minutes and 6-13 GB (``repr`` of the shared lists). Now one line, under a 2 GiB cap."""
    path = bomb_config(folders, tmp_path)
    script = ("import resource, sys\nresource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
              "from paddle_resnet.config import load_config\nfrom paddle_resnet.errors import ConfigError\n"
              "try:\n    load_config(sys.argv[1])\nexcept ConfigError as error:\n    print(error)\n")
    done = subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode, done.stdout) == (0, f"config file {path}: aliases expand to more than 10,000 nodes "
                                                 f"(at line 7); write the values out instead\n"), done.stderr[-2000:]


def test_anchors_and_merge_keys_within_bounds_still_load(folders, tmp_path):
    path = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders))
    with open(path, "a") as f:
        f.write("Metric:\n  Train: &m [{TopkAcc: {topk: [1, 2]}}]\n  Eval: *m\n"
                "Infer:\n  PostProcess: {<<: {topk: 3, delimiter: ' '}, topk: 2}\n")
    config = load_config(path)
    assert config["Metric"]["Eval"] == [{"TopkAcc": {"topk": [1, 2]}}]
    assert (config["Infer"]["PostProcess"]["topk"], config["Infer"]["PostProcess"]["delimiter"]) == (2, " ")


@pytest.mark.parametrize("text, message", [
    ("Global:\n  epochs: 1\nArch:\n  name: resnet18\nGlobal:\n  epochs: 2\n",
     "duplicate key 'Global' at lines 1 and 5"),
    ("Global:\n  epochs: 1\n  seed: 3\n  epochs: 2\n", "duplicate key 'epochs' at lines 2 and 4"),
    ("Global: {epochs: 1, epochs: 2}\n", "duplicate key 'epochs' at lines 1 and 1"),
])
def test_duplicate_keys_are_refused_with_both_lines(tmp_path, text, message):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(err.value) == f"config file {path}: {message}"


def test_a_latin1_config_names_the_byte_and_offset(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"Global:\n  output_dir: caf\xe9\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(err.value) == f"config file {path} is not UTF-8 text (byte 0xe9 at offset 25)"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-32-le"])
def test_utf16_or_utf32_without_a_bom_is_refused_naming_the_nul_byte(folders, tmp_path, encoding):
    text = open(write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders))).read()
    path = tmp_path / f"{encoding}.yaml"
    path.write_bytes(text.encode(encoding))
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(err.value) == f"config file {path} is not UTF-8 text (byte 0x00 at offset 1)"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_utf8_with_bom_and_utf16_with_bom_load(folders, tmp_path, encoding):
    text = open(write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders))).read()
    path = tmp_path / f"{encoding}.yaml"
    path.write_bytes(text.encode(encoding))  # both codecs write the BOM (Windows Notepad, PowerShell's >)
    assert load_config(str(path))["Global"]["image_shape"] == [3, 16, 16]


@pytest.mark.parametrize("text, message", [
    ("Global: " + "[" * 20000 + "]" * 20000 + "\n", "nesting deeper than 64 levels at line 1"),
    ("Global:\n  seed: " + "9" * 5000 + "\n", "an integer of 5,000 characters at line 2; at most 40"),
    ("Global: &g\n  seed: [*g]\n", "alias 'g' at line 2 refers to a collection that contains it"),
], ids=["20000-deep", "5000-digit-int", "alias-cycle"])
def test_deep_nesting_huge_integers_and_cycles_are_one_line(tmp_path, text, message):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(err.value) == f"config file {path}: {message}"


def test_a_fifo_or_huge_file_named_as_config_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(UserError) as err:
        load_config(str(fifo))  # a blocking open would wait here for a writer forever
    assert str(err.value) == f"config file {fifo} is not a regular file (a FIFO)"
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * ((1 << 20) + 1))
    with pytest.raises(UserError) as err:
        load_config(str(big))
    assert str(err.value) == f"config file {big} has 1,048,577 bytes, more than the 1,048,576 allowed"


@pytest.mark.parametrize("override, message", [
    ("Arch.name=[a]", "Arch.name must be a model name such as resnet50, got list ['a']"),
    ("Arch.name={a: 1}", "Arch.name must be a model name such as resnet50, got dict <dict of 1>"),
    ("Arch.name=" + "r" * 100000, "Arch.name must be a model name such as resnet50, got str "
                                  + short_repr("r" * 100000)),
    ("Global.seed=99999999999999999999", "Global.seed must be an integer from 0 to 4294967295, "
                                         "got 99999999999999999999"),
    ("Global.seed=4294967296", "Global.seed must be an integer from 0 to 4294967295, got 4294967296"),
    ("Arch.class_num=1:0", "Arch.class_num must be int, got str '1:0'"),
    ("DataLoader.Train.dataset.transform_ops.-1.NormalizeImage.scale=1",
     "DataLoader.Train.dataset.transform_ops is a list of 4 items; '-1' is not an index of it"),
], ids=["list-name", "dict-name", "100000-char-name", "seed-1e20", "seed-2**32", "base-60", "negative-index"])
def test_values_that_crashed_later_are_refused_at_load(folders, tmp_path, override, message):
    path = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders))
    with pytest.raises(ConfigError) as err:
        load_config(path, [override])
    assert str(err.value) == message


def test_the_largest_seed_numpy_and_paddle_take_is_accepted(folders, tmp_path):
    path = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders))
    assert load_config(path, ["Global.seed=4294967295"])["Global"]["seed"] == 2**32 - 1


def test_a_long_value_is_cut_in_the_message(folders, tmp_path):
    path = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders))
    with pytest.raises(ConfigError) as err:
        load_config(path, ["Global.epochs=" + "x" * 100000])
    assert len(str(err.value)) < 200 and str(err.value).startswith("Global.epochs must be int, got str 'xxx")


@pytest.mark.slow
def test_train_tool_prints_the_duplicate_key_line(folders, tmp_path):
    path = tmp_path / "dup.yaml"
    text = open(write_config(tmp_path / "c.yaml", tiny_config(tmp_path, *folders))).read()
    path.write_text(text + "Global:\n  epochs: 5\n")
    first = text.splitlines().index("Global:") + 1
    done = run_tool("train.py", "-c", str(path))
    assert (done.returncode, done.stderr.strip().splitlines()[-1]) == (
        1, f"train.py: error: config file {path}: duplicate key 'Global' at lines {first} and "
           f"{len(text.splitlines()) + 1}")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("section", ["Eval", "Infer"])
def test_a_random_op_outside_training_is_refused_by_name(folders, tmp_path, section):
    config = copy.deepcopy(tiny_config(tmp_path, *folders))  # its ops lists are shared constants
    if section == "Eval":
        config["DataLoader"]["Eval"]["dataset"]["transform_ops"].insert(1, {"RandomErasing": {"EPSILON": 0.5}})
        where = "DataLoader.Eval.dataset.transform_ops"
    else:
        config["Infer"] = {"infer_imgs": str(tmp_path), "transforms": ["DecodeImage", "RandFlipImage"]}
        where = "Infer.transforms"
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path / "c.yaml", config))
    op = "RandomErasing" if section == "Eval" else "RandFlipImage"
    assert str(err.value) == (f"{where}: {op} is random, for training only; evaluation and prediction see every "
                              f"image the same way (use ResizeImage and CropImage)")
