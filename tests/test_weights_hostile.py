"""Hostile weights files (issue 20): no cap-sized buffer per load, non-finite weights refused, and one-line
errors for keys that are not names and safetensors dtypes numpy has no type for."""
import json
import os
import pickle
import resource
import struct
import subprocess
import sys
import threading

import numpy as np
import paddle
import pytest

from conftest import ROOT
from engine_fixtures import make_image_folder, tiny_config, write_config
from paddle_resnet import build_model
from paddle_resnet.errors import InputError
from paddle_resnet.weights import load_pickle, load_pretrained, read_state_dict

GiB = 1 << 30


def resnet18_state(num_classes=3):
    return {k: v.numpy() for k, v in build_model("resnet18", num_classes=num_classes).state_dict().items()}


def address_space_in_use():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))


# ---- item 1: a load reads what the file holds, never a buffer of the size cap ----

def test_loading_weights_needs_no_more_address_space_than_the_file(tmp_path):
    """The old reader asked for an 8 GiB buffer (the size cap) on every load: under `ulimit -v` it failed."""
    path = tmp_path / "w.pdparams"
    paddle.save(build_model("resnet18", num_classes=3).state_dict(), str(path))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (address_space_in_use() + GiB, hard))  # 1 GiB more than now
    try:
        state = load_pickle(path)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert len(state) == 102 and state["fc.weight"].shape == (512, 3)


def test_a_fifo_named_as_weights_is_refused_without_blocking(tmp_path):
    path = tmp_path / "w.pdparams"
    os.mkfifo(path)
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(_error_of(load_pickle, path)), daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # blocked in open(): give it a writer so that the thread ends
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO blocked")
    assert outcome == [f"weights file {path} is not a regular file (a FIFO)"]


def _error_of(function, *args):
    try:
        function(*args)
    except InputError as error:
        return str(error)
    return None


# ---- item 2: non-finite weights ----

def test_weights_with_nan_or_inf_are_refused_naming_the_first_tensors(tmp_path):
    state = resnet18_state()
    state["conv1.weight"][0, 0, 0, 0] = np.nan
    state["layer1.0.bn1._variance"][3] = np.inf
    state["layer2.0.conv1.weight"][1, 0, 0, 0] = -np.inf
    state["fc.weight"][:] = np.nan
    path = tmp_path / "x.pdparams"
    paddle.save(state, str(path))
    model = build_model("resnet18", num_classes=3)
    before = model.conv1.weight.numpy().copy()
    with pytest.raises(InputError) as error:
        load_pretrained(model, path)
    assert str(error.value) == (f"weights file {path} holds non-finite values in 4 tensors (conv1.weight, "
                                f"layer1.0.bn1._variance, layer2.0.conv1.weight, ...); refusing to load them")
    np.testing.assert_array_equal(model.conv1.weight.numpy(), before)  # nothing was loaded


def test_non_finite_tensors_are_named_as_the_checkpoint_names_them(tmp_path):
    """A torchvision checkpoint: the message shows its own name (bn1.running_var), not ours (bn1._variance)."""
    state = resnet18_state()
    torch_state = {k.replace("._mean", ".running_mean").replace("._variance", ".running_var"): v
                   for k, v in state.items()}
    torch_state["fc.weight"] = torch_state["fc.weight"].T.copy()
    torch_state["bn1.running_var"][0] = np.inf
    path = tmp_path / "tv.npz"
    np.savez(path, **torch_state)
    with pytest.raises(InputError, match=r"holds non-finite values in 1 tensors \(bn1.running_var\); refusing"):
        load_pretrained(build_model("resnet18", num_classes=3), path)


def test_float64_values_that_overflow_float32_are_refused(tmp_path):
    state = {k: v.astype(np.float64) for k, v in resnet18_state().items()}
    state["fc.bias"][0] = 1e300  # finite in float64, inf once loaded into the float32 model
    path = tmp_path / "w.npz"
    np.savez(path, **state)
    with pytest.raises(InputError, match=r"non-finite values in 1 tensors \(fc.bias\)"):
        load_pretrained(build_model("resnet18", num_classes=3), path)


@pytest.mark.slow
def test_convert_weights_refuses_nan_weights_in_one_line(tmp_path):
    from conftest import run_tool
    state = resnet18_state()
    state["fc.bias"][1] = np.nan
    src, dst = tmp_path / "nan.pdparams", tmp_path / "out.pdparams"
    paddle.save(state, str(src))
    result = run_tool("convert_weights.py", "--arch", "resnet18", "--src", str(src), "--dst", str(dst))
    assert result.returncode == 1 and not dst.exists()
    assert result.stderr.strip().splitlines()[-1] == (
        f"convert_weights.py: error: weights file {src} holds non-finite values in 1 tensors (fc.bias); "
        f"refusing to load them")
    assert "Traceback" not in result.stderr


# ---- item 3: one line for keys that are not names, and for safetensors dtypes numpy lacks ----

@pytest.mark.parametrize("bad_key, shown", [(3, "3"), ((1, 2), "(1, 2)"), ("x" * 2000, repr("x" * 77)[:77] + "...")])
def test_a_state_dict_whose_keys_are_not_names_is_one_line(tmp_path, bad_key, shown):
    path = tmp_path / "w.pdparams"
    paddle.save({bad_key: np.zeros(3, np.float32), "fc.bias": np.zeros(3, np.float32)}, str(path))
    with pytest.raises(InputError) as error:
        load_pretrained(build_model("resnet18", num_classes=3), path)
    assert str(error.value) == (f"{path}: key {shown} is not a parameter name (a string of at most 1000 "
                                f"characters; 1 such keys)")


def test_a_checkpoint_that_wraps_itself_is_refused_not_unwrapped_forever(tmp_path):
    """A pickle can make a dict its own "state_dict"; unwrapping it used to loop forever."""
    wrapper = {}
    wrapper["state_dict"] = wrapper
    path = tmp_path / "w.pdparams"
    path.write_bytes(pickle.dumps(wrapper, protocol=4))
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(_error_of(read_state_dict, path)), daemon=True)
    reader.start()
    reader.join(30)
    assert not reader.is_alive(), "unwrapping a self-wrapping checkpoint does not end"
    assert outcome == [f"{path}: entries that are not tensors: state_dict"]


def safetensors_file(path, dtype, nbytes=4):
    header = json.dumps({"w": {"dtype": dtype, "shape": [nbytes], "data_offsets": [0, nbytes]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * nbytes)
    return path


@pytest.mark.parametrize("dtype", ["F8_E4M3", "F8_E5M2", "C64", "BF16"])
def test_a_safetensors_dtype_numpy_cannot_hold_is_one_line_naming_it(tmp_path, dtype):
    path = safetensors_file(tmp_path / "w.safetensors", dtype, nbytes=4)
    with pytest.raises(InputError) as error:
        read_state_dict(path)
    assert str(error.value) == (
        f"{path}: tensor dtype '{dtype}' is not supported (supported: F64, F32, F16, I64, I32, I16, I8, U64, U32, "
        f"U16, U8, BOOL); re-save its tensors as float32 (e.g. torch: {{k: v.float() for k, v in state.items()}})")


def test_safetensors_of_a_supported_dtype_still_load(tmp_path):
    path = safetensors_file(tmp_path / "w.safetensors", "I8", nbytes=4)
    _, state = read_state_dict(path)
    assert state["w"].dtype == np.int8 and state["w"].shape == (4,)


# ---- item 4: eval under a 6 GiB address-space cap ----

EVAL_ADDRESS_SPACE = 6 * GiB  # eval.py of this checkpoint needs ~1 GiB (refused at 0.94); the old loader 8 GiB+


@pytest.mark.slow
def test_eval_of_a_real_checkpoint_runs_under_a_6_gib_address_space_cap(tmp_path):
    root = make_image_folder(str(tmp_path / "data"))
    weights = tmp_path / "w.pdparams"
    paddle.save(build_model("resnet18", num_classes=3).state_dict(), str(weights))
    config = write_config(tmp_path / "c.yaml", tiny_config(tmp_path, root, root,
                                                           Global={"pretrained_model": str(weights)}))

    def cap_address_space():
        resource.setrlimit(resource.RLIMIT_AS, (EVAL_ADDRESS_SPACE, EVAL_ADDRESS_SPACE))

    result = subprocess.run([sys.executable, "tools/eval.py", "-c", config], cwd=ROOT, capture_output=True,
                            text=True, timeout=600, preexec_fn=cap_address_space,
                            env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"loaded pretrained weights: loaded 102 tensors from {weights}" in result.stdout + result.stderr


def test_a_fifo_or_device_named_as_weights_or_state_is_refused_by_kind_without_blocking(tmp_path):
    import signal
    from paddle_resnet.engine.checkpoint import load_training_state
    from paddle_resnet.weights import read_state_dict
    os.mkfifo(tmp_path / "fifo.pdparams")
    os.mkfifo(tmp_path / "fifo.pdstates")
    os.symlink("/dev/zero", tmp_path / "zero.pdparams")

    def blocked(signum, frame):
        raise AssertionError("blocked opening a FIFO")
    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(20)
    try:
        for name, kind in [("fifo.pdparams", "a FIFO"), ("fifo", "a FIFO"), ("zero.pdparams", "a device")]:
            with pytest.raises(InputError) as error:
                read_state_dict(str(tmp_path / name))
            shown = name if name.endswith(".pdparams") else name + ".pdparams"
            assert str(error.value) == f"weights file {tmp_path / shown} is not a regular file ({kind})"
        with pytest.raises(InputError) as error:
            load_training_state(str(tmp_path / "fifo"))
        assert str(error.value).endswith(f"{tmp_path / 'fifo.pdstates'} is not a regular file (a FIFO)")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
