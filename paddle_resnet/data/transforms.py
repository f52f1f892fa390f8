"""Image transforms with PaddleClas names and arguments, in PIL + numpy (no OpenCV).

A pipeline is configured as a list of ``{OpName: kwargs}`` entries (or bare ``"OpName"`` strings)::

    transform = build_transforms([{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"resize_short": 256}},
                                  {"CropImage": {"size": 224}}, {"NormalizeImage": {...}}, "ToCHWImage"])
    chw_float32 = transform(jpeg_bytes, rng=np.random.default_rng([seed, epoch, index]))

Every op is called as ``op(img, rng)``. Random ops draw only from ``rng`` (a ``numpy.random.Generator``),
so augmentation is reproducible whatever process or order a sample is loaded in.

Conventions shared with PaddleClas: images between ops are uint8 HWC numpy arrays; a ``size`` given
as a pair is ``[width, height]``; ``RandFlipImage.flip_code`` follows cv2 (1 horizontal, 0 vertical,
-1 both). Resizing uses PIL, so pixel values differ slightly from PaddleClas's cv2 resize.
"""
import difflib
import inspect
import io
import math
import numbers
import os
import re
from typing import NamedTuple

import numpy as np
from PIL import Image

__all__ = [
    "ImageDecodeError", "DecodeImage", "RandCropImage", "RandFlipImage", "ResizeImage", "CropImage",
    "NormalizeImage", "ToCHWImage", "Compose", "MixupOperator", "MixupLabels", "build_transforms",
    "build_batch_transform", "describe_eval_preprocess", "parse_scale", "instantiate",
]

_INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX, "area": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING,
}


class ImageDecodeError(ValueError):
    """The input is not a readable image (empty, truncated, corrupt or another file type)."""


def _resample(interpolation):
    name = "bilinear" if interpolation is None else str(interpolation).lower()
    if name not in _INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; choose one of {sorted(_INTERPOLATIONS)}")
    return _INTERPOLATIONS[name]


def _pair(size, what):
    """``size`` as (width, height): an int means a square, a pair is [width, height]."""
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        width = height = int(size)
    elif isinstance(size, (list, tuple)) and len(size) == 2:
        width, height = (int(s) for s in size)
    else:
        raise ValueError(f"{what}: size must be an int or [width, height], got {size!r}")
    if width <= 0 or height <= 0:
        raise ValueError(f"{what}: size must be positive, got {size!r}")
    return width, height


def _resize(img, width, height, resample):
    if img.shape[1] == width and img.shape[0] == height:
        return img
    return np.asarray(Image.fromarray(img).resize((width, height), resample))


def parse_scale(scale):
    """A number, or a string "a" or "a/b" (as written in YAML configs: ``scale: 1.0/255.0``); never eval'd."""
    if isinstance(scale, numbers.Real) and not isinstance(scale, bool):
        return float(scale)
    number = r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*"
    match = re.fullmatch(number + f"(?:/{number})?", str(scale))
    if not match:
        raise ValueError(f"NormalizeImage: scale must be a number or 'a/b', got {scale!r}")
    numerator, denominator = match.groups()
    if denominator is not None and float(denominator) == 0:
        raise ValueError(f"NormalizeImage: scale {scale!r} divides by zero")
    return float(numerator) / (float(denominator) if denominator is not None else 1.0)


class DecodeImage:
    """Encoded bytes, a file path, a PIL image or a uint8 HWC array -> uint8 HWC array with 3 channels.

    Grayscale, palette and RGBA images are always converted to 3 channels (the models take 3), so a
    grayscale data set such as MNIST works with ImageNet configs. ``to_rgb`` keeps PaddleClas's meaning:
    True gives RGB, False the BGR order that PaddleClas's cv2 decoder produces (for configs whose
    mean/std are written in BGR). ``channel_first`` returns CHW instead of HWC.
    """

    def __init__(self, to_rgb=True, channel_first=False):
        self.to_rgb, self.channel_first = bool(to_rgb), bool(channel_first)

    def __call__(self, img, rng=None):
        image = self._to_rgb_array(img)
        if not self.to_rgb:
            image = np.ascontiguousarray(image[:, :, ::-1])
        return image.transpose(2, 0, 1) if self.channel_first else image

    @staticmethod
    def _to_rgb_array(img):
        if isinstance(img, np.ndarray):
            if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
                raise ImageDecodeError(f"expected a uint8 HW or HWC array with 1, 3 or 4 channels, "
                                       f"got {img.dtype} {img.shape}")
            if img.ndim == 2 or img.shape[2] == 1:
                return np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
            return img if img.shape[2] == 3 else np.ascontiguousarray(img[:, :, :3])
        if isinstance(img, (str, os.PathLike)):
            with open(img, "rb") as f:
                img = f.read()
        if isinstance(img, (bytes, bytearray, memoryview)):
            if len(img) == 0:
                raise ImageDecodeError("empty file")
            try:
                with Image.open(io.BytesIO(img)) as pil_image:
                    return np.asarray(pil_image.convert("RGB"))
            # PIL signals broken files with any of these (e.g. SyntaxError for a bad PNG chunk).
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
                raise ImageDecodeError(f"cannot decode image: {error}") from error
        if isinstance(img, Image.Image):
            return np.asarray(img.convert("RGB"))
        raise ImageDecodeError(f"cannot decode an object of type {type(img).__name__}")


class RandCropImage:
    """RandomResizedCrop, PaddleClas's variant: one draw of area fraction in ``scale`` and aspect ratio
    in ``ratio`` (uniform, or log-uniform with ``use_log_aspect``), clipped to fit, then resize to ``size``."""

    def __init__(self, size, scale=None, ratio=None, interpolation=None, use_log_aspect=False):
        self.width, self.height = _pair(size, "RandCropImage")
        self.scale = tuple(scale) if scale is not None else (0.08, 1.0)
        self.ratio = tuple(ratio) if ratio is not None else (3.0 / 4.0, 4.0 / 3.0)
        if not (0 < self.scale[0] <= self.scale[1] <= 1):
            raise ValueError(f"RandCropImage: scale must satisfy 0 < min <= max <= 1, got {scale!r}")
        if not (0 < self.ratio[0] <= self.ratio[1]):
            raise ValueError(f"RandCropImage: ratio must satisfy 0 < min <= max, got {ratio!r}")
        self.resample = _resample(interpolation)
        self.use_log_aspect = bool(use_log_aspect)

    def __call__(self, img, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        img_h, img_w = img.shape[:2]
        if self.use_log_aspect:
            aspect = math.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
        else:
            aspect = rng.uniform(*self.ratio)
        w_factor, h_factor = math.sqrt(aspect), 1.0 / math.sqrt(aspect)
        # The largest area fraction whose crop of this aspect still fits inside the image.
        bound = min(img_w / img_h / w_factor ** 2, img_h / img_w / h_factor ** 2)
        area = img_w * img_h * rng.uniform(min(self.scale[0], bound), min(self.scale[1], bound))
        side = math.sqrt(area)
        w = min(img_w, max(1, int(side * w_factor)))
        h = min(img_h, max(1, int(side * h_factor)))
        x = int(rng.integers(0, img_w - w + 1))
        y = int(rng.integers(0, img_h - h + 1))
        return _resize(img[y:y + h, x:x + w], self.width, self.height, self.resample)


class RandFlipImage:
    """Flip with probability 1/2; ``flip_code`` as cv2.flip: 1 horizontal, 0 vertical, -1 both."""

    def __init__(self, flip_code=1):
        if flip_code not in (1, 0, -1):
            raise ValueError(f"RandFlipImage: flip_code must be 1, 0 or -1, got {flip_code!r}")
        self.flip_code = flip_code

    def __call__(self, img, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        if rng.integers(0, 2) == 0:
            return img
        axes = {1: (1,), 0: (0,), -1: (0, 1)}[self.flip_code]
        return np.ascontiguousarray(np.flip(img, axis=axes))


class ResizeImage:
    """Resize so the short side is ``resize_short`` (aspect kept, PaddleClas rounding), or to ``size``."""

    def __init__(self, size=None, resize_short=None, interpolation=None):
        if (size is None) == (resize_short is None):
            raise ValueError("ResizeImage: give exactly one of size or resize_short")
        self.size = _pair(size, "ResizeImage") if size is not None else None
        self.resize_short = int(resize_short) if resize_short is not None else None
        if self.resize_short is not None and self.resize_short <= 0:
            raise ValueError(f"ResizeImage: resize_short must be positive, got {resize_short!r}")
        self.resample = _resample(interpolation)

    def __call__(self, img, rng=None):
        if self.size is not None:
            return _resize(img, *self.size, self.resample)
        img_h, img_w = img.shape[:2]
        percent = self.resize_short / min(img_w, img_h)
        return _resize(img, int(round(img_w * percent)), int(round(img_h * percent)), self.resample)


class CropImage:
    """Center crop to ``size`` (int or [width, height])."""

    def __init__(self, size):
        self.width, self.height = _pair(size, "CropImage")

    def __call__(self, img, rng=None):
        img_h, img_w = img.shape[:2]
        if img_w < self.width or img_h < self.height:
            raise ValueError(f"CropImage: image {img_w}x{img_h} is smaller than the crop "
                             f"{self.width}x{self.height}; resize it first (ResizeImage)")
        x, y = (img_w - self.width) // 2, (img_h - self.height) // 2
        return img[y:y + self.height, x:x + self.width]


class NormalizeImage:
    """``(img * scale - mean) / std`` in float32. ``order`` is the input layout: '' or 'hwc', or 'chw'."""

    def __init__(self, scale=None, mean=None, std=None, order="chw"):
        self.scale = parse_scale(scale) if scale is not None else 1.0 / 255.0
        self.mean = np.asarray(mean if mean is not None else [0.485, 0.456, 0.406], dtype=np.float32)
        self.std = np.asarray(std if std is not None else [0.229, 0.224, 0.225], dtype=np.float32)
        if self.mean.shape != self.std.shape or self.mean.ndim != 1:
            raise ValueError(f"NormalizeImage: mean and std must be lists of one value per channel, "
                             f"got {mean!r} and {std!r}")
        if np.any(self.std == 0):
            raise ValueError(f"NormalizeImage: std must not contain 0, got {std!r}")
        self.order = str(order).lower()
        if self.order not in ("", "hwc", "chw"):
            raise ValueError(f"NormalizeImage: order must be '', 'hwc' or 'chw', got {order!r}")
        shape = (-1, 1, 1) if self.order == "chw" else (1, 1, -1)
        self._mean, self._std = self.mean.reshape(shape), self.std.reshape(shape)

    def __call__(self, img, rng=None):
        return ((img.astype(np.float32) * np.float32(self.scale) - self._mean) / self._std).astype(np.float32)


class ToCHWImage:
    """HWC -> CHW."""

    def __call__(self, img, rng=None):
        return np.ascontiguousarray(img.transpose(2, 0, 1))


RANDOM_OPS = (RandCropImage, RandFlipImage)


class Compose:
    """Apply ops in order; ``rng`` (default: a fresh unseeded Generator) is handed to every op."""

    def __init__(self, ops):
        self.ops = list(ops)

    def __call__(self, img, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        for op in self.ops:
            img = op(img, rng)
        return img

    def __repr__(self):
        return f"Compose({[type(op).__name__ for op in self.ops]})"


class MixupLabels(NamedTuple):
    """Targets of a mixup batch: the loss is ``lam * CE(logits, labels_a) + (1 - lam) * CE(logits, labels_b)``."""
    labels_a: object
    labels_b: object
    lam: float


class MixupOperator:
    """Batch op: ``images = lam * images + (1 - lam) * images[perm]``, lam ~ Beta(alpha, alpha).

    Called on numpy arrays as ``op(images [N,C,H,W], labels [N], rng)`` -> ``(mixed images, MixupLabels)``.
    """

    def __init__(self, alpha=1.0):
        if not alpha > 0:
            raise ValueError(f"MixupOperator: alpha must be > 0, got {alpha!r}")
        self.alpha = float(alpha)

    def __call__(self, images, labels, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        lam = float(rng.beta(self.alpha, self.alpha))
        perm = rng.permutation(len(images))
        mixed = (lam * images + (1.0 - lam) * images[perm]).astype(images.dtype)
        return mixed, MixupLabels(labels, labels[perm], lam)


SAMPLE_OPS = {op.__name__: op for op in (DecodeImage, RandCropImage, RandFlipImage, ResizeImage, CropImage,
                                         NormalizeImage, ToCHWImage)}
BATCH_OPS = {op.__name__: op for op in (MixupOperator,)}


def _build_op(entry, registry, kind):
    if isinstance(entry, str):
        name, kwargs = entry, None
    elif isinstance(entry, dict) and len(entry) == 1:
        (name, kwargs), = entry.items()
    else:
        raise ValueError(f"each {kind} must be 'Name' or {{Name: {{arguments}}}}, got {entry!r}")
    if name not in registry:
        close = difflib.get_close_matches(str(name), list(registry), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown {kind} {name!r}{hint} Valid {kind}s: {', '.join(registry)}")
    return instantiate(registry[name], kwargs or {}, name)


def instantiate(cls, kwargs, where):
    """``cls(**kwargs)``, but a missing or unknown config key is a ValueError naming ``where`` and the valid keys."""
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as error:
        params = list(inspect.signature(cls).parameters)
        raise ValueError(f"{where}: {error}; its arguments are {params}") from None
    return cls(**kwargs)


def build_transforms(op_list):
    """The ``transform_ops`` list of a config -> Compose."""
    return Compose(_build_op(entry, SAMPLE_OPS, "transform op") for entry in (op_list or []))


def build_batch_transform(op_list):
    """The ``batch_transform_ops`` list -> one batch op, or None when the list is empty."""
    ops = [_build_op(entry, BATCH_OPS, "batch transform op") for entry in (op_list or [])]
    if len(ops) > 1:
        raise ValueError(f"only one batch transform op is supported, got {len(ops)}: {op_list!r}")
    return ops[0] if ops else None


def describe_eval_preprocess(op_list):
    """A deterministic eval pipeline as a plain dict, for deployment metadata (inference.yml).

    Keys: resize_short (int or None), resize_size ([w, h] or None), crop_size ([w, h] or None),
    mean, std, scale (floats), channel_order ('RGB' or 'BGR'), layout ('CHW' or 'HWC').
    """
    info = {"resize_short": None, "resize_size": None, "crop_size": None, "mean": None, "std": None,
            "scale": None, "channel_order": "RGB", "layout": "HWC"}
    for op in build_transforms(op_list).ops:
        if isinstance(op, RANDOM_OPS):
            raise ValueError(f"{type(op).__name__} is random; an eval pipeline must be deterministic")
        if isinstance(op, DecodeImage):
            info["channel_order"] = "RGB" if op.to_rgb else "BGR"
            info["layout"] = "CHW" if op.channel_first else "HWC"
        elif isinstance(op, ResizeImage):
            info["resize_short"] = op.resize_short
            info["resize_size"] = list(op.size) if op.size is not None else None
        elif isinstance(op, CropImage):
            info["crop_size"] = [op.width, op.height]
        elif isinstance(op, NormalizeImage):
            info.update(mean=op.mean.tolist(), std=op.std.tolist(), scale=op.scale)
        elif isinstance(op, ToCHWImage):
            info["layout"] = "CHW"
    return info
