"""Pretrained weights from paddle.vision, PaddleClas, torchvision and timm checkpoints.

``load_pretrained(model, path)`` reads .pdparams, torch .pth/.pt (without torch), .safetensors
or .npz, renames the keys from the detected naming scheme and loads them strictly. No file is
unpickled with ``pickle``/``paddle.load``: ``load_pickle`` reads Paddle's pickles without running code.
"""
from ..fileio import save_atomically
from .files import read_state_dict, resolve_weights_path
from .keymaps import SOURCES, detect_source, to_our_names
from .loader import LoadReport, check_finite, convert_checkpoint, load_pretrained
from .safe_pickle import MAX_FILE_BYTES, load_pickle

__all__ = ["MAX_FILE_BYTES", "SOURCES", "LoadReport", "check_finite", "convert_checkpoint", "detect_source", "load_pickle",
           "load_pretrained", "read_state_dict", "resolve_weights_path", "save_atomically", "to_our_names"]
