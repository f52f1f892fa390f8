"""Pretrained weights from paddle.vision, PaddleClas, torchvision and timm checkpoints.

``load_pretrained(model, path)`` reads .pdparams, torch .pth/.pt (without torch), .safetensors
or .npz, renames the keys from the detected naming scheme and loads them strictly.
"""
from .files import read_state_dict, resolve_weights_path, save_atomically
from .keymaps import SOURCES, detect_source, to_our_names
from .loader import LoadReport, convert_checkpoint, load_pretrained

__all__ = ["SOURCES", "LoadReport", "convert_checkpoint", "detect_source", "load_pretrained",
           "read_state_dict", "resolve_weights_path", "save_atomically", "to_our_names"]
