"""Finding a weights file and reading it into a flat ``{name: numpy array}`` dict.

The format is told from the file's content, not its suffix: torch zip (.pth/.pt/.bin), numpy .npz,
.safetensors, or a Paddle pickle (.pdparams). No reader runs code from the file or allocates more
than the file holds: pickles go through the restricted ``safe_pickle``/``torch_zip`` unpicklers, and
an .npz member's header must agree with the member's size before its array is made.
"""
import json
import math
import os
import struct
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError, MissingFileError, UnsafeFileError, UserError, short_repr
from ..fileio import committed_path, open_regular_file
from .named import is_weights_name, named_weights_path
from .safe_pickle import MAX_FILE_BYTES, load_pickle
from .torch_zip import LEGACY_MAGIC, ZIP_ERRORS, check_unpacked_size, data_pickle_root, read_torch_zip

WEIGHT_SUFFIXES = (".pdparams", ".pth", ".pt", ".bin", ".safetensors", ".npz")
KNOWN_FORMATS = ("a Paddle pickle (.pdparams), a PyTorch zip (.pth/.pt/.bin), .safetensors or .npz")
# Training checkpoints often wrap the weights; these keys are unwrapped, outermost first.
WRAPPER_KEYS = ("state_dict", "model", "model_state")
NPY_SUFFIX = ".npy"
PICKLE_PROTO = b"\x80"  # every pickle from protocol 2 on starts with the PROTO opcode
# What safetensors.numpy reads (numpy has no bfloat16 or float8).
SAFETENSORS_DTYPES = ("F64", "F32", "F16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL")
MAX_NAME_CHARS = 1000  # a parameter name is a dotted path of a few dozen characters


def resolve_weights_path(path):
    """``path`` itself, or ``path + '.pdparams'`` for a PaddleClas-style prefix such as ``output/best``; read
    from a checkpoint unit's commit folder when a killed writer left the file there (see fileio). A weights
    name such as ``imgsim:resnet50`` is the file inside its package (see named.py)."""
    if is_weights_name(path):
        return named_weights_path(os.fspath(path))
    path = Path(path)
    candidates = [path] if path.suffix in WEIGHT_SUFFIXES else [Path(f"{path}.pdparams"), path]
    for candidate in candidates:
        committed = Path(committed_path(candidate))  # a checkpoint a killed run had committed but not moved
        if committed.exists():  # a FIFO or a device is refused by name when it is read, not "missing"
            return committed
    tried = " or ".join(f"'{c}'" for c in candidates)
    raise MissingFileError(f"no weights file at {tried}")


def _read_npy_header(member, name, path):
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(member)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(member)
    raise InputError(f"{path}: member {name} is .npy format {version[0]}.{version[1]}, not 1.0 or 2.0")


def _read_npz_member(archive, info, path):
    """One .npy member, checked against its zip entry's size before anything is allocated."""
    with archive.open(info) as member:
        shape, fortran_order, dtype = _read_npy_header(member, info.filename, path)
        if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
            raise UnsafeFileError(f"{path}: member {info.filename} has dtype {dtype}: only bool, int, "
                                  f"uint, float and complex tensors")
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size - member.tell() != nbytes:
            raise UnsafeFileError(f"{path}: member {info.filename} declares shape {list(shape)} {dtype} "
                                  f"({nbytes} bytes) but holds {info.file_size - member.tell()} bytes")
        data = member.read(nbytes)
    if len(data) != nbytes:
        raise InputError(f"{path}: member {info.filename} is truncated")
    order = "F" if fortran_order else "C"
    return np.frombuffer(data, dtype).reshape(shape, order=order).copy(order="K")


def _read_npz(path, max_bytes=MAX_FILE_BYTES):
    """``np.load(path)`` of an .npz without its up-front allocation of the shape each header declares."""
    state = {}
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        check_unpacked_size(archive, path, max_bytes)
        for info in infos:
            name = info.filename[:-len(NPY_SUFFIX)] if info.filename.endswith(NPY_SUFFIX) else info.filename
            try:
                state[name] = _read_npz_member(archive, info, path)
            except UserError:
                raise
            except ZIP_ERRORS + (ValueError, SyntaxError, EOFError) as err:
                raise InputError(f"{path}: member {info.filename} is not a readable .npy ({err})") from err
    return state


def _safetensors_dtypes(path):
    """The dtype names in a .safetensors header (a broken header gives none: the library then says why)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = f.read(length)  # _is_safetensors checked that the length is below the file's size
    try:
        entries = json.loads(header)
    except (ValueError, RecursionError):
        return set()
    if not isinstance(entries, dict):
        return set()
    return {entry["dtype"] for name, entry in entries.items()
            if name != "__metadata__" and isinstance(entry, dict) and isinstance(entry.get("dtype"), str)}


def _read_safetensors(path):
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    unsupported = sorted(_safetensors_dtypes(path) - set(SAFETENSORS_DTYPES))
    if unsupported:
        raise InputError(f"{path}: tensor dtype {short_repr(unsupported[0])} is not supported (supported: "
                         f"{', '.join(SAFETENSORS_DTYPES)}); re-save its tensors as float32 (e.g. torch: "
                         f"{{k: v.float() for k, v in state.items()}})")
    try:
        return load_file(str(path))
    except SafetensorError as err:  # the library checks every offset against the file before reading
        raise InputError(f"{path}: not a readable .safetensors file: {err}") from None


def _refuse_legacy_torch(path):
    raise InputError(f"{path}: a PyTorch file in the pre-1.6 (non-zip) format, which is read only "
                     f"through torch; re-save it with torch.save(state_dict, path) from torch >= 1.6")


def _refuse_unknown(path):
    raise InputError(f"{path}: not a weights file this loader knows; expected {KNOWN_FORMATS}")


def _is_safetensors(head, size):
    # 8-byte little-endian header length, then the JSON header itself.
    return len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < size


def _reader_for(path):
    with open_regular_file(path, "weights file") as f:  # a FIFO would block zipfile's open, a device never end
        if zipfile.is_zipfile(f):
            with zipfile.ZipFile(f) as archive:
                return read_torch_zip if data_pickle_root(archive) is not None else _read_npz
        f.seek(0)
        head = f.read(16)
        size = os.fstat(f.fileno()).st_size
    if head.startswith(LEGACY_MAGIC):
        return _refuse_legacy_torch
    if _is_safetensors(head, size):
        return _read_safetensors
    if head.startswith(PICKLE_PROTO):
        return load_pickle
    return _refuse_unknown


def unwrap_state_dict(obj, path):
    """The flat tensor dict inside a checkpoint, after unwrapping ``state_dict``/``model``/``model_state``."""
    unwrapped = set()  # a pickle can make a dict its own "state_dict"
    while isinstance(obj, dict) and id(obj) not in unwrapped:
        unwrapped.add(id(obj))
        wrapper = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if wrapper is None:
            break
        obj = obj[wrapper]
    if not isinstance(obj, dict):
        raise InputError(f"{path}: holds a {type(obj).__name__}, not a dict of tensors")
    not_names = [k for k in obj if not isinstance(k, str) or len(k) > MAX_NAME_CHARS]
    if not_names:
        raise InputError(f"{path}: key {short_repr(not_names[0])} is not a parameter name (a string of at most "
                         f"{MAX_NAME_CHARS} characters; {len(not_names)} such keys)")
    not_tensors = sorted(k for k, v in obj.items() if not isinstance(v, np.ndarray))
    if not_tensors:
        raise InputError(f"{path}: entries that are not tensors: {', '.join(not_tensors[:10])}")
    return dict(obj)


def read_state_dict(path):
    """``(resolved path, {name: numpy array})`` for any supported weights file."""
    path = resolve_weights_path(path)
    return path, unwrap_state_dict(_reader_for(path)(path), path)
