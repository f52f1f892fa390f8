"""No weights or checkpoint file may run code or allocate more memory than it holds.

Every hostile file is crafted here in tmp_path; the genuine ones are written by paddle.save (protocol 4,
and protocol 2 as Paddle 2.x did) or reproduce the reduce forms older Paddle wrote.
"""
import builtins
import collections
import io
import os
import pickle
import random
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import paddle
import pytest

from paddle_resnet import build_model
from paddle_resnet.errors import InputError, UnsafeFileError
from paddle_resnet.weights import load_pickle, load_pretrained, read_state_dict
from test_weights import NUM_CLASSES, assert_close, load_case, logits, reference_input, seeded_array

ROOT = Path(__file__).resolve().parents[1]
MALICIOUS_SUFFIXES = (".pdparams", ".pdstates", ".pth", ".bin", ".safetensors")


# ---- hostile pickles ----

class RunsCode:
    """Unpickling it would create ``marker`` through ``how``."""

    def __init__(self, how, marker):
        self.how, self.marker = how, str(marker)

    def __reduce__(self):
        if self.how == "os.system":
            return os.system, (f"touch {self.marker}",)
        if self.how == "subprocess":
            return subprocess.call, (["touch", self.marker],)
        if self.how == "exec":
            return builtins.exec, (f"open({self.marker!r}, 'w').close()",)
        return builtins.open, (self.marker, "w")


PAYLOADS = {"os.system": "posix.system", "subprocess": "subprocess.call", "exec": "builtins.exec",
            "open": "io.open"}


def write_pickle(obj, path, protocol=4):
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def malicious_file(tmp_path, suffix, how, stealth=False):
    """A pickle whose unpickling creates ``tmp_path/marker``; a stealthy one also holds real weights."""
    state = {k: v.numpy() for k, v in paddle.vision.models.resnet18().state_dict().items()} if stealth else {}
    state["extra"] = RunsCode(how, tmp_path / "marker")
    return write_pickle(state, tmp_path / f"weights{suffix}")


def assert_refused(message, path, global_name):
    assert f"refusing to load global '{global_name}'" in message
    assert str(path) in message and "\n" not in message


LOADERS = {
    "load_pickle": load_pickle,
    "read_state_dict": read_state_dict,
    "load_pretrained": lambda path: load_pretrained(build_model("resnet18"), path),
}


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize("how", sorted(PAYLOADS))
@pytest.mark.parametrize("suffix", MALICIOUS_SUFFIXES)
@pytest.mark.slow
def test_a_pickle_that_runs_code_is_refused(tmp_path, suffix, how, loader):
    path = malicious_file(tmp_path, suffix, how)
    with pytest.raises(UnsafeFileError) as info:
        LOADERS[loader](path)
    assert_refused(str(info.value), path, PAYLOADS[how])
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.slow
def test_real_weights_with_one_value_that_runs_code_are_refused(tmp_path, loader):
    path = malicious_file(tmp_path, ".pdparams", "os.system", stealth=True)
    with pytest.raises(UnsafeFileError) as info:
        LOADERS[loader](path)
    assert_refused(str(info.value), path, "posix.system")
    assert not (tmp_path / "marker").exists()


@pytest.mark.slow
def test_protocol_2_names_are_refused_too(tmp_path):
    path = write_pickle({"x": RunsCode("exec", tmp_path / "marker")}, tmp_path / "w.pdparams", protocol=2)
    with pytest.raises(UnsafeFileError, match=r"refusing to load global '__builtin__\.exec'"):
        load_pickle(path)
    assert not (tmp_path / "marker").exists()


def run_convert(src, dst, umask=None):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "convert_weights.py"), "--arch", "resnet18",
                           "--src", str(src), "--dst", str(dst)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)},
                          preexec_fn=None if umask is None else lambda: os.umask(umask))


@pytest.mark.parametrize("suffix, how, stealth", [
    (".pdparams", "os.system", False), (".pdstates", "subprocess", False), (".pth", "exec", False),
    (".bin", "open", False), (".safetensors", "os.system", False), (".pdparams", "subprocess", True)])
@pytest.mark.slow
def test_convert_weights_refuses_in_one_line(tmp_path, suffix, how, stealth):
    path = malicious_file(tmp_path, suffix, how, stealth)
    done = run_convert(path, tmp_path / "out.pdparams")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convert_weights.py: error: ")
    assert_refused(lines[0], path, PAYLOADS[how])
    assert not (tmp_path / "marker").exists() and not (tmp_path / "out.pdparams").exists()


@pytest.mark.slow
def test_convert_weights_output_mode_follows_the_umask(tmp_path):
    src = tmp_path / "src.pdparams"
    paddle.save(build_model("resnet18").state_dict(), str(src))
    done = run_convert(src, tmp_path / "out.pdparams", umask=0o027)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.pdparams").stat().st_mode & 0o777 == 0o640


def test_old_paddle_reduce_forms_cannot_evaluate_anything_else(tmp_path):
    class Evaluates:
        def __reduce__(self):
            return eval, (f"open({str(tmp_path / 'marker')!r}, 'w')", {})

    with pytest.raises(UnsafeFileError, match=r"refusing to evaluate \"open\("):
        load_pickle(write_pickle({"x": Evaluates()}, tmp_path / "w.pdparams"))
    assert not (tmp_path / "marker").exists()


# ---- hostile sizes ----

def _unicode(text):
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value):
    if -(1 << 31) <= value < 1 << 31:
        return b"J" + struct.pack("<i", value)  # BININT
    data = value.to_bytes(9, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data  # LONG1


def _ints(values):
    return b"(" + b"".join(map(_int, values)) + b"t"


def torch_zip(path, numel, entry_bytes, size, stride, offset=0):
    """A torch.save zip by hand: {"weight": _rebuild_tensor_v2(FloatStorage(numel), offset, size, stride)}."""
    storage = b"(" + _unicode("storage") + b"ctorch\nFloatStorage\n" + _unicode("0") + _unicode("cpu") \
        + _int(numel) + b"tQ"  # BINPERSID: the tuple is the persistent id
    tensor = b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage + _int(offset) + _ints(size) + _ints(stride) \
        + b"\x89}tR"  # requires_grad=False, backward_hooks={}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}" + _unicode("weight") + tensor + b"s.")
        archive.writestr("archive/data/0", np.arange(entry_bytes // 4, dtype="<f4").tobytes())
    return path


def test_hand_built_torch_zip_reads_like_torch(tmp_path):
    _, state = read_state_dict(torch_zip(tmp_path / "w.pth", numel=6, entry_bytes=24, size=(2, 2), stride=(1, 2),
                                         offset=1))
    np.testing.assert_array_equal(state["weight"], [[1, 3], [2, 4]])


def test_zero_stride_torch_zip_is_refused_without_allocating(tmp_path):
    path = torch_zip(tmp_path / "w.pth", numel=1, entry_bytes=4, size=(60000, 60000), stride=(0, 0))
    assert path.stat().st_size < 1024  # asks for 60000 * 60000 * 4 bytes = 13.4 GiB
    start = time.monotonic()
    with pytest.raises(UnsafeFileError) as info:
        read_state_dict(path)
    assert time.monotonic() - start < 5
    assert str(info.value) == (f"{path}: a tensor of sizes [60000, 60000] (3600000000 elements) views "
                                f"a storage of 1 elements")


@pytest.mark.parametrize("size, stride, offset", [((3,), (-1,), 2), ((2,), (1,), -1), ((-2, 1), (1, 1), 0)])
def test_negative_sizes_strides_and_offsets_are_refused(tmp_path, size, stride, offset):
    path = torch_zip(tmp_path / "w.pth", numel=4, entry_bytes=16, size=size, stride=stride, offset=offset)
    with pytest.raises(UnsafeFileError, match="is not made of non-negative integers"):
        read_state_dict(path)


@pytest.mark.parametrize("numel", [4, 1 << 40])
def test_storage_entry_of_another_size_than_declared_is_refused(tmp_path, numel):
    path = torch_zip(tmp_path / "w.pth", numel=numel, entry_bytes=8, size=(2,), stride=(1,))
    with pytest.raises(UnsafeFileError, match=rf"entry archive/data/0 holds 8 bytes, not the {numel * 4} its"):
        read_state_dict(path)


def npz_with_header(path, header, data):
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, header)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("weight.npy", member.getvalue() + data)
    return path


def test_npz_whose_header_declares_a_huge_shape_is_refused(tmp_path):
    header = {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)}  # 80 GB
    path = npz_with_header(tmp_path / "w.npz", header, np.zeros(2).tobytes())
    with pytest.raises(UnsafeFileError, match=r"weight\.npy declares shape \[100000, 100000\] float64 "
                                              r"\(80000000000 bytes\) but holds 16 bytes"):
        read_state_dict(path)


def test_npz_with_an_object_array_is_refused_before_unpickling(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, weight=np.array([RunsCode("exec", tmp_path / "marker")], dtype=object))
    with pytest.raises(UnsafeFileError, match=r"weight\.npy has dtype object"):
        read_state_dict(path)
    assert not (tmp_path / "marker").exists()


def test_npz_still_reads_what_numpy_writes(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.asfortranarray(np.ones((3, 2))),
              "c": np.array(True), "d": np.zeros((0, 4), np.int64)}
    np.savez_compressed(tmp_path / "w.npz", **arrays)
    _, state = read_state_dict(tmp_path / "w.npz")
    assert sorted(state) == sorted(arrays)
    for name, array in arrays.items():
        assert state[name].dtype == array.dtype
        np.testing.assert_array_equal(state[name], array)


def test_length_field_larger_than_the_file_is_refused_before_allocating(tmp_path):
    path = tmp_path / "w.pdparams"
    path.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 10 << 30) + b"tiny.")  # BINBYTES8 of 10 GiB
    with pytest.raises(InputError, match=rf"^{path}: not a readable Paddle pickle"):
        load_pickle(path)


def test_memo_index_far_past_the_entries_stored_is_refused(tmp_path):
    path = tmp_path / "w.pdparams"
    path.write_bytes(b"\x80\x04}r" + struct.pack("<I", 1 << 31) + b".")  # LONG_BINPUT 2**31
    with pytest.raises(InputError, match="memo index 2147483648 at byte 3 is beyond the 2 opcodes"):
        load_pickle(path)


class SharesBytes:
    """An array whose bytes object is shared with others: the pickle stores the bytes once."""

    def __init__(self, data):
        self.data = data

    def __reduce__(self):
        return (np._core.multiarray._reconstruct, (np.ndarray, (0,), b"b"),
                (1, (len(self.data),), np.dtype("u1"), False, self.data))


def test_arrays_totalling_more_than_the_file_are_refused(tmp_path):
    shared = bytes(1 << 20)
    path = write_pickle([SharesBytes(shared) for _ in range(64)], tmp_path / "w.pdparams")
    assert path.stat().st_size < 2 << 20  # 64 MiB of arrays from a file of 1 MiB
    with pytest.raises(UnsafeFileError, match="more than the file's"):
        load_pickle(path)


def test_array_whose_bytes_disagree_with_its_shape_is_refused(tmp_path):
    path = write_pickle({"w": SharesBytes(bytes(8))}, tmp_path / "w.pdparams")
    data = path.read_bytes().replace(b"K\x08", b"J\x00\x00\x00\x40")  # shape (8,) -> (2**30,)
    path.write_bytes(data)
    with pytest.raises(UnsafeFileError, match=r"shape \(1073741824,\) uint8 needs 1073741824 bytes, the file "
                                              r"holds 8"):
        load_pickle(path)


def test_file_above_the_size_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "w.pdparams"
    paddle.save({"w": paddle.zeros([64])}, str(path))
    with pytest.raises(InputError, match="is more than the 100-byte limit for a weights file "
                                         r"\(raise it with PADDLE_RESNET_MAX_WEIGHTS_BYTES\)"):
        load_pickle(path, max_bytes=100)


@pytest.mark.parametrize("content", [b"\x80\x04\x95garbage", b"hello, not weights", b""])
def test_damaged_or_unknown_file_is_one_input_error_naming_it(tmp_path, content):
    path = tmp_path / "w.pdparams"
    path.write_bytes(content)
    with pytest.raises(InputError, match=rf"^{path}: not a"):
        read_state_dict(path)


def test_truncated_weights_are_an_input_error(tmp_path):
    path = tmp_path / "w.pdparams"
    paddle.save(paddle.vision.models.resnet18().state_dict(), str(path))
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(InputError, match=rf"^{path}: not a readable Paddle pickle"):
        load_pickle(path)


# ---- genuine files still load ----

def as_numpy(value):
    if isinstance(value, paddle.Tensor):
        return value.numpy()
    if isinstance(value, dict):
        return type(value)((k, as_numpy(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(as_numpy(v) for v in value)
    return value


def assert_same(loaded, expected, where="root"):
    if isinstance(expected, np.ndarray):
        assert isinstance(loaded, np.ndarray) and loaded.dtype == expected.dtype, where
        np.testing.assert_array_equal(loaded, expected, err_msg=where)
        assert loaded.flags.writeable, where
    elif isinstance(expected, dict):
        assert type(loaded) is type(expected) and list(loaded) == list(expected), where
        for key in expected:
            assert_same(loaded[key], expected[key], f"{where}/{key}")
    elif isinstance(expected, (list, tuple)):
        assert type(loaded) is type(expected) and len(loaded) == len(expected), where
        for i, (a, b) in enumerate(zip(loaded, expected)):
            assert_same(a, b, f"{where}[{i}]")
    else:
        assert type(loaded) is type(expected) and loaded == expected, where


@pytest.mark.parametrize("protocol", [4, 2])
@pytest.mark.slow
def test_paddle_state_dict_loads_equal(tmp_path, protocol):
    state = paddle.vision.models.resnet18().state_dict()
    path = tmp_path / "w.pdparams"
    paddle.save(state, str(path), protocol=protocol)
    loaded = load_pickle(path)
    assert "StructuredToParameterName@@" not in loaded
    assert_same(loaded, as_numpy(dict(state)))


@pytest.mark.parametrize("protocol", [4, 2])
def test_ordered_dict_and_numpy_scalars_load_equal(tmp_path, protocol):
    values = collections.OrderedDict([
        ("f32", np.float32(1.5)), ("i64", np.int64(-7)), ("u8", np.uint8(200)), ("bool", np.bool_(True)),
        ("c64", np.complex64(1 + 2j)), ("f16", np.float16(0.25)), ("big_endian", np.arange(3, dtype=">i4")),
        ("fortran", np.asfortranarray(np.arange(6.0).reshape(2, 3))), ("empty", np.zeros((0, 3), np.float32)),
        ("plain", [1, 2.5, "text", None, True, (3, 4), {"nested": [-(1 << 70), 1e-300]}])])
    path = tmp_path / "w.pdparams"
    paddle.save(values, str(path), protocol=protocol)
    loaded = load_pickle(path)
    assert_same(loaded, values)
    assert loaded["fortran"].flags.f_contiguous and loaded["big_endian"].dtype == np.dtype(">i4")


def one_step_optimizer_state(optimizer_class, **kwargs):
    model = paddle.vision.models.resnet18(num_classes=4)
    scheduler = paddle.optimizer.lr.StepDecay(0.1, step_size=1)
    optimizer = optimizer_class(learning_rate=scheduler, parameters=model.parameters(), **kwargs)
    model(paddle.randn([2, 3, 32, 32])).mean().backward()
    optimizer.step()
    scheduler.step()
    return optimizer.state_dict()


@pytest.mark.parametrize("optimizer_class, kwargs", [
    (paddle.optimizer.Momentum, {"momentum": 0.9}),
    (paddle.optimizer.AdamW, {"weight_decay": 0.01, "multi_precision": True})])
@pytest.mark.slow
def test_optimizer_state_loads_equal(tmp_path, optimizer_class, kwargs):
    state = one_step_optimizer_state(optimizer_class, **kwargs)
    assert "LR_Scheduler" in state
    path = tmp_path / "w.pdopt"
    paddle.save(state, str(path))
    assert_same(load_pickle(path), as_numpy(state))


def test_rng_states_load_equal_and_restore(tmp_path):
    states = {"numpy": np.random.get_state(), "python": random.getstate(),
              "paddle": paddle.get_rng_state()[0].__getstate__()}
    path = tmp_path / "rng.pdstates"
    paddle.save(states, str(path))
    loaded = load_pickle(path)
    assert_same(loaded, states)
    expected = np.random.rand(3)
    np.random.set_state(loaded["numpy"])
    np.testing.assert_array_equal(np.random.rand(3), expected)


@pytest.mark.parametrize("name", ["paddleclas_resnet18_vd", "paddleclas_resnet34", "paddleclas_resnet50"])
@pytest.mark.slow
def test_paddleclas_weights_saved_by_paddle_2_protocol_load(tmp_path, name):
    """PaddleClas's released .pdparams were written by Paddle 2.x: protocol 2, tensors as numpy arrays."""
    case = load_case(name)
    state = {k: paddle.to_tensor(seeded_array(k, tuple(shape))) for k, shape in case["tensors"]}
    path = tmp_path / f"{name}.pdparams"
    paddle.save(state, str(path), protocol=2)
    assert path.read_bytes()[:2] == b"\x80\x02"
    model = build_model(case["arch"], num_classes=NUM_CLASSES, **case["model_kwargs"])
    report = load_pretrained(model, path)
    assert (report.source, report.tensors_loaded) == ("paddleclas", len(case["tensors"]))
    assert_close(logits(model, reference_input()), case["logits"])


class OldTensor:
    """What Paddle 2.x's reduce_varbase wrote for a Tensor: (tuple, ((name, array),))."""

    def __init__(self, name, array):
        self.name, self.array = name, array

    def __reduce__(self):
        return tuple, ((self.name, self.array),)


class OldDenseTensor:
    """What reduce_DenseTensor writes for a DenseTensor: (eval, ('data', {'data': array}))."""

    def __init__(self, array):
        self.array = array

    def __reduce__(self):
        return eval, ("data", {"data": self.array})


@pytest.mark.parametrize("protocol", [2, 4])
def test_old_tensor_reduce_forms_give_arrays_without_calling_eval(tmp_path, monkeypatch, protocol):
    weight, mean = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, np.float64)
    path = write_pickle({"conv.weight": OldTensor("conv2d_0.w_0", weight), "bn._mean": OldDenseTensor(mean),
                         "nested": [OldTensor("x", weight)], "pair": ("kept", weight)},
                        tmp_path / "old.pdparams", protocol)
    evaluated = []
    monkeypatch.setattr(builtins, "eval", lambda *args: evaluated.append(args))
    loaded = load_pickle(path)
    assert evaluated == []
    assert_same(loaded, {"conv.weight": weight, "bn._mean": mean, "nested": [weight], "pair": ("kept", weight)})


def test_tensors_split_by_protocol_2_are_joined(tmp_path):
    """Paddle splits a tensor over 1 GiB into '<key>@@.<i>' slices for protocol 2/3 (_unpack_saved_dict)."""
    whole = np.arange(12, dtype=np.float32).reshape(3, 4)
    saved = {"a": np.ones(2, np.float32), "big@@.0": whole.ravel()[:5], "big@@.1": whole.ravel()[5:],
             "UnpackBigParamInfor@@": {"big": {"OriginShape": (3, 4), "slices": ["big@@.0", "big@@.1"]}},
             "StructuredToParameterName@@": {"a": "a_0", "big": "big_0"}}
    loaded = load_pickle(write_pickle(saved, tmp_path / "w.pdparams", protocol=2))
    assert_same(loaded, {"a": saved["a"], "big": whole})


def test_split_tensor_slices_cannot_be_reused(tmp_path):
    part = np.arange(4, dtype=np.float32)
    saved = {"p": part, "q": part,  # the same array under two names: one stored copy, twice the output
             "UnpackBigParamInfor@@": {"big": {"OriginShape": [8], "slices": ["p", "q"]}}}
    with pytest.raises(InputError, match="slice 'q' of 'big' is missing, reused"):
        load_pickle(write_pickle(saved, tmp_path / "w.pdparams"))


def test_size_limit_comes_from_the_environment(monkeypatch):
    from paddle_resnet.weights import safe_pickle
    monkeypatch.setenv("PADDLE_RESNET_MAX_WEIGHTS_BYTES", "1234")
    assert safe_pickle.max_bytes_from_env() == 1234
    monkeypatch.setenv("PADDLE_RESNET_MAX_WEIGHTS_BYTES", "8G")
    with pytest.raises(InputError, match="PADDLE_RESNET_MAX_WEIGHTS_BYTES='8G' must be a whole number of bytes"):
        safe_pickle.max_bytes_from_env()
    monkeypatch.delenv("PADDLE_RESNET_MAX_WEIGHTS_BYTES")
    assert safe_pickle.max_bytes_from_env() == 8 << 30


@pytest.mark.slow
def test_a_deflated_bomb_is_refused_before_it_is_unpacked(tmp_path):
    """1 GiB of zeros deflates to about 1 MB; as an .npz member or a torch storage it must not be unpacked."""
    zeros = np.zeros(1 << 28, "<f4")
    member = io.BytesIO()
    np.lib.format.write_array(member, zeros)
    npz = tmp_path / "bomb.npz"
    with zipfile.ZipFile(npz, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("weight.npy", member.getvalue())
    pth = tmp_path / "bomb.pth"
    with zipfile.ZipFile(torch_zip(tmp_path / "small.pth", numel=1 << 28, entry_bytes=0, size=(1 << 28,),
                                   stride=(1,))) as small, zipfile.ZipFile(pth, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", small.read("archive/data.pkl"))
        archive.writestr("archive/data/0", zeros.tobytes())
    for path in (npz, pth):
        assert path.stat().st_size < 4 << 20
        with pytest.raises(UnsafeFileError, match=rf"^{path}: its members unpack to \d+ bytes, more than 50 times "
                                                  rf"the file size \(\d+ bytes\)$"):
            read_state_dict(path)


def test_many_views_of_one_storage_cannot_multiply_memory(tmp_path):
    """300 tensors each viewing one whole 4 MB storage would copy 1.2 GB out of a 4 MB file."""
    storage = b"(" + _unicode("storage") + b"ctorch\nFloatStorage\n" + _unicode("0") + _unicode("cpu") \
        + _int(1 << 20) + b"tQ"
    tensor = (b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage + _int(0) + _ints((1 << 20,)) + _ints((1,))
              + b"\x89}tR")
    body = b"".join(_unicode(f"w{i}") + tensor for i in range(300))
    path = tmp_path / "amplify.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}(" + body + b"u.")
        archive.writestr("archive/data/0", np.zeros(1 << 20, "<f4").tobytes())
    with pytest.raises(UnsafeFileError, match=r"its tensors view their storages over and over \(\d+ bytes of "
                                              r"tensors from 4194304 bytes of storage\)"):
        read_state_dict(path)


@pytest.mark.parametrize("header,message", [
    (b'{"a": {"dtype": "F32", "shape": [1000000, 1000000], "data_offsets": [0, 16]}}', "not a readable .safetensors"),
    (b'{abcd', "not a readable .safetensors"),
    (b'{"a": {"dtype": "BF16", "shape": [8], "data_offsets": [0, 16]}}', "re-save its tensors as float32"),
])
def test_a_broken_safetensors_file_is_one_line(tmp_path, header, message):
    header = header + b" " * (-len(header) % 8)
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    with pytest.raises(InputError) as info:
        read_state_dict(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
    assert "\n" not in str(info.value)
