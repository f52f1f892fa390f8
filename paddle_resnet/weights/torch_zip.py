"""Reads PyTorch zip checkpoints (``torch.save`` since 1.6) into numpy arrays without importing torch.

The zip holds ``<name>/data.pkl``, a pickle in which each tensor is a call to
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and each storage is a
persistent id ``('storage', <dtype class>, <key>, <device>, <numel>)`` whose bytes are the
entry ``<name>/data/<key>``. The unpickler resolves only those globals (plus ``OrderedDict``),
so a weights file cannot run code. Nor can it allocate more than it holds: each storage entry must be
exactly numel x itemsize bytes (all of them together at most ``max_bytes``), and a tensor may not view
more elements than its storage has, which is what zero or overlapping strides would ask for.
"""
import collections
import os
import io
import math
import pickle
import zipfile
import zlib

import numpy as np

from ..errors import InputError, UnsafeFileError, UserError
from .safe_pickle import MAX_BYTES_ENV, MAX_FILE_BYTES, UNREADABLE, check_opcodes

ZIP_ERRORS = (zipfile.BadZipFile, zlib.error)

# Storage class -> numpy dtype of its raw bytes (bfloat16 is widened to float32 after reading).
STORAGE_DTYPES = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "BFloat16Storage": "u2",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}
LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # pickled magic number of pre-1.6 files


class StorageType(str):
    """The storage class named in a persistent id (e.g. "FloatStorage")."""


def _is_count_list(values):
    return isinstance(values, (tuple, list)) and all(type(n) is int and n >= 0 for n in values)


def _check_view(path, storage, offset, size, stride):
    if not (isinstance(storage, np.ndarray) and type(offset) is int and offset >= 0
            and _is_count_list(size) and _is_count_list(stride) and len(size) == len(stride)):
        raise UnsafeFileError(f"{path}: tensor view (offset {offset!r}, size {size!r}, stride {stride!r}) "
                              f"is not made of non-negative integers")
    if math.prod(size) > storage.size:  # zero or overlapping strides: more elements than stored
        raise UnsafeFileError(f"{path}: a tensor of sizes {list(size)} ({math.prod(size)} elements) views "
                              f"a storage of {storage.size} elements")


def _rebuild_tensor(path, storage, offset, size, stride, *_unused):
    """numpy view of ``storage`` with torch's element offset/size/stride, copied to own its data."""
    _check_view(path, storage, offset, size, stride)
    size, stride = tuple(size), tuple(stride)
    if 0 in size:
        return np.empty(size, storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
        raise UnsafeFileError(f"{path}: tensor view (offset {offset}, size {size}, stride {stride}) "
                              f"runs past its storage of {storage.size} elements")
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=[s * storage.itemsize for s in stride])
    return np.array(view)


def _rebuild_parameter(data, *_unused):
    return data


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): StorageType(name) for name in STORAGE_DTYPES},
}
TENSOR_BUILDERS = {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")}


# Weights compress little (float noise); a member claiming to grow more than this is a decompression bomb.
MAX_COMPRESSION_RATIO = 50
SMALL_FILE_BYTES = 1 << 20


def check_unpacked_size(archive, path, max_bytes):
    """Refuses a zip whose members unpack to more than ``max_bytes`` or far more than the zip itself holds,
    before any member is read."""
    total = sum(info.file_size for info in archive.infolist())
    packed = os.path.getsize(path)
    allowed = min(max_bytes, MAX_COMPRESSION_RATIO * packed + SMALL_FILE_BYTES)
    if total > allowed:
        raise UnsafeFileError(f"{path}: its members unpack to {total} bytes, more than "
                              f"{'the limit for a weights file' if allowed == max_bytes else f'{MAX_COMPRESSION_RATIO} times the file size'}"
                              f" ({allowed} bytes)")


def _entry_info(archive, name, size, path):
    """The zip entry ``name``, which must declare ``size`` bytes."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise InputError(f"{path}: entry {name} is missing") from None
    if info.file_size != size:
        raise UnsafeFileError(f"{path}: entry {name} holds {info.file_size} bytes, not the {size} "
                              f"its tensor declares")
    return info


def _read_entry(archive, info, path):
    """The bytes of zip entry ``info``, read no further than its declared size."""
    name, size = info.filename, info.file_size
    with archive.open(info) as f:
        data = f.read(size)
    if len(data) != size:
        raise InputError(f"{path}: entry {name} is truncated ({len(data)} of {size} bytes)")
    return data


class _WeightsUnpickler(pickle.Unpickler):
    def __init__(self, archive, root, path, max_bytes):
        pickled = archive.getinfo(f"{root}/data.pkl")
        if pickled.file_size > max_bytes:
            raise InputError(f"{path}: its data.pkl of {pickled.file_size} bytes is more than the "
                             f"{max_bytes}-byte limit for a weights file")
        data = _read_entry(archive, pickled, path)
        check_opcodes(data, path)
        super().__init__(io.BytesIO(data))
        self.archive, self.root, self.path = archive, root, path
        self.byteorder = _byteorder(archive, root)
        self.storages = {}
        self.max_bytes, self.storage_bytes, self.tensor_bytes = max_bytes, 0, 0

    def find_class(self, module, name):
        if (module, name) in TENSOR_BUILDERS:
            return self._rebuild_tensor
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafeFileError(
                f"{self.path}: refusing to load global '{module}.{name}': a weights file may only "
                f"hold tensors, storages and OrderedDicts (load it with torch and re-save its state_dict)")
        return ALLOWED_GLOBALS[(module, name)]

    def _rebuild_tensor(self, storage, offset, size, stride, *rest):
        """Each tensor is a copy: many views of one storage must not add up to more than the file holds
        (tied weights view a storage twice at most)."""
        _check_view(self.path, storage, offset, size, stride)
        self.tensor_bytes += math.prod(size) * storage.itemsize
        if self.tensor_bytes > 2 * self.storage_bytes + SMALL_FILE_BYTES:
            raise UnsafeFileError(f"{self.path}: its tensors view their storages over and over "
                                  f"({self.tensor_bytes} bytes of tensors from {self.storage_bytes} bytes "
                                  f"of storage)")
        return _rebuild_tensor(self.path, storage, offset, size, stride, *rest)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], StorageType) and type(pid[4]) is int and pid[4] >= 0):
            raise UnsafeFileError(f"{self.path}: unsupported persistent id {str(pid)[:80]}")
        key = str(pid[2])
        if key not in self.storages:
            self.storages[key] = self._read_storage(key, pid[1], pid[4])
        return self.storages[key]

    def _read_storage(self, key, storage_type, numel):
        dtype = np.dtype(STORAGE_DTYPES[storage_type]).newbyteorder(self.byteorder)
        size = numel * dtype.itemsize
        info = _entry_info(self.archive, f"{self.root}/data/{key}", size, self.path)
        self.storage_bytes += size
        if self.storage_bytes > self.max_bytes:
            raise UnsafeFileError(f"{self.path}: its storages take more than the {self.max_bytes}-byte "
                                  f"limit for a weights file (raise it with {MAX_BYTES_ENV})")
        raw = _read_entry(self.archive, info, self.path)
        values = np.frombuffer(raw, dtype=dtype)
        if storage_type == "BFloat16Storage":
            # bfloat16 is the top half of a float32.
            return (values.astype(np.uint32) << 16).view(np.float32)
        return values.astype(dtype.newbyteorder("="), copy=False)


def _byteorder(archive, root):
    try:
        with archive.open(f"{root}/byteorder") as f:
            order = f.read(16).decode(errors="replace").strip()
    except KeyError:  # files from torch < 1.10 have no byteorder entry and are little-endian
        return "<"
    return "<" if order == "little" else ">"


def data_pickle_root(archive):
    """The folder holding ``data.pkl`` in a torch zip, or None when the zip is something else."""
    for name in archive.namelist():
        if name.endswith("/data.pkl") and name.count("/") == 1:
            return name.split("/", 1)[0]
    return None


def read_torch_zip(path, max_bytes=MAX_FILE_BYTES):
    """The object ``torch.load(path)`` would return, with every tensor as a numpy array."""
    with zipfile.ZipFile(path) as archive:
        root = data_pickle_root(archive)
        if root is None:
            raise InputError(f"{path}: a zip file but not a torch checkpoint (no <name>/data.pkl inside)")
        try:
            check_unpacked_size(archive, path, max_bytes)
            return _WeightsUnpickler(archive, root, path, max_bytes).load()
        except UserError:
            raise
        except UNREADABLE + ZIP_ERRORS as err:
            raise InputError(f"{path}: not a readable torch checkpoint ({type(err).__name__}: {err})") from err
