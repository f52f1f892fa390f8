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

A bad op argument is a ``ConfigError`` when the pipeline is built. At run time, an op that cannot handle
an image raises ``TransformError`` (an ``InputError`` naming the file and the op); an input that is not
a readable image, or one with more pixels than ``MAX_IMAGE_PIXELS`` (as decoded or as an op would make it),
raises ``ImageDecodeError`` (or ``OSError``), which callers skip.
"""
import io
import logging
import math
import os
import re
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ConfigError, InputError, check_choice, choice_error, is_int, is_number, short_repr
from ..fileio import read_regular_file

__all__ = [
    "ImageDecodeError", "ImageTooLargeError", "TransformError", "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS",
    "read_image_file", "DecodeImage", "RandCropImage", "RandFlipImage", "ResizeImage",
    "CropImage", "NormalizeImage", "ToCHWImage", "Compose", "parse_scale",
]

logger = logging.getLogger("paddle_resnet")

_INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX, "area": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING,
}
# PIL names the stream it read from; for bytes read into memory that is this, which tells the user nothing.
_BYTESIO_REPR = re.compile(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>")

MAX_IMAGE_BYTES = 256 << 20  # an image file larger than this is refused unread (a 2 GB TIFF, /dev/zero behind a link)
# Pixels an image may have, as decoded and as any op would make it: PIL's default decompression-bomb threshold,
# held here so that a program raising PIL's does not raise ours (3 channels: 268 MB of uint8, 1 GB as float32).
MAX_IMAGE_PIXELS = 89_478_485
# What PIL raises for a broken file besides OSError: SyntaxError for a bad PNG chunk, TypeError for a TIFF whose
# strip offsets are floats, struct.error, EOFError, IndexError, KeyError, ZeroDivisionError for damaged headers.
_PIL_DECODE_ERRORS = (OSError, SyntaxError, ValueError, TypeError, struct.error, EOFError, IndexError, KeyError,
                      ZeroDivisionError, Image.DecompressionBombError, Image.DecompressionBombWarning)


class ImageDecodeError(InputError):
    """The input cannot be used as an image (empty, truncated, corrupt, another file type, not a regular file,
    too large); callers skip it with this message as the reason."""


class ImageTooLargeError(ImageDecodeError):
    """An image, or what an op would make of it, has more pixels than ``MAX_IMAGE_PIXELS``."""


class TransformError(InputError):
    """An op could not handle an image: ``"<path>: CropImage failed: <why>"``."""

    def __init__(self, path, op_name, reason):
        self.path, self.op_name = path, op_name
        super().__init__(_named(path, f"{op_name} failed: {reason}"))


def _named(path, message):
    return f"{os.fspath(path)}: {message}" if path is not None else message


def _flag(value, op, name):
    if not isinstance(value, bool):
        raise ConfigError(f"{op}: {name} must be true or false, got {value!r}")
    return value


def _resample(interpolation, op):
    name = "bilinear" if interpolation is None else str(interpolation).lower()
    return _INTERPOLATIONS[check_choice(f"{op}: interpolation", name, list(_INTERPOLATIONS))]


_WARNED = set()  # (op, what) of the one-time warnings below


def _check_backend(backend, op):
    """PaddleClas's ``backend: cv2 | pil``: images are resized with PIL here either way."""
    check_choice(f"{op}: backend", backend, ("pil", "cv2"))
    if backend == "cv2" and (op, "backend") not in _WARNED:
        _WARNED.add((op, "backend"))
        logger.warning(f"{op}: backend cv2 has no effect: this suite resizes with PIL (no OpenCV dependency), "
                       f"so resized pixels differ slightly from PaddleClas's cv2 resize")


MAX_SIDE = 8192  # pixels: an image side beyond this is a typo, and a 3-channel float32 copy would take >800 MB


def _is_side(value):
    return is_int(value) and 0 < value <= MAX_SIDE


def _pair(size, op):
    """``size`` as (width, height): an int means a square, a pair is [width, height]."""
    if _is_side(size):
        return int(size), int(size)
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(_is_side(s) for s in size):
        return int(size[0]), int(size[1])
    raise ConfigError(f"{op}: size must be an int from 1 to {MAX_SIDE} or [width, height] of such ints, "
                      f"got {size!r}")


def _range(value, default, op, name, upper=None):
    """``[min, max]`` numbers with 0 < min <= max (<= upper)."""
    if value is None:
        return default
    if (isinstance(value, (list, tuple)) and len(value) == 2 and all(is_number(v) for v in value)
            and 0 < value[0] <= value[1] and (upper is None or value[1] <= upper)):
        return float(value[0]), float(value[1])
    bound = f" <= {upper}" if upper is not None else ""
    raise ConfigError(f"{op}: {name} must be [min, max] with 0 < min <= max{bound}, got {value!r}")


def _resize(img, width, height, resample):
    if img.shape[1] == width and img.shape[0] == height:
        return img
    if img.ndim == 3 and img.shape[2] == 1:  # PIL has no HxWx1 image: resize the plane, keep the axis
        return _resize(img[:, :, 0], width, height, resample)[:, :, None]
    return np.asarray(Image.fromarray(img).resize((width, height), resample))


def parse_scale(scale):
    """A number, or a string "a" or "a/b" (as written in YAML configs: ``scale: 1.0/255.0``); never eval'd."""
    if is_number(scale, finite=True):
        return float(scale)
    number = r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*"
    match = re.fullmatch(number + f"(?:/{number})?", str(scale)) if isinstance(scale, str) else None
    if not match:
        raise ConfigError(f"NormalizeImage: scale must be a number or 'a/b', got {scale!r}")
    numerator, denominator = match.groups()
    if denominator is not None and float(denominator) == 0:
        raise ConfigError(f"NormalizeImage: scale {scale!r} divides by zero")
    value = float(numerator) / (float(denominator) if denominator is not None else 1.0)
    if not math.isfinite(value):
        raise ConfigError(f"NormalizeImage: scale {short_repr(scale)} is not a finite number")
    return value


def _to_uint8_by_value(pil_image):
    """A 16-bit, 32-bit int or float single-band image -> uint8 HxW by value: 16-bit ``v >> 8`` (65535 -> 255),
    mode I read as the 16-bit values PIL stores there, float 0..1 -> 0..255; outside values are clipped."""
    values = np.asarray(pil_image)
    if pil_image.mode == "F":
        # Clip before scaling: 3e38 * 255 would overflow to inf (and warn on every such image).
        return np.rint(np.clip(np.nan_to_num(values, posinf=1.0, neginf=0.0), 0.0, 1.0) * 255.0).astype(np.uint8)
    if values.dtype.kind == "u" and values.dtype.itemsize == 2:  # I;16 and I;16B: no wider copy
        return (values >> 8).astype(np.uint8)
    return (np.clip(values, 0, 65535) >> 8).astype(np.uint8)


def _is_high_depth(pil_image):
    return pil_image.mode.startswith("I") or pil_image.mode == "F"


def read_image_file(path):
    """The bytes of an image file. Anything but a regular file of at most ``MAX_IMAGE_BYTES`` (a FIFO, which would
    block, a device such as /dev/zero behind a link, a folder, a larger file) is an ``ImageDecodeError`` naming
    it, read no further; a missing file stays a ``MissingFileError`` (an ``OSError``)."""
    if "\0" in os.fsdecode(path):
        raise ImageDecodeError(f"image {short_repr(os.fsdecode(path))}: the path holds a NUL byte")
    try:
        return read_regular_file(path, MAX_IMAGE_BYTES, "image")
    except InputError as error:
        raise ImageDecodeError(str(error)) from None


def _check_pixels(width, height, what):
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageTooLargeError(f"{what} would give {width}x{height} pixels, more than the "
                                 f"{MAX_IMAGE_PIXELS:,} allowed")


# The raster formats an image data set holds. Not EPS/PS/PDF: PIL hands those to Ghostscript, an external
# program, whatever the file's name says.
Image.init()  # registers every plugin, so the names below resolve (open() only pre-loads five)
IMAGE_FORMATS = tuple(name for name in ("JPEG", "MPO", "PNG", "BMP", "DIB", "GIF", "TIFF", "WEBP", "PPM", "TGA", "ICO")
                      if name in Image.OPEN)


def _open_image(data):
    """``Image.open`` (the header only) of a file of at most ``MAX_IMAGE_PIXELS``, checked before any decoding."""
    # PIL only warns about an image above its threshold (ours) and decodes it: make the warning an error.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        pil_image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    if pil_image.width * pil_image.height > MAX_IMAGE_PIXELS:  # PIL's own threshold may have been raised
        pil_image.close()
        raise ImageTooLargeError(f"image of {pil_image.width}x{pil_image.height} pixels, more than the "
                                 f"{MAX_IMAGE_PIXELS:,} allowed")
    return pil_image


class DecodeImage:
    """Encoded bytes, a file path, a PIL image or a uint8 HWC array -> uint8 HWC array of ``channels`` (3 or 1).

    With ``channels: 3`` grayscale, palette and RGBA images are converted to RGB, so a grayscale data set
    such as MNIST works with ImageNet configs; ``channels: 1`` gives HxWx1 grayscale, for models built
    with ``in_channels: 1``. 16-bit, 32-bit and float images are scaled to 8 bits by value (16-bit:
    ``v >> 8``; float: 0..1), and the EXIF orientation is applied as ``PIL.ImageOps.exif_transpose``
    (to files and PIL images, not to arrays). ``to_rgb`` keeps PaddleClas's meaning: True gives RGB,
    False the BGR order that PaddleClas's cv2 decoder produces (for configs whose mean/std are written
    in BGR). ``channel_first`` returns CHW instead of HWC.
    """

    def __init__(self, to_rgb=True, channel_first=False, channels=3):
        self.to_rgb = _flag(to_rgb, "DecodeImage", "to_rgb")
        self.channel_first = _flag(channel_first, "DecodeImage", "channel_first")
        if not (is_int(channels) and channels in (1, 3)):
            raise choice_error("DecodeImage: channels", channels, (1, 3))
        self.channels = int(channels)

    def __call__(self, img, rng=None):
        image = self._decode(img)
        if not self.to_rgb and self.channels == 3:
            image = np.ascontiguousarray(image[:, :, ::-1])
        return image.transpose(2, 0, 1) if self.channel_first else image

    def _decode(self, img):
        if isinstance(img, np.ndarray):
            return self._from_array(img)
        path = None
        if isinstance(img, (str, os.PathLike)):
            path = img
            img = read_image_file(path)
        if isinstance(img, (bytes, bytearray, memoryview)):
            if len(img) == 0:
                raise ImageDecodeError(_named(path, "empty file"))
            try:
                with _open_image(img) as pil_image:
                    return self._from_pil(pil_image)
            except ImageTooLargeError as error:
                raise ImageTooLargeError(_named(path, str(error))) from None
            except UnidentifiedImageError:
                raise ImageDecodeError(_named(path, "cannot decode image: not a file of the formats read ("
                                              + ", ".join(IMAGE_FORMATS) + ")")) from None
            except _PIL_DECODE_ERRORS as error:
                reason = " ".join(_BYTESIO_REPR.sub("", str(error)).split()) or type(error).__name__
                # PIL's own pixel cap is ours too: an ImageTooLargeError (a server answers it 413, not 422)
                too_large = isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning))
                kind = ImageTooLargeError if too_large else ImageDecodeError
                raise kind(_named(path, f"cannot decode image: {reason[:200]}")) from error
        if isinstance(img, Image.Image):
            return self._from_pil(img)
        raise ImageDecodeError(f"cannot decode an object of type {type(img).__name__}")

    def _from_pil(self, pil_image):
        pil_image = ImageOps.exif_transpose(pil_image)
        if _is_high_depth(pil_image):
            gray = _to_uint8_by_value(pil_image)[:, :, None]
            return gray if self.channels == 1 else np.repeat(gray, 3, axis=2)
        if self.channels == 1:
            return np.asarray(pil_image.convert("L"))[:, :, None]
        return np.asarray(pil_image if pil_image.mode == "RGB" else pil_image.convert("RGB"))

    def _from_array(self, img):
        if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
            raise ImageDecodeError(f"expected a uint8 HW or HWC array with 1, 3 or 4 channels, "
                                   f"got {img.dtype} {img.shape}")
        if img.ndim == 2 or img.shape[2] == 1:
            gray = img.reshape(img.shape[0], img.shape[1], 1)
            return gray if self.channels == 1 else np.repeat(gray, 3, axis=2)
        rgb = img if img.shape[2] == 3 else np.ascontiguousarray(img[:, :, :3])
        return np.asarray(Image.fromarray(rgb).convert("L"))[:, :, None] if self.channels == 1 else rgb


class RandCropImage:
    """RandomResizedCrop, PaddleClas's variant: one draw of area fraction in ``scale`` and aspect ratio
    in ``ratio`` (uniform, or log-uniform with ``use_log_aspect``), clipped to fit, then resize to ``size``."""

    def __init__(self, size, scale=None, ratio=None, interpolation=None, use_log_aspect=False, backend="pil"):
        self.width, self.height = _pair(size, "RandCropImage")
        _check_backend(backend, "RandCropImage")
        self.scale = _range(scale, (0.08, 1.0), "RandCropImage", "scale", upper=1)
        self.ratio = _range(ratio, (3.0 / 4.0, 4.0 / 3.0), "RandCropImage", "ratio")
        self.resample = _resample(interpolation, "RandCropImage")
        self.use_log_aspect = _flag(use_log_aspect, "RandCropImage", "use_log_aspect")

    def __call__(self, img, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        img_h, img_w = img.shape[:2]
        if self.use_log_aspect:
            aspect = math.exp(rng.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
        else:
            aspect = rng.uniform(*self.ratio)
        # The largest area fraction whose crop of this aspect still fits inside the image; PaddleClas's arithmetic,
        # so that the same draws give the same crop (tests/test_augment.py).
        bound = min((float(img_w) / img_h) / aspect, (float(img_h) / img_w) * aspect)
        area = img_w * img_h * rng.uniform(min(self.scale[0], bound), min(self.scale[1], bound))
        w = min(img_w, max(1, int(math.sqrt(area * aspect))))
        h = min(img_h, max(1, int(math.sqrt(area / aspect))))
        x = int(rng.integers(0, img_w - w + 1))
        y = int(rng.integers(0, img_h - h + 1))
        return _resize(img[y:y + h, x:x + w], self.width, self.height, self.resample)


class RandFlipImage:
    """Flip with probability 1/2; ``flip_code`` as cv2.flip: 1 horizontal, 0 vertical, -1 both."""

    def __init__(self, flip_code=1):
        if not (is_int(flip_code) and flip_code in (1, 0, -1)):
            raise choice_error("RandFlipImage: flip_code", flip_code, (1, 0, -1))
        self.flip_code = int(flip_code)

    def __call__(self, img, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        if rng.integers(0, 2) == 0:
            return img
        axes = {1: (1,), 0: (0,), -1: (0, 1)}[self.flip_code]
        return np.ascontiguousarray(np.flip(img, axis=axes))


class ResizeImage:
    """Resize so the short side is ``resize_short`` (aspect kept, PaddleClas rounding), or to ``size``."""

    def __init__(self, size=None, resize_short=None, interpolation=None, backend="pil"):
        _check_backend(backend, "ResizeImage")
        if (size is None) == (resize_short is None):
            given = "both" if size is not None else "neither"
            raise ConfigError(f"ResizeImage: give exactly one of size or resize_short, got {given}")
        self.size = _pair(size, "ResizeImage") if size is not None else None
        if resize_short is not None and not _is_side(resize_short):
            raise ConfigError(f"ResizeImage: resize_short must be an int from 1 to {MAX_SIDE}, got {resize_short!r}")
        self.resize_short = int(resize_short) if resize_short is not None else None
        self.resample = _resample(interpolation, "ResizeImage")

    def __call__(self, img, rng=None):
        if self.size is not None:
            return _resize(img, *self.size, self.resample)
        img_h, img_w = img.shape[:2]
        percent = self.resize_short / min(img_w, img_h)
        width, height = int(round(img_w * percent)), int(round(img_h * percent))
        # A sliver (1x4000000) scaled to a short side of 256 would be 256x1024000000: refused before allocating.
        _check_pixels(width, height, f"resizing {img_w}x{img_h} to short side {self.resize_short}")
        return _resize(img, width, height, self.resample)


class CropImage:
    """Center crop to ``size`` (int or [width, height])."""

    def __init__(self, size):
        self.width, self.height = _pair(size, "CropImage")

    def __call__(self, img, rng=None):
        img_h, img_w = img.shape[:2]
        if img_w < self.width or img_h < self.height:
            raise InputError(f"image {img_w}x{img_h} is smaller than the crop {self.width}x{self.height}; "
                             f"resize it first (ResizeImage)")
        x, y = (img_w - self.width) // 2, (img_h - self.height) // 2
        return img[y:y + self.height, x:x + self.width]


def _per_channel(values, default, name, nonzero=False):
    if values is None:
        return np.asarray(default, dtype=np.float32)
    if (isinstance(values, (list, tuple)) and values and all(is_number(v, finite=True) for v in values)
            and not (nonzero and any(v == 0 for v in values))):
        return np.asarray(values, dtype=np.float32)
    kind = "finite non-zero numbers" if nonzero else "finite numbers"
    raise ConfigError(f"NormalizeImage: {name} must be a list of {kind}, one per channel, got {short_repr(values)}")


class NormalizeImage:
    """``(img * scale - mean) / std`` in float32. ``order`` is the input layout: '' or 'hwc', or 'chw'.
    One mean and std value applies to every channel.

    ``channel_num: 4`` (PaddleClas's ``*_ultra`` configs) appends an all-zero fourth channel to a 3-channel image,
    for a model built with 4 input channels (``Arch.input_image_channel: 4``). ``output_fp16`` is accepted and
    changes nothing: images stay float32 (on a GPU, AMP casts them; on the CPU training is float32)."""

    def __init__(self, scale=None, mean=None, std=None, order="chw", channel_num=3, output_fp16=False):
        if not (is_int(channel_num) and channel_num in (3, 4)):
            raise choice_error("NormalizeImage: channel_num", channel_num, (3, 4))
        self.channel_num = int(channel_num)
        _flag(output_fp16, "NormalizeImage", "output_fp16")
        self.scale = parse_scale(scale) if scale is not None else 1.0 / 255.0
        self.mean = _per_channel(mean, [0.485, 0.456, 0.406], "mean")
        self.std = _per_channel(std, [0.229, 0.224, 0.225], "std", nonzero=True)
        if self.mean.shape != self.std.shape:
            raise ConfigError(f"NormalizeImage: mean and std must have one value per channel each, "
                              f"got {len(self.mean)} and {len(self.std)} values")
        self.order = check_choice("NormalizeImage: order", str(order).lower(), ("", "hwc", "chw"))
        shape = (-1, 1, 1) if self.order == "chw" else (1, 1, -1)
        self._mean, self._std = self.mean.reshape(shape), self.std.reshape(shape)
        # Every uint8 value per channel, through the same float32 steps: [channel][value] -> normalized value.
        values = np.repeat(np.arange(256).reshape(256, 1), len(self.mean), axis=1)
        self._table = np.ascontiguousarray(self._normalized(values, self.mean, self.std).T)

    def __call__(self, img, rng=None):
        self._check(img)
        normalized = self._normalized(img, self._mean, self._std)
        if self.channel_num == 4:
            if normalized.shape[self._channel_axis] != 3:
                raise InputError(f"channel_num 4 pads a 3-channel image, got shape {list(img.shape)}")
            zeros_shape = list(normalized.shape)
            zeros_shape[self._channel_axis] = 1
            normalized = np.concatenate((normalized, np.zeros(zeros_shape, np.float32)), axis=self._channel_axis)
        return normalized

    @property
    def _channel_axis(self):
        return 0 if self.order == "chw" else 2

    def to_chw(self, img):
        """``ToCHWImage()(self(img))`` for an HWC image, the same values; a uint8 one (what decoding, resizing
        and cropping give) by looking each value up in a table per channel, several times faster."""
        if self.order == "chw" or img.dtype != np.uint8 or self.channel_num == 4:
            return ToCHWImage()(self(img))
        self._check(img)
        chw = np.empty((img.shape[2], *img.shape[:2]), np.float32)
        for channel in range(img.shape[2]):
            np.take(self._table[channel % len(self._table)], img[:, :, channel], out=chw[channel])
        return chw

    def _check(self, img):
        channels = img.shape[0] if self.order == "chw" else img.shape[-1]
        if img.ndim != 3 or len(self.mean) not in (1, channels):
            raise InputError(f"image of shape {list(img.shape)} ({self.order or 'hwc'}) does not have the "
                             f"{len(self.mean)} channels of mean and std; match DecodeImage's channels to them")

    def _normalized(self, img, mean, std):
        normalized = img.astype(np.float32)  # a new array: the steps below work in place, in the same order
        normalized *= np.float32(self.scale)
        normalized -= mean
        normalized /= std
        return normalized


class ToCHWImage:
    """HWC -> CHW."""

    def __call__(self, img, rng=None):
        return np.ascontiguousarray(img.transpose(2, 0, 1))


class Compose:
    """Apply ops in order; ``rng`` (default: a fresh unseeded Generator) is handed to every op.

    An op's InputError becomes a TransformError naming the op (and the file, when given a path);
    an unreadable input's ImageDecodeError or OSError passes through for the caller to skip (an op's
    ImageDecodeError, e.g. ``ImageTooLargeError``, named after the file and the op).
    """

    def __init__(self, ops):
        self.ops = list(ops)

    def __call__(self, img, rng=None):
        path = img if isinstance(img, (str, os.PathLike)) else None
        rng = rng if rng is not None else np.random.default_rng()
        for name, step in fused_steps(self.ops):
            try:
                img = step(img, rng)
            except ImageDecodeError as error:
                if path is None or os.fspath(path) in str(error):
                    raise
                raise type(error)(_named(path, f"{name}: {error}")) from None
            except InputError as error:
                raise TransformError(path, name, error) from None
        return img

    def __repr__(self):
        return f"Compose({[type(op).__name__ for op in self.ops]})"


def fused_steps(ops):
    """-> [(name, op)]: a NormalizeImage on HWC followed by ToCHWImage is one step (``NormalizeImage.to_chw``)."""
    steps, index = [], 0
    while index < len(ops):
        op = ops[index]
        if (isinstance(op, NormalizeImage) and op.order != "chw" and index + 1 < len(ops)
                and isinstance(ops[index + 1], ToCHWImage)):
            steps.append(("NormalizeImage", lambda img, rng, op=op: op.to_chw(img)))
            index += 2
        else:
            steps.append((type(op).__name__, op))
            index += 1
    return steps
