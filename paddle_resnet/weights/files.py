"""Finding a weights file and reading it into a flat ``{name: numpy array}`` dict.

The format is told from the file's content, not its suffix: torch zip (.pth/.pt/.bin),
numpy .npz, .safetensors, and otherwise a Paddle pickle (.pdparams).
"""
import os
import struct
import uuid
import zipfile
from pathlib import Path

import numpy as np

from .torch_zip import LEGACY_MAGIC, data_pickle_root, read_torch_zip

WEIGHT_SUFFIXES = (".pdparams", ".pth", ".pt", ".bin", ".safetensors", ".npz")
# Training checkpoints often wrap the weights; these keys are unwrapped, outermost first.
WRAPPER_KEYS = ("state_dict", "model", "model_state")


def resolve_weights_path(path):
    """``path`` itself, or ``path + '.pdparams'`` for a PaddleClas-style prefix such as ``output/best``."""
    path = Path(path)
    candidates = [path] if path.suffix in WEIGHT_SUFFIXES else [Path(f"{path}.pdparams"), path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = " or ".join(f"'{c}'" for c in candidates)
    raise FileNotFoundError(f"no weights file at {tried}")


def _read_npz(path):
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _read_safetensors(path):
    from safetensors.numpy import load_file
    return load_file(str(path))


def _read_paddle(path):
    import paddle
    try:
        return paddle.load(str(path), return_numpy=True)
    except Exception as err:  # paddle.load raises many types for files that are not its pickles
        raise ValueError(f"{path}: not a weights file this loader knows "
                         f"(tried .pdparams after ruling out torch zip, .npz and .safetensors): {err}") from err


def _refuse_legacy_torch(path):
    raise ValueError(f"{path}: a PyTorch file in the pre-1.6 (non-zip) format, which is read only "
                     f"through torch; re-save it with torch.save(state_dict, path) from torch >= 1.6")


def _is_safetensors(head, size):
    # 8-byte little-endian header length, then the JSON header itself.
    return len(head) >= 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < size


def _reader_for(path):
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return read_torch_zip if data_pickle_root(archive) is not None else _read_npz
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(LEGACY_MAGIC):
        return _refuse_legacy_torch
    if _is_safetensors(head, os.path.getsize(path)):
        return _read_safetensors
    return _read_paddle


def unwrap_state_dict(obj, path):
    """The flat tensor dict inside a checkpoint, after unwrapping ``state_dict``/``model``/``model_state``."""
    while isinstance(obj, dict):
        wrapper = next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if wrapper is None:
            break
        obj = obj[wrapper]
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: holds a {type(obj).__name__}, not a dict of tensors")
    not_tensors = sorted(k for k, v in obj.items() if not isinstance(v, np.ndarray))
    if not_tensors:
        raise ValueError(f"{path}: entries that are not tensors: {', '.join(map(str, not_tensors[:10]))}")
    return dict(obj)


def read_state_dict(path):
    """``(resolved path, {name: numpy array})`` for any supported weights file."""
    path = resolve_weights_path(path)
    return path, unwrap_state_dict(_reader_for(path)(path), path)


def save_atomically(state_dict, dst):
    """paddle.save to a temp file beside ``dst``, then os.replace: readers never see a partial file."""
    import paddle
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp: its 0600 mode would carry over to dst; paddle.save creates the file under the umask.
    tmp = dst.with_name(f"{dst.name}.tmp{uuid.uuid4().hex[:8]}")  # .gitignore: *.pdparams.tmp*
    try:
        paddle.save(state_dict, str(tmp))
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
