"""Reads PyTorch zip checkpoints (``torch.save`` since 1.6) into numpy arrays without importing torch.

The zip holds ``<name>/data.pkl``, a pickle in which each tensor is a call to
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and each storage is a
persistent id ``('storage', <dtype class>, <key>, <device>, <numel>)`` whose bytes are the
entry ``<name>/data/<key>``. The unpickler resolves only those globals (plus ``OrderedDict``),
so a weights file cannot run code.
"""
import collections
import pickle
import zipfile

import numpy as np

# Storage class -> numpy dtype of its raw bytes (bfloat16 is widened to float32 after reading).
STORAGE_DTYPES = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "BFloat16Storage": "u2",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}
LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # pickled magic number of pre-1.6 files


class StorageType(str):
    """The storage class named in a persistent id (e.g. "FloatStorage")."""


def _rebuild_tensor(storage, offset, size, stride, *_unused):
    """numpy view of ``storage`` with torch's element offset/size/stride, copied to own its data."""
    size, stride = tuple(size), tuple(stride)
    if 0 in size:
        return np.empty(size, storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if offset < 0 or last >= storage.size:
        raise ValueError(f"tensor view (offset {offset}, size {size}, stride {stride}) "
                         f"runs past its storage of {storage.size} elements")
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=[s * storage.itemsize for s in stride])
    return np.array(view)


def _rebuild_parameter(data, *_unused):
    return data


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{("torch", name): StorageType(name) for name in STORAGE_DTYPES},
}


class _WeightsUnpickler(pickle.Unpickler):
    def __init__(self, archive, root, path):
        super().__init__(archive.open(f"{root}/data.pkl"))
        self.archive, self.root, self.path = archive, root, path
        self.byteorder = _byteorder(archive, root)
        self.storages = {}

    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"{self.path}: refusing to load global '{module}.{name}': a weights file may only "
                f"hold tensors, storages and OrderedDicts (load it with torch and re-save its state_dict)")
        return ALLOWED_GLOBALS[(module, name)]

    def persistent_load(self, pid):
        kind, storage_type, key = pid[0], pid[1], str(pid[2])
        if kind != "storage" or not isinstance(storage_type, StorageType):
            raise pickle.UnpicklingError(f"{self.path}: unsupported persistent id {pid[:2]!r}")
        if key not in self.storages:
            self.storages[key] = self._read_storage(key, storage_type)
        return self.storages[key]

    def _read_storage(self, key, storage_type):
        raw = self.archive.read(f"{self.root}/data/{key}")
        dtype = np.dtype(STORAGE_DTYPES[storage_type]).newbyteorder(self.byteorder)
        values = np.frombuffer(raw, dtype=dtype)
        if storage_type == "BFloat16Storage":
            # bfloat16 is the top half of a float32.
            return (values.astype(np.uint32) << 16).view(np.float32)
        return values.astype(dtype.newbyteorder("="), copy=False)


def _byteorder(archive, root):
    try:
        order = archive.read(f"{root}/byteorder").decode().strip()
    except KeyError:  # files from torch < 1.10 have no byteorder entry and are little-endian
        return "<"
    return "<" if order == "little" else ">"


def data_pickle_root(archive):
    """The folder holding ``data.pkl`` in a torch zip, or None when the zip is something else."""
    for name in archive.namelist():
        if name.endswith("/data.pkl") and name.count("/") == 1:
            return name.split("/", 1)[0]
    return None


def read_torch_zip(path):
    """The object ``torch.load(path)`` would return, with every tensor as a numpy array."""
    with zipfile.ZipFile(path) as archive:
        root = data_pickle_root(archive)
        if root is None:
            raise ValueError(f"{path}: a zip file but not a torch checkpoint (no <name>/data.pkl inside)")
        return _WeightsUnpickler(archive, root, path).load()
