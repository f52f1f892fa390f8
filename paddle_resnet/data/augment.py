"""Augmentation ops under PaddleClas 2.6's names and arguments, in PIL + numpy (no OpenCV).

Each op is ``op(img, rng)`` like the ops of ``transforms.py``: every random draw comes from ``rng`` (a numpy
``Generator`` seeded per sample by the dataset), in the order PaddleClas's op draws them, so that with the same
draws both give the same pixels (tests/test_augment.py injects the draws on both sides). The draws map as
``random.random() -> rng.random()``, ``random.randint(a, b) -> rng.integers(a, b + 1)``,
``random.choice(seq) / np.random.choice(seq) -> seq[rng.integers(0, len(seq))]``,
``random.uniform(a, b) -> rng.uniform(a, b)``, ``np.random.normal(size) -> rng.normal(size=size)``,
``random.shuffle`` -> Python's own Fisher-Yates with ``rng.integers``.

``TimmAutoAugment`` (timm's schemes) is in timm_augment.py. Inputs follow PaddleClas's recipes
(ppcls/configs/ImageNet/DataAugment/*.yaml): the policy ops (AutoAugment, RandAugment, TimmAutoAugment,
ColorJitter, RandomRotation, RandomResizedCrop) take the decoded uint8 HWC image; RandomErasing,
Cutout, GridMask and HideAndSeek come after ``NormalizeImage`` (float32, HWC with ``order: ''``, or CHW when the
pipeline already transposed: ``build_transforms`` tells them the layout). PaddleClas's known bugs are matched by
default and named in each docstring (docs/paddleclas_recipes.md lists them).
"""
import logging
import math

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from ..errors import ConfigError, InputError, choice_error, is_int, is_number, short_repr
from .transforms import MAX_SIDE, _INTERPOLATIONS, _flag, _pair, _range, _resample, _resize

__all__ = ["AutoAugment", "RandAugment", "RandomErasing", "Cutout", "GridMask", "HideAndSeek", "ColorJitter",
           "RandomRotation", "RandomResizedCrop"]

logger = logging.getLogger("paddle_resnet")

MAX_LAYERS = 10  # RandAugment num_layers
MAX_MAGNITUDE = 10  # RandAugment magnitude (PaddleClas's max_level)
MAX_ATTEMPTS = 1000  # RandomErasing attempt
MAX_HOLES = 100  # Cutout n_holes
_WARNED = set()  # ops whose one-time warning was given


# ---------------------------------------------------------------------------------------------- argument checks
def _number(value, op, name, low=None, high=None, fraction=False):
    """A number in [low, high]; ``fraction``: also a string "a" or "a/b" (PaddleClas eval()s such strings)."""
    if fraction and isinstance(value, str):
        parts = value.split("/")
        try:
            numbers = [float(p) for p in parts] if len(parts) <= 2 else None
        except ValueError:
            numbers = None
        if numbers and all(math.isfinite(n) for n in numbers) and (len(numbers) == 1 or numbers[1] != 0):
            value = numbers[0] / (numbers[1] if len(numbers) == 2 else 1.0)
    if is_number(value, finite=True) and (low is None or value >= low) and (high is None or value <= high):
        return float(value)
    bounds = f" from {low} to {high}" if low is not None and high is not None else (
        f" >= {low}" if low is not None else "")
    raise ConfigError(f"{op}: {name} must be a number{bounds}, got {short_repr(value)}")


def _int(value, op, name, low, high):
    if is_int(value) and low <= value <= high:
        return int(value)
    raise ConfigError(f"{op}: {name} must be an int from {low} to {high}, got {short_repr(value)}")


def _color(value, op, name, allow_none=False):
    """A fill colour: one number or a list of 1 or 3 numbers."""
    if value is None and allow_none:
        return None
    if is_number(value, finite=True):
        return (float(value),)
    if isinstance(value, (list, tuple)) and len(value) in (1, 3) and all(is_number(v, finite=True) for v in value):
        return tuple(float(v) for v in value)
    none = ", or none" if allow_none else ""
    raise ConfigError(f"{op}: {name} must be a number or a list of 3 numbers{none}, got {short_repr(value)}")


def _pick(seq, rng):
    return seq[int(rng.integers(0, len(seq)))]


def _sign(rng):
    return _pick((-1, 1), rng)


# ---------------------------------------------------------------------------------------------- PIL helpers
def _to_pil(img, op):
    if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] in (1, 3)):
        what = f"{img.dtype} {list(img.shape)}" if isinstance(img, np.ndarray) else type(img).__name__
        raise InputError(f"{op} takes the decoded uint8 HWC image (put it before NormalizeImage), got {what}")
    return Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else np.ascontiguousarray(img))


def _from_pil(pil, like):
    out = np.asarray(pil)
    return out[:, :, None] if like.shape[2] == 1 else out


def _fill_for(pil, fillcolor):
    """PIL's fill for the image's mode: a tuple for RGB, an int for L."""
    values = tuple(int(v) for v in fillcolor)
    return values[0] if pil.mode == "L" else (values * 3 if len(values) == 1 else values)


def _rotate_gray_fill(pil, degrees):
    """PaddleClas's ``rotate_with_fill``: rotate counter-clockwise (nearest), corners filled with gray 128 through
    an RGBA composite (its ``fillcolor`` is not used here)."""
    rotated = pil.convert("RGBA").rotate(degrees)
    return Image.composite(rotated, Image.new("RGBA", rotated.size, (128,) * 4), rotated).convert(pil.mode)


def _policy_op(name, pil, magnitude, fillcolor, rng):
    """One AutoAugment/RandAugment operation of PaddleClas's table (the sign draw, where it has one, from rng)."""
    if name in ("shearX", "shearY"):
        shear = magnitude * _sign(rng)
        matrix = (1, shear, 0, 0, 1, 0) if name == "shearX" else (1, 0, 0, shear, 1, 0)
        return pil.transform(pil.size, Image.AFFINE, matrix, Image.BICUBIC, fillcolor=_fill_for(pil, fillcolor))
    if name in ("translateX", "translateY"):
        if name == "translateX":
            matrix = (1, 0, magnitude * pil.size[0] * _sign(rng), 0, 1, 0)
        else:
            matrix = (1, 0, 0, 0, 1, magnitude * pil.size[1] * _sign(rng))
        return pil.transform(pil.size, Image.AFFINE, matrix, fillcolor=_fill_for(pil, fillcolor))
    if name == "rotate":
        return _rotate_gray_fill(pil, magnitude)
    enhancers = {"color": ImageEnhance.Color, "contrast": ImageEnhance.Contrast,
                 "sharpness": ImageEnhance.Sharpness, "brightness": ImageEnhance.Brightness}
    if name in enhancers:
        return enhancers[name](pil).enhance(1 + magnitude * _sign(rng))
    if name == "posterize":
        # 0 bits (RandAugment below magnitude 2.5) keeps nothing: black. Pillow >= 10 refuses bits=0, so
        # PaddleClas's op raises there.
        bits = int(magnitude)
        return ImageOps.posterize(pil, bits) if bits > 0 else Image.new(pil.mode, pil.size)
    if name == "solarize":
        return ImageOps.solarize(pil, magnitude)
    if name == "autocontrast":
        return ImageOps.autocontrast(pil)
    if name == "equalize":
        return ImageOps.equalize(pil)
    if name == "invert":
        return ImageOps.invert(pil)
    raise AssertionError(name)


# ---------------------------------------------------------------------------------------------- AutoAugment
# PaddleClas's ImageNetPolicy (ops/autoaugment.py): 25 sub-policies (its docstring says 24; the last three repeat
# earlier ones), each (p1, op1, magnitude index 1, p2, op2, magnitude index 2).
IMAGENET_POLICY = (
    (0.4, "posterize", 8, 0.6, "rotate", 9), (0.6, "solarize", 5, 0.6, "autocontrast", 5),
    (0.8, "equalize", 8, 0.6, "equalize", 3), (0.6, "posterize", 7, 0.6, "posterize", 6),
    (0.4, "equalize", 7, 0.2, "solarize", 4), (0.4, "equalize", 4, 0.8, "rotate", 8),
    (0.6, "solarize", 3, 0.6, "equalize", 7), (0.8, "posterize", 5, 1.0, "equalize", 2),
    (0.2, "rotate", 3, 0.6, "solarize", 8), (0.6, "equalize", 8, 0.4, "posterize", 6),
    (0.8, "rotate", 8, 0.4, "color", 0), (0.4, "rotate", 9, 0.6, "equalize", 2),
    (0.0, "equalize", 7, 0.8, "equalize", 8), (0.6, "invert", 4, 1.0, "equalize", 8),
    (0.6, "color", 4, 1.0, "contrast", 8), (0.8, "rotate", 8, 1.0, "color", 2),
    (0.8, "color", 8, 0.8, "solarize", 7), (0.4, "sharpness", 7, 0.6, "invert", 8),
    (0.6, "shearX", 5, 1.0, "equalize", 9), (0.4, "color", 0, 0.6, "equalize", 3),
    (0.4, "equalize", 7, 0.2, "solarize", 4), (0.6, "solarize", 5, 0.6, "autocontrast", 5),
    (0.6, "invert", 4, 1.0, "equalize", 8), (0.6, "color", 4, 1.0, "contrast", 8),
    (0.8, "equalize", 8, 0.6, "equalize", 3),
)
# Magnitude of index 0..9 per operation, computed as PaddleClas computes them.
AUTOAUGMENT_RANGES = {
    "shearX": np.linspace(0, 0.3, 10), "shearY": np.linspace(0, 0.3, 10),
    "translateX": np.linspace(0, 150 / 331, 10), "translateY": np.linspace(0, 150 / 331, 10),
    "rotate": np.linspace(0, 30, 10), "color": np.linspace(0.0, 0.9, 10),
    "posterize": np.round(np.linspace(8, 4, 10), 0).astype(np.int_), "solarize": np.linspace(256, 0, 10),
    "contrast": np.linspace(0.0, 0.9, 10), "sharpness": np.linspace(0.0, 0.9, 10),
    "brightness": np.linspace(0.0, 0.9, 10),
    "autocontrast": [0] * 10, "equalize": [0] * 10, "invert": [0] * 10,
}


class AutoAugment:
    """PaddleClas's ``AutoAugment`` (ImageNetPolicy): one of 25 sub-policies chosen uniformly; each applies its two
    operations with their probabilities. Draws: policy index, then per operation ``rng.random()`` and, for the
    signed ones (shear, translate, color, contrast, sharpness, brightness), a sign.

    PaddleClas quirks kept: ``rotate`` always turns counter-clockwise (no random sign) and fills with gray 128
    whatever ``fillcolor`` is; ``fillcolor`` fills only shear/translate."""

    def __init__(self, fillcolor=(128, 128, 128)):
        self.fillcolor = _color(fillcolor, "AutoAugment", "fillcolor")

    def __call__(self, img, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        pil = _to_pil(img, "AutoAugment")
        p1, op1, m1, p2, op2, m2 = IMAGENET_POLICY[int(rng.integers(0, len(IMAGENET_POLICY)))]
        for p, name, index in ((p1, op1, m1), (p2, op2, m2)):
            if rng.random() < p:
                pil = _policy_op(name, pil, AUTOAUGMENT_RANGES[name][index], self.fillcolor, rng)
        return _from_pil(pil, img)


# ---------------------------------------------------------------------------------------------- RandAugment
RANDAUGMENT_OPS = ("shearX", "shearY", "translateX", "translateY", "rotate", "color", "posterize", "solarize",
                   "contrast", "sharpness", "brightness", "autocontrast", "equalize", "invert")


class RandAugment:
    """PaddleClas's ``RandAugment`` (ops/randaugment.py): ``num_layers`` times, one of 14 operations chosen
    uniformly, at the fixed level ``magnitude / 10``.

    PaddleClas quirks kept: posterize keeps ``int(4 * magnitude / 10)`` bits (2 bits at magnitude 5; 0 bits, a
    black image, below 2.5, where PaddleClas raises on Pillow >= 10); rotate always turns counter-clockwise by
    ``30 * level`` degrees, filled with gray 128; solarize's threshold is ``256 * level``."""

    def __init__(self, num_layers=2, magnitude=5, fillcolor=(128, 128, 128)):
        self.num_layers = _int(num_layers, "RandAugment", "num_layers", 0, MAX_LAYERS)
        self.magnitude = _number(magnitude, "RandAugment", "magnitude", 0, MAX_MAGNITUDE)
        self.fillcolor = _color(fillcolor, "RandAugment", "fillcolor")
        level = self.magnitude / 10
        self.levels = {"shearX": 0.3 * level, "shearY": 0.3 * level, "translateX": 150.0 / 331 * level,
                       "translateY": 150.0 / 331 * level, "rotate": 30 * level, "color": 0.9 * level,
                       "posterize": int(4.0 * level), "solarize": 256.0 * level, "contrast": 0.9 * level,
                       "sharpness": 0.9 * level, "brightness": 0.9 * level,
                       "autocontrast": 0, "equalize": 0, "invert": 0}

    def __call__(self, img, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        pil = _to_pil(img, "RandAugment")
        for _ in range(self.num_layers):
            name = _pick(RANDAUGMENT_OPS, rng)
            pil = _policy_op(name, pil, self.levels[name], self.fillcolor, rng)
        return _from_pil(pil, img)


# ---------------------------------------------------------------------------------------------- erasing ops
def _layout(img, chw, op):
    """(height, width, channels) of an HWC or CHW array."""
    if not isinstance(img, np.ndarray) or img.ndim != 3:
        what = f"{img.dtype} {list(img.shape)}" if isinstance(img, np.ndarray) else type(img).__name__
        raise InputError(f"{op} takes an HWC or CHW image array, got {what}")
    return (img.shape[1], img.shape[2], img.shape[0]) if chw else img.shape


class RandomErasing:
    """PaddleClas's ``RandomErasing`` (ops/random_erasing.py): with probability ``EPSILON``, up to ``attempt`` tries
    of an area fraction in [sl, sh] and an aspect ratio in [r1, 1/r1] (log-uniform with ``use_log_aspect``); the
    first box strictly inside the image is filled: ``const`` with ``mean``, ``rand`` with one normal draw per
    channel, ``pixel`` with a normal draw per value. Works on HWC (PaddleClas's recipes put it after
    ``NormalizeImage`` with ``order: ''``) or CHW; the image is not modified in place.

    PaddleClas quirks kept: ``rand`` draws 3 values whatever the channel count; numbers may be strings such as
    "1/3" (PaddleClas eval()s them; here only "a" or "a/b" is read)."""

    chw = False  # set by build_transforms when the pipeline is CHW here

    def __init__(self, EPSILON=0.5, sl=0.02, sh=0.4, r1=0.3, mean=(0., 0., 0.), attempt=100, use_log_aspect=False,
                 mode="const"):
        op = "RandomErasing"
        self.EPSILON = _number(EPSILON, op, "EPSILON", 0, 1, fraction=True)
        self.sl = _number(sl, op, "sl", 0, 1, fraction=True)
        self.sh = _number(sh, op, "sh", self.sl, 1, fraction=True)
        r1 = _number(r1, op, "r1", 0, None, fraction=True)
        if r1 == 0:
            raise ConfigError(f"{op}: r1 must be a number > 0, got {short_repr(r1)}")
        self.use_log_aspect = _flag(use_log_aspect, op, "use_log_aspect")
        self.r1 = (math.log(r1), math.log(1 / r1)) if self.use_log_aspect else (r1, 1 / r1)
        self.attempt = _int(attempt, op, "attempt", 0, MAX_ATTEMPTS)
        if mode not in ("const", "rand", "pixel"):
            raise choice_error(f"{op}: mode", mode, ("const", "rand", "pixel"))
        self.mode = mode
        self.mean = np.asarray(_color(mean, op, "mean"), dtype=np.float64)

    def _pixels(self, h, w, c, rng):
        if self.mode == "rand":
            return rng.normal(size=(3, 1, 1) if self.chw else (1, 1, 3))
        if self.mode == "pixel":
            return rng.normal(size=(c, h, w) if self.chw else (h, w, c))
        if self.mean.size != c:
            raise InputError(f"RandomErasing: mean has {self.mean.size} values, the image {c} channels")
        return self.mean.reshape((c, 1, 1) if self.chw else (1, 1, c))

    def __call__(self, img, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        img_h, img_w, img_c = _layout(img, self.chw, "RandomErasing")
        if rng.random() > self.EPSILON:
            return img
        for _ in range(self.attempt):
            target_area = rng.uniform(self.sl, self.sh) * img_h * img_w
            aspect = rng.uniform(*self.r1)
            if self.use_log_aspect:
                aspect = math.exp(aspect)
            h = int(round(math.sqrt(target_area * aspect)))
            w = int(round(math.sqrt(target_area / aspect)))
            if w < img_w and h < img_h:
                pixels = self._pixels(h, w, img_c, rng)
                top = int(rng.integers(0, img_h - h + 1))
                left = int(rng.integers(0, img_w - w + 1))
                out = img.copy()
                if img_c == 3:
                    region = (slice(None), slice(top, top + h), slice(left, left + w)) if self.chw else \
                        (slice(top, top + h), slice(left, left + w), slice(None))
                    out[region] = pixels
                elif self.chw:
                    out[0, top:top + h, left:left + w] = pixels[0]
                else:
                    out[top:top + h, left:left + w, 0] = pixels[:, :, 0]
                return out
        return img


class Cutout:
    """PaddleClas's ``Cutout`` (ops/cutout.py): ``n_holes`` squares of side about ``length`` centred at a uniform
    pixel, clipped to the image; each is filled as cv2.rectangle fills (both corners included, so the square is
    ``length + 1`` pixels wide inside the image) with ``fill_value`` (one value per channel, on the image's
    values as they are: after NormalizeImage, 0 is the mean) or, with ``fill_value: none``, three random ints
    0..255 per hole. HWC (as in PaddleClas's recipes, after ``NormalizeImage`` with ``order: ''``) or CHW.

    PaddleClas 2.6's own Cutout cannot run with a fill value (the default): it never stores ``fill_value`` and
    raises AttributeError, and its rectangle is drawn only in the ``none`` branch; here a fill value fills the
    same rectangle, which is what its code means to do."""

    chw = False

    def __init__(self, n_holes=1, length=112, fill_value=(0, 0, 0)):
        self.n_holes = _int(n_holes, "Cutout", "n_holes", 0, MAX_HOLES)
        self.length = _int(length, "Cutout", "length", 0, MAX_SIDE)
        none = fill_value is None or fill_value == "none"
        self.fill_value = None if none else _color(fill_value, "Cutout", "fill_value", allow_none=True)

    def __call__(self, img, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        h, w, c = _layout(img, self.chw, "Cutout")
        out = img.copy()
        for _ in range(self.n_holes):
            y = int(rng.integers(0, h))
            x = int(rng.integers(0, w))
            y1, y2 = np.clip([y - self.length // 2, y + self.length // 2], 0, h)
            x1, x2 = np.clip([x - self.length // 2, x + self.length // 2], 0, w)
            fill = self.fill_value
            if fill is None:
                fill = tuple(float(rng.integers(0, 256)) for _ in range(3))
            # cv2.rectangle(..., thickness=-1): corners inclusive; a channel beyond the values given gets 0.
            values = np.zeros(c, dtype=np.float64)
            values[:min(c, len(fill))] = fill[:c]
            values = _cast_fill(values, img.dtype)
            if self.chw:
                out[:, y1:y2 + 1, x1:x2 + 1] = values.reshape(c, 1, 1)
            else:
                out[y1:y2 + 1, x1:x2 + 1] = values
        return out


def _cast_fill(values, dtype):
    """What cv2 stores for a fill value: rounded and saturated for uint8, as is for float."""
    if dtype == np.uint8:
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return values.astype(dtype)


class GridMask:
    """PaddleClas's ``GridMask`` (ops/grid.py): a grid of squares (period ``d`` drawn in [d1, d2), kept band
    ``ratio * d``) zeroed (``mode: 1`` inverts the mask), the mask rotated by an int degree below ``rotate``.

    PaddleClas quirk kept by default (``match_paddleclas: true``): its probability is ``prob * min(1, epoch /
    240)`` with an epoch counter (``grid.CURR_EPOCH``) that nothing in PaddleClas advances, so GridMask never
    masks (it draws one number and returns the image): ResNet50_GridMask trains as the baseline. With
    ``match_paddleclas: false`` it masks with probability ``prob``, on the image's own layout (PaddleClas reads
    every array as CHW; after ``NormalizeImage`` with ``order: ''`` the image is HWC)."""

    chw = False

    def __init__(self, d1=96, d2=224, rotate=1, ratio=0.5, mode=0, prob=1.0, match_paddleclas=True):
        self.d1 = _int(d1, "GridMask", "d1", 1, MAX_SIDE)
        self.d2 = _int(d2, "GridMask", "d2", self.d1 + 1, MAX_SIDE)
        self.rotate = _int(rotate, "GridMask", "rotate", 1, 360)
        self.ratio = _number(ratio, "GridMask", "ratio", 0, 1)
        if not (is_int(mode) and mode in (0, 1)):
            raise choice_error("GridMask: mode", mode, (0, 1))
        self.mode = int(mode)
        self.prob = _number(prob, "GridMask", "prob", 0, 1)
        self.match_paddleclas = _flag(match_paddleclas, "GridMask", "match_paddleclas")
        if self.match_paddleclas and "GridMask" not in _WARNED:
            _WARNED.add("GridMask")
            logger.warning("GridMask: as in PaddleClas 2.6 it never masks (its probability ramps with an epoch "
                           "counter PaddleClas never advances); set match_paddleclas: false to mask with "
                           "probability prob")

    def __call__(self, img, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        h, w, _ = _layout(img, self.chw, "GridMask")
        prob = 0.0 if self.match_paddleclas else self.prob
        if rng.random() > prob:
            return img
        hh, ww = int(1.5 * h), int(1.5 * w)
        d = int(rng.integers(self.d1, self.d2))
        band = int(d * self.ratio + 0.5)
        mask = np.ones((hh, ww), np.float32)
        st_h, st_w = int(rng.integers(0, d)), int(rng.integers(0, d))
        for i in range(-1, hh // d + 1):
            start = d * i + st_h
            mask[max(min(start, hh), 0):max(min(start + band, hh), 0), :] = 0
        for i in range(-1, ww // d + 1):
            start = d * i + st_w
            mask[:, max(min(start, ww), 0):max(min(start + band, ww), 0)] = 0
        angle = int(rng.integers(0, self.rotate))
        mask = np.asarray(Image.fromarray(np.uint8(mask)).rotate(angle))
        mask = mask[(hh - h) // 2:(hh - h) // 2 + h, (ww - w) // 2:(ww - w) // 2 + w]
        if self.mode == 1:
            mask = 1 - mask
        mask = mask[None] if self.chw else mask[:, :, None]
        return (img * mask).astype(img.dtype)


class HideAndSeek:
    """PaddleClas's ``HideAndSeek`` (ops/hide_and_seek.py): a grid size from (0, 16, 32, 44, 56) (0: nothing
    hidden), then each grid cell zeroed with probability 1/2 (``random.random() <= 0.5``).

    PaddleClas quirk kept by default (``match_paddleclas: true``): it reads every array as CHW and indexes
    ``img[:, x, y]`` with x running over the width and y over the height. On the HWC image of its recipe (after
    ``NormalizeImage`` with ``order: ''``) that hides, with probability 1/2, only columns 0-2 of every row (the
    "width" it sees is the 3 channels); the remaining draws change nothing. With ``match_paddleclas: false`` it
    hides grid cells of the image's own layout."""

    chw = False
    GRID_SIZES = (0, 16, 32, 44, 56)
    HIDE_PROB = 0.5

    def __init__(self, match_paddleclas=True):
        self.match_paddleclas = _flag(match_paddleclas, "HideAndSeek", "match_paddleclas")

    def __call__(self, img, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        _layout(img, self.chw, "HideAndSeek")
        grid = _pick(self.GRID_SIZES, rng)
        if grid == 0:
            return img
        out = img.copy()
        # PaddleClas's view: (channels, h, w) = shape, cells indexed [:, x, y]; ours: the real layout, [y, x].
        if self.match_paddleclas:
            view, (_, h, w), transposed = out, out.shape, True
        else:
            view = out if self.chw else out.transpose(2, 0, 1)  # a CHW view of the same memory
            (_, h, w), transposed = view.shape, False
        for x in range(0, w, grid):
            for y in range(0, h, grid):
                if rng.random() <= self.HIDE_PROB:
                    x_end, y_end = min(w, x + grid), min(h, y + grid)
                    if transposed:
                        view[:, x:x_end, y:y_end] = 0
                    else:
                        view[:, y:y_end, x:x_end] = 0
        return out


# ---------------------------------------------------------------------------------------------- colour, geometry
class ColorJitter:
    """PaddleClas's ``ColorJitter`` (paddle.vision's, applied with probability ``prob``; PaddleClas's default 2
    means always): brightness, contrast, saturation (PIL ImageEnhance) and hue (HSV shift) in a random order,
    each with a factor drawn from [max(0, 1 - v), 1 + v] ([-v, v] for hue, v <= 0.5); a zero value is skipped
    without a draw. A value may also be [min, max]."""

    def __init__(self, prob=2, brightness=0, contrast=0, saturation=0, hue=0):
        self.prob = _number(prob, "ColorJitter", "prob", 0, None)
        self.ranges = [self._range(brightness, "brightness"), self._range(contrast, "contrast"),
                       self._range(saturation, "saturation"), self._range(hue, "hue", center=0, bound=0.5)]

    @staticmethod
    def _range(value, name, center=1, bound=None):
        if is_number(value, finite=True) and value >= 0 and (bound is None or value <= bound):
            low, high = center - value, center + value
            low = max(low, 0) if center == 1 else low
        elif (isinstance(value, (list, tuple)) and len(value) == 2 and all(is_number(v, finite=True) for v in value)
              and (-bound if bound else 0) <= value[0] <= value[1] <= (bound or 1e6)):
            low, high = float(value[0]), float(value[1])
        else:
            limit = f" up to {bound}" if bound else ""
            raise ConfigError(f"ColorJitter: {name} must be a number >= 0{limit} or [min, max], "
                              f"got {short_repr(value)}")
        return None if low == high == center else (low, high)

    def __call__(self, img, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        if rng.random() >= self.prob:
            return img
        pil = _to_pil(img, "ColorJitter")
        order = [0, 1, 2, 3]
        for i in range(len(order) - 1, 0, -1):  # random.shuffle's Fisher-Yates
            j = int(rng.integers(0, i + 1))
            order[i], order[j] = order[j], order[i]
        for index in order:
            if self.ranges[index] is None:
                continue
            factor = rng.uniform(*self.ranges[index])
            if index == 3:
                pil = _shift_hue(pil, factor)
            else:
                enhancer = (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color)[index]
                pil = enhancer(pil).enhance(factor)
        return _from_pil(pil, img)


def _shift_hue(pil, factor):
    if pil.mode == "L":
        return pil
    h, s, v = pil.convert("HSV").split()
    shifted = ((np.asarray(h).astype(np.int16) + int(factor * 255)) % 256).astype(np.uint8)
    return Image.merge("HSV", (Image.fromarray(shifted, "L"), s, v)).convert(pil.mode)


class RandomRotation:
    """PaddleClas's ``RandomRotation`` (paddle.vision's, applied with probability ``prob``): an angle uniform in
    [-degrees, degrees] (or [min, max]), counter-clockwise about the centre (or ``center`` [x, y]), ``expand``
    to hold the whole result, corners filled with ``fill``. PaddleClas rotates the numpy image with cv2
    (warpAffine); this uses PIL, so pixels differ slightly (tests/test_augment.py measures it)."""

    def __init__(self, degrees, prob=0.5, interpolation="nearest", expand=False, center=None, fill=0):
        self.prob = _number(prob, "RandomRotation", "prob", 0, None)
        if is_number(degrees, finite=True) and 0 <= degrees <= 360:
            self.degrees = (-float(degrees), float(degrees))
        elif (isinstance(degrees, (list, tuple)) and len(degrees) == 2
              and all(is_number(d, finite=True) and -360 <= d <= 360 for d in degrees) and degrees[0] <= degrees[1]):
            self.degrees = (float(degrees[0]), float(degrees[1]))
        else:
            raise ConfigError(f"RandomRotation: degrees must be a number from 0 to 360 or [min, max] within "
                              f"-360..360, got {short_repr(degrees)}")
        if interpolation not in ("nearest", "bilinear", "bicubic"):
            raise choice_error("RandomRotation: interpolation", interpolation, ("nearest", "bilinear", "bicubic"))
        self.resample = _INTERPOLATIONS[interpolation]
        self.expand = _flag(expand, "RandomRotation", "expand")
        if center is not None and not (isinstance(center, (list, tuple)) and len(center) == 2
                                       and all(is_number(v, finite=True) for v in center)):
            raise ConfigError(f"RandomRotation: center must be [x, y] or none, got {short_repr(center)}")
        self.center = tuple(center) if center is not None else None
        self.fill = _color(fill, "RandomRotation", "fill")

    def __call__(self, img, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        if rng.random() >= self.prob:
            return img
        angle = rng.uniform(*self.degrees)
        pil = _to_pil(img, "RandomRotation")
        rotated = pil.rotate(angle, self.resample, self.expand, self.center, fillcolor=_fill_for(pil, self.fill))
        return _from_pil(rotated, img)


class RandomResizedCrop:
    """PaddleClas's ``RandomResizedCrop`` (paddle.vision's, torchvision's algorithm): up to 10 tries of an area
    fraction uniform in ``scale`` and a log-uniform aspect ratio in ``ratio``; the first crop that fits is
    resized to ``size`` (int, or [height, width]: paddle.vision's order, unlike RandCropImage's [width,
    height]); else a centre crop of the image clipped to ``ratio``. PaddleClas resizes the numpy image with cv2;
    this uses PIL (tests/test_augment.py measures the difference)."""

    ATTEMPTS = 10

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3. / 4, 4. / 3), interpolation="bilinear"):
        if isinstance(size, (list, tuple)) and len(size) == 2:
            width, height = _pair([size[1], size[0]], "RandomResizedCrop")
        else:
            width, height = _pair(size, "RandomResizedCrop")
        self.width, self.height = width, height
        self.scale = _range(scale, None, "RandomResizedCrop", "scale", upper=1)
        self.ratio = _range(ratio, None, "RandomResizedCrop", "ratio")
        self.resample = _resample(interpolation, "RandomResizedCrop")

    def __call__(self, img, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        height, width = img.shape[:2]
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(self.ATTEMPTS):
            target_area = rng.uniform(*self.scale) * area
            aspect = math.exp(rng.uniform(*log_ratio))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                top = int(rng.integers(0, height - h + 1))
                left = int(rng.integers(0, width - w + 1))
                break
        else:
            in_ratio = width / height
            if in_ratio < min(self.ratio):
                w, h = width, int(round(width / min(self.ratio)))
            elif in_ratio > max(self.ratio):
                w, h = int(round(height * max(self.ratio))), height
            else:
                w, h = width, height
            top, left = (height - h) // 2, (width - w) // 2
        return _resize(img[top:top + h, left:left + w], self.width, self.height, self.resample)
