"""Reads Paddle's pickle files (.pdparams, .pdopt, .pdstates) without running code or over-allocating.

``paddle.load`` is ``pickle.load``: a crafted file runs any command it likes. ``load_pickle`` is the
counterpart of ``torch.load(weights_only=True)``: it resolves only the globals Paddle's writers emit,
each through a stand-in that builds the value itself and never calls what the file names:

* ``numpy._core.multiarray._reconstruct`` / ``numpy.ndarray`` / ``numpy.dtype`` (``numpy.core`` in files
  from numpy 1.x): an array is built from its pickled bytes, which must hold exactly shape x itemsize
  bytes; the shape ``_reconstruct`` asks for is ignored and only bool/int/uint/float/complex dtypes exist.
* ``numpy._core.multiarray.scalar``: a numpy scalar, whose bytes must match its dtype.
* ``_codecs.encode(text, 'latin1')`` and ``builtins.bytes()``: how protocol 2 stores bytes (empty bytes).
* ``builtins.tuple`` only as ``(name, array)``, which Paddle 2.x wrote for a Tensor (``reduce_varbase``),
  and ``builtins.eval`` only as ``eval('data', {'data': array})`` (``reduce_DenseTensor``): both give
  the array, as ``paddle.load(return_numpy=True)`` does.
* ``collections.OrderedDict``.

Before unpickling, every opcode is read once from memory, so that no length field or memo index can
make the unpickler allocate more than the file holds, and the arrays built may total at most the
file's size. Afterwards ``paddle.load``'s own post-processing is applied: the
``StructuredToParameterName@@`` table is dropped and tensors split by ``UnpackBigParamInfor@@`` are
joined again.
"""
import collections
import contextlib
import io
import math
import os
import pickle
import pickletools
import re
import stat
import struct

import numpy as np

from ..errors import InputError, UnsafeFileError, UserError
from ..fileio import read_regular_file

MAX_BYTES_ENV = "PADDLE_RESNET_MAX_WEIGHTS_BYTES"
NAME_TABLE_KEY = "StructuredToParameterName@@"
SPLIT_INFO_KEY = "UnpackBigParamInfor@@"  # sic: Paddle's spelling
PLAIN_VALUES = "a weights file may only hold tensors and plain Python values (numbers, strings, lists, dicts)"
PLAIN_TYPES = (bool, int, float, complex, str, bytes, type(None), np.generic)
NUMERIC_DTYPE_NAME = re.compile(r"[biufc]\d{1,2}")
MEMO_OPCODES = ("PUT", "BINPUT", "LONG_BINPUT")
# Raised by the unpickler (or pickletools) for a file that is truncated or not a pickle at all.
UNREADABLE = (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
              AttributeError, RecursionError, OverflowError, struct.error)


def max_bytes_from_env():
    value = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not value:
        return 8 << 30
    if not value.isdigit():
        raise InputError(f"{MAX_BYTES_ENV}={value!r} must be a whole number of bytes")
    return int(value)


MAX_FILE_BYTES = max_bytes_from_env()


def read_bounded(path, max_bytes=MAX_FILE_BYTES):
    """The bytes of ``path``, a regular file of at most ``max_bytes``, refused before reading otherwise.

    Only what the file holds is read (never a ``max_bytes`` buffer: the 8 GiB default would fail under
    ``ulimit -v``); FIFOs and devices are refused by ``read_regular_file`` without blocking."""
    with contextlib.suppress(OSError):  # a missing or unreadable file: read_regular_file says so
        info = os.stat(path)
        if stat.S_ISREG(info.st_mode) and info.st_size > max_bytes:
            raise InputError(f"{path}: {info.st_size} bytes is more than the {max_bytes}-byte limit for a weights "
                             f"file (raise it with {MAX_BYTES_ENV})")
    return read_regular_file(path, max_bytes, "weights file")


def check_opcodes(data, source):
    """Reads every opcode of the pickle ``data`` without building anything.

    pickletools reads each length-prefixed argument with a bounded read, so a truncated file or a
    length larger than the file fails here; the C unpickler would allocate such a length first.
    A memo index grows the unpickler's memo table to match, so it may not exceed the opcodes read
    (picklers number their memo entries in order; Python 2's cPickle skips a few numbers).
    """
    for count, (opcode, arg, pos) in enumerate(pickletools.genops(data)):
        if opcode.name in MEMO_OPCODES and arg > count:
            raise InputError(f"{source}: memo index {arg} at byte {pos} is beyond the {count} opcodes "
                             f"before it (not a pickle any writer makes)")
        if opcode.name == "FRAME" and arg > len(data) - pos:
            raise InputError(f"{source}: a frame of {arg} bytes at byte {pos} runs past the end of the file")


class _PendingDtype:
    """What the ``numpy.dtype`` stand-in returns; BUILD may only set its byte order."""
    __slots__ = ("dtype", "source")

    def __init__(self, dtype, source):
        self.dtype, self.source = dtype, source

    def __setstate__(self, state):
        # numpy's state: (version, byte order, subarray, names, fields, itemsize, alignment, flags[, meta]).
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[1] in ("<", ">", "|", "=")
                and state[2:5] == (None, None, None)):
            raise UnsafeFileError(f"{self.source}: dtype state {state!r} is not that of a plain numeric dtype")
        if state[1] in "<>":
            self.dtype = self.dtype.newbyteorder(state[1])


class _PendingArray:
    """What the ``_reconstruct`` stand-in returns; BUILD's state (shape, dtype, bytes) makes the array."""
    __slots__ = ("array", "reader")

    def __init__(self, reader):
        self.array, self.reader = None, reader

    def __setstate__(self, state):
        if self.array is not None:
            raise UnsafeFileError(f"{self.reader.source}: an array's data is set twice")
        self.array = self.reader.build_array(state)

    def built(self):
        if self.array is None:
            raise InputError(f"{self.reader.source}: an array without data (no BUILD after _reconstruct)")
        return self.array


class _NdarrayClass:
    """Stands for ``numpy.ndarray``, which may only be the subtype given to ``_reconstruct``."""

    def __repr__(self):
        return "numpy.ndarray"


NDARRAY = _NdarrayClass()
NUMPY_CORE = ("numpy._core.multiarray", "numpy.core.multiarray")
BUILTINS = ("builtins", "__builtin__")  # protocol 2 writes Python 2 module names
ALLOWED_GLOBALS = {  # (module, name) -> attribute of _PaddleUnpickler that stands in for it
    **{(module, "_reconstruct"): "reconstruct" for module in NUMPY_CORE},
    **{(module, "scalar"): "scalar" for module in NUMPY_CORE},
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("_codecs", "encode"): "encode",
    ("collections", "OrderedDict"): "ordered_dict",
    **{(module, "tuple"): "varbase_tuple" for module in BUILTINS},
    **{(module, "eval"): "dense_tensor_eval" for module in BUILTINS},
    **{(module, "bytes"): "empty_bytes" for module in BUILTINS},
}


def _as_bytes(data):
    """Python 2 pickles hold bytes as str (decoded as latin1)."""
    return data.encode("latin1") if isinstance(data, str) else data


def _is_shape(shape):
    return isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)


class _PaddleUnpickler(pickle.Unpickler):
    ndarray = NDARRAY
    ordered_dict = collections.OrderedDict

    def __init__(self, data, source, encoding):
        super().__init__(io.BytesIO(data), encoding=encoding)
        self.source, self.budget = source, len(data)
        self.tensor_bytes = self.decoded_bytes = 0

    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafeFileError(f"{self.source}: refusing to load global '{module}.{name}': {PLAIN_VALUES}")
        return getattr(self, ALLOWED_GLOBALS[(module, name)])

    def persistent_load(self, pid):
        raise UnsafeFileError(f"{self.source}: refusing a persistent id ({str(pid)[:60]}): {PLAIN_VALUES}")

    def refuse(self, what):
        return UnsafeFileError(f"{self.source}: {what}")

    def _charge(self, nbytes, counter):
        total = getattr(self, counter) + nbytes
        if total > self.budget:  # each array's bytes are stored once in a genuine file
            raise self.refuse(f"its arrays would take {total} bytes, more than the file's {self.budget}")
        setattr(self, counter, total)

    # ---- stand-ins for the allowed globals ----

    def reconstruct(self, subtype, shape=None, typecode=None):
        if subtype is not NDARRAY:
            raise self.refuse(f"_reconstruct may only build a numpy.ndarray, not {subtype!r}")
        return _PendingArray(self)  # `shape` is ignored: the array comes from its state's bytes

    def dtype(self, name, align=False, copy=False):
        if not (isinstance(name, str) and NUMERIC_DTYPE_NAME.fullmatch(name)):
            raise self.refuse(f"refusing dtype {name!r}: only bool, int, uint, float and complex tensors")
        return _PendingDtype(np.dtype(name), self.source)

    def scalar(self, dtype, data=None):
        dtype = self._dtype_of(dtype)
        data = _as_bytes(data)
        if not isinstance(data, bytes) or len(data) != dtype.itemsize:
            raise self.refuse(f"a {dtype} scalar needs {dtype.itemsize} bytes")
        self._charge(dtype.itemsize, "tensor_bytes")
        return np.frombuffer(data, dtype)[0]

    def encode(self, text, encoding="utf-8"):
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise self.refuse("_codecs.encode is allowed only for protocol 2's latin1 bytes")
        self._charge(len(text), "decoded_bytes")
        return text.encode("latin1")

    def empty_bytes(self, *args):
        if args:
            raise self.refuse("builtins.bytes is allowed only without arguments (protocol 2's b'')")
        return b""

    def varbase_tuple(self, pair):
        if not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)
                and isinstance(pair[1], _PendingArray)):
            raise self.refuse("builtins.tuple is allowed only as Paddle's (name, tensor) record")
        return pair[1]

    def dense_tensor_eval(self, expression, namespace=None, *_):
        if not (expression == "data" and type(namespace) is dict and list(namespace) == ["data"]
                and isinstance(namespace["data"], _PendingArray)):
            raise self.refuse(f"refusing to evaluate {str(expression)[:60]!r}: builtins.eval is allowed "
                              f"only as Paddle's eval('data', {{'data': tensor}})")
        return namespace["data"]

    # ---- arrays ----

    def _dtype_of(self, dtype):
        if not isinstance(dtype, _PendingDtype):
            raise self.refuse(f"expected a numpy dtype, got {type(dtype).__name__}")
        return dtype.dtype

    def build_array(self, state):
        if not (isinstance(state, tuple) and len(state) in (4, 5)):
            raise self.refuse("an array state that numpy does not write")
        shape, dtype, fortran_order, data = state[-4:]
        dtype, data = self._dtype_of(dtype), _as_bytes(data)
        if not (_is_shape(shape) and isinstance(data, bytes)):
            raise self.refuse(f"an array of shape {shape!r} without raw bytes (object arrays are refused)")
        nbytes = math.prod(shape) * dtype.itemsize
        if len(data) != nbytes:
            raise self.refuse(f"an array of shape {shape} {dtype} needs {nbytes} bytes, "
                              f"the file holds {len(data)}")
        self._charge(nbytes, "tensor_bytes")
        order = "F" if fortran_order else "C"
        return np.frombuffer(data, dtype).reshape(shape, order=order).copy(order="K")


def _resolve(obj, source, memo):
    """``obj`` with every pending array and dtype replaced by what it built; shared objects stay shared."""
    if id(obj) in memo:
        return memo[id(obj)]
    kind = type(obj)
    if kind is _PendingArray:
        result = obj.built()
    elif kind is _PendingDtype:
        result = obj.dtype
    elif kind in (dict, collections.OrderedDict):
        result = memo[id(obj)] = kind()
        for key, value in obj.items():
            result[_resolve(key, source, memo)] = _resolve(value, source, memo)
    elif kind is list:
        result = memo[id(obj)] = []
        result.extend(_resolve(value, source, memo) for value in obj)
    elif kind in (tuple, set, frozenset):
        result = kind(_resolve(value, source, memo) for value in obj)
    elif isinstance(obj, PLAIN_TYPES):
        result = obj
    else:
        raise UnsafeFileError(f"{source}: holds a {kind.__name__}: {PLAIN_VALUES}")
    memo[id(obj)] = result
    return result


def _split_parts(state, key, entry, used, source):
    if not (isinstance(entry, dict) and isinstance(entry.get("slices"), list)
            and _is_shape(tuple(entry.get("OriginShape", ())))):
        raise InputError(f"{source}: {SPLIT_INFO_KEY} entry for {key!r} is not a slices/OriginShape record")
    parts = []
    for name in entry["slices"]:
        part = state.pop(name, None) if isinstance(name, str) else None
        if not isinstance(part, np.ndarray) or part.ndim != 1 or id(part) in used:
            raise InputError(f"{source}: slice {name!r} of {key!r} is missing, reused or not a 1-D tensor")
        used.add(id(part))
        parts.append(part)
    return parts


def _join_split_tensors(state, source):
    """Paddle's ``_pack_loaded_dict``: a tensor over 1 GiB saved with protocol 2/3 is stored in slices."""
    info = state.pop(SPLIT_INFO_KEY, None)
    if info is None:
        return state
    if not isinstance(info, dict):
        raise InputError(f"{source}: {SPLIT_INFO_KEY} is not a dict")
    used = set()
    for key, entry in info.items():
        parts = _split_parts(state, key, entry, used, source)
        shape = tuple(entry["OriginShape"])
        if not parts or math.prod(shape) != sum(p.size for p in parts):
            raise InputError(f"{source}: the slices of {key!r} do not make its shape {list(shape)}")
        state[key] = np.concatenate(parts).reshape(shape)
    return state


def _postprocess(obj, source):
    """What ``paddle.load`` does to a loaded dict: join split tensors, drop the name table."""
    if isinstance(obj, dict):
        obj = _join_split_tensors(obj, source)
        obj.pop(NAME_TABLE_KEY, None)
    return obj


def loads_pickle(data, source, *, encoding="latin1"):
    """The object pickled in ``data`` (read from ``source``, named in errors), tensors as numpy arrays.

    ``encoding`` decodes Python 2 strings, as in ``pickle.load``; Paddle itself uses latin1.
    Raises UnsafeFileError for anything but tensors and plain values, InputError for a damaged file.
    """
    try:
        check_opcodes(data, source)
        loaded = _PaddleUnpickler(data, source, encoding).load()
        return _postprocess(_resolve(loaded, source, {}), source)
    except UserError:
        raise
    except UNREADABLE as err:
        raise InputError(f"{source}: not a readable Paddle pickle ({type(err).__name__}: {err})") from err


def load_pickle(path, *, max_bytes=MAX_FILE_BYTES, encoding="latin1"):
    """What ``paddle.load(path, return_numpy=True)`` returns for a file ``paddle.save`` wrote, without
    running code: every tensor is a numpy array. See the module docstring for what is allowed."""
    return loads_pickle(read_bounded(path, max_bytes), path, encoding=encoding)
