"""PaddleClas's ``TimmAutoAugment`` (ops/timm_autoaugment.py, timm's RandAugment, AugMix and AutoAugment policies)
in PIL + numpy, with every draw from the ``rng`` handed in, in PaddleClas's order (see augment.py for the mapping).

``config_str`` as timm/PaddleClas read it: dash-separated sections, the first naming the scheme, the others
``<key><number>``: ``rand-m9-mstd0.5-inc1`` (RandAugment: m magnitude, n layers, w weight set 0, mstd magnitude
noise, inc increasing ops), ``augmix-m3-w3-d-1-a1-b0`` (m severity, w width, d depth, a alpha, b blended, mstd),
``original-mstd0.5`` / ``originalr`` / ``v0`` / ``v0r`` (AutoAugment policies, mstd).

PaddleClas quirks kept: ``inc0`` and ``b0`` switch the option on (``bool("0")``); ``interpolation`` other than
bicubic/lanczos/hamming means bilinear, and ``random`` draws bilinear or bicubic per geometric operation;
magnitudes are clipped to 0..10 after the noise. Not kept: PaddleClas's wrapper accepts only config strings starting
with ``rand``, ``augmix`` or ``auto``, and ``auto...`` then names no policy (an AssertionError), so it cannot run an
AutoAugment policy at all: here the policy's own name is the first section, as in timm. PaddleClas's AugMix sizes
its mix as (width, height) and fails on non-square images; here it is (height, width) (the same on squares).
Posterize to 0 bits (``PosterizeIncreasing`` at magnitude 10) gives black; Pillow >= 10 refuses it in PaddleClas.
"""
import re

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from ..errors import ConfigError, choice_error, is_int, short_repr
from .augment import IMAGENET_POLICY, _color, _fill_for, _from_pil, _number, _to_pil
from .transforms import MAX_SIDE

__all__ = ["TimmAutoAugment"]

MAX_LEVEL = 10.0
BILINEAR, BICUBIC = Image.BILINEAR, Image.BICUBIC
INTERPOLATIONS = {"bilinear": BILINEAR, "bicubic": BICUBIC, "lanczos": Image.LANCZOS, "hamming": Image.HAMMING,
                  "random": None}

RAND_TRANSFORMS = ("AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd", "Color",
                   "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
RAND_INCREASING_TRANSFORMS = ("AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing",
                              "SolarizeIncreasing", "SolarizeAdd", "ColorIncreasing", "ContrastIncreasing",
                              "BrightnessIncreasing", "SharpnessIncreasing", "ShearX", "ShearY", "TranslateXRel",
                              "TranslateYRel")
# Weight set 0, by position (PaddleClas applies it to the increasing list by position too).
RAND_CHOICE_WEIGHTS_0 = (0.025, 0.005, 0, 0.3, 0, 0.005, 0.005, 0.025, 0.005, 0.005, 0.025, 0.2, 0.2, 0.1, 0.1)
AUGMIX_TRANSFORMS = ("AutoContrast", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
                     "SharpnessIncreasing", "Equalize", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing",
                     "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")

_POLICY_V0 = (
    (("Equalize", 0.8, 1), ("ShearY", 0.8, 4)), (("Color", 0.4, 9), ("Equalize", 0.6, 3)),
    (("Color", 0.4, 1), ("Rotate", 0.6, 8)), (("Solarize", 0.8, 3), ("Equalize", 0.4, 7)),
    (("Solarize", 0.4, 2), ("Solarize", 0.6, 2)), (("Color", 0.2, 0), ("Equalize", 0.8, 8)),
    (("Equalize", 0.4, 8), ("SolarizeAdd", 0.8, 3)), (("ShearX", 0.2, 9), ("Rotate", 0.6, 8)),
    (("Color", 0.6, 1), ("Equalize", 1.0, 2)), (("Invert", 0.4, 9), ("Rotate", 0.6, 0)),
    (("Equalize", 1.0, 9), ("ShearY", 0.6, 3)), (("Color", 0.4, 7), ("Equalize", 0.6, 0)),
    (("Posterize", 0.4, 6), ("AutoContrast", 0.4, 7)), (("Solarize", 0.6, 8), ("Color", 0.6, 9)),
    (("Solarize", 0.2, 4), ("Rotate", 0.8, 9)), (("Rotate", 1.0, 7), ("TranslateYRel", 0.8, 9)),
    (("ShearX", 0.0, 0), ("Solarize", 0.8, 4)), (("ShearY", 0.8, 0), ("Color", 0.6, 4)),
    (("Color", 1.0, 0), ("Rotate", 0.6, 2)), (("Equalize", 0.8, 4), ("Equalize", 0.0, 8)),
    (("Equalize", 1.0, 4), ("AutoContrast", 0.6, 2)), (("ShearY", 0.4, 7), ("SolarizeAdd", 0.6, 7)),
    (("Posterize", 0.8, 2), ("Solarize", 0.6, 10)), (("Solarize", 0.6, 8), ("Equalize", 0.6, 1)),
    (("Color", 0.8, 6), ("Rotate", 0.4, 5)),
)
# timm's "original" is the ImageNet policy of augment.py (PaddleClas's AutoAugment) under timm's op names.
_TIMM_NAMES = {"posterize": "PosterizeOriginal", "rotate": "Rotate", "solarize": "Solarize",
               "autocontrast": "AutoContrast", "equalize": "Equalize", "color": "Color", "invert": "Invert",
               "contrast": "Contrast", "sharpness": "Sharpness", "shearX": "ShearX"}
_POLICY_ORIGINAL = tuple(((_TIMM_NAMES[o1], p1, m1), (_TIMM_NAMES[o2], p2, m2))
                         for p1, o1, m1, p2, o2, m2 in IMAGENET_POLICY)


def _renamed(policy, old, new):
    return tuple(tuple((new if name == old else name, p, m) for name, p, m in sub) for sub in policy)


AUTO_POLICIES = {"v0": _POLICY_V0, "v0r": _renamed(_POLICY_V0, "Posterize", "PosterizeIncreasing"),
                 "original": _POLICY_ORIGINAL,
                 "originalr": _renamed(_POLICY_ORIGINAL, "PosterizeOriginal", "PosterizeIncreasing")}


def _negate(value, rng):
    return -value if rng.random() > 0.5 else value


class _Op:
    """timm's AugmentOp: applied with probability ``prob``; the magnitude takes Gaussian noise ``mstd``, clipped."""

    def __init__(self, name, prob, magnitude, hp):
        self.name, self.prob, self.magnitude, self.hp = name, prob, magnitude, hp

    def __call__(self, pil, rng):
        if self.prob < 1.0 and rng.random() > self.prob:
            return pil
        magnitude = self.magnitude
        if self.hp["mstd"] > 0:
            magnitude = rng.normal(magnitude, self.hp["mstd"])
        level = min(MAX_LEVEL, max(0, magnitude)) / MAX_LEVEL
        return self._apply(pil, level, rng)

    def _geometric(self, pil, rng, matrix=None, degrees=None):
        resample = self.hp["interpolation"]
        if resample is None:  # 'random'
            resample = (BILINEAR, BICUBIC)[int(rng.integers(0, 2))]
        fill = _fill_for(pil, self.hp["fill"])
        if degrees is not None:
            return pil.rotate(degrees, resample=resample, fillcolor=fill)
        return pil.transform(pil.size, Image.AFFINE, matrix, resample=resample, fillcolor=fill)

    def _apply(self, pil, level, rng):
        name = self.name
        if name == "AutoContrast":
            return ImageOps.autocontrast(pil)
        if name == "Equalize":
            return ImageOps.equalize(pil)
        if name == "Invert":
            return ImageOps.invert(pil)
        if name == "Rotate":
            return self._geometric(pil, rng, degrees=_negate(level * 30.0, rng))
        if name.startswith("Posterize"):
            bits = {"Posterize": int(level * 4), "PosterizeIncreasing": 4 - int(level * 4),
                    "PosterizeOriginal": int(level * 4) + 4}[name]
            if bits >= 8:
                return pil
            return ImageOps.posterize(pil, bits) if bits > 0 else Image.new(pil.mode, pil.size)
        if name == "Solarize":
            return ImageOps.solarize(pil, int(level * 256))
        if name == "SolarizeIncreasing":
            return ImageOps.solarize(pil, 256 - int(level * 256))
        if name == "SolarizeAdd":
            add = int(level * 110)
            lut = [min(255, i + add) if i < 128 else i for i in range(256)]
            return pil.point(lut * len(pil.getbands())) if pil.mode in ("L", "RGB") else pil
        enhancers = {"Color": ImageEnhance.Color, "Contrast": ImageEnhance.Contrast,
                     "Brightness": ImageEnhance.Brightness, "Sharpness": ImageEnhance.Sharpness}
        base = name.replace("Increasing", "")
        if base in enhancers:
            factor = 1.0 + _negate(level * 0.9, rng) if name.endswith("Increasing") else level * 1.8 + 0.1
            return enhancers[base](pil).enhance(factor)
        if name in ("ShearX", "ShearY"):
            shear = _negate(level * 0.3, rng)
            return self._geometric(pil, rng, (1, shear, 0, 0, 1, 0) if name == "ShearX" else (1, 0, 0, shear, 1, 0))
        if name in ("TranslateX", "TranslateY"):
            pixels = _negate(level * float(self.hp["translate_const"]), rng)
        else:  # TranslateXRel, TranslateYRel
            pct = _negate(level * self.hp["translate_pct"], rng)
            pixels = pct * pil.size[0 if name == "TranslateXRel" else 1]
        matrix = (1, 0, pixels, 0, 1, 0) if name.startswith("TranslateX") else (1, 0, 0, 0, 1, pixels)
        return self._geometric(pil, rng, matrix)


def _pick_weighted(weights, count, rng):
    """``np.random.choice(len(weights), count, replace=False, p=weights)`` drawn as: each pick by inverse CDF of
    one ``rng.random()`` over the remaining weights."""
    remaining = list(range(len(weights)))
    picks = []
    for _ in range(count):
        probs = np.asarray([weights[i] for i in remaining], dtype=np.float64)
        cdf = np.cumsum(probs / probs.sum())
        index = min(int(np.searchsorted(cdf, rng.random(), side="right")), len(remaining) - 1)
        picks.append(remaining.pop(index))
    return picks


MAX_LAYERS, MAX_WIDTH, MAX_DEPTH = 10, 10, 10
CONFIG_KEYS = {"rand": ("m", "n", "w", "mstd", "inc"), "augmix": ("m", "w", "d", "a", "b", "mstd"),
               **{name: ("mstd",) for name in AUTO_POLICIES}}


def _parse(config_str):
    """``config_str`` -> (scheme, {key: value string}); one-line ConfigError naming the bad section."""
    where = "TimmAutoAugment: config_str"
    if not isinstance(config_str, str) or not config_str:
        raise ConfigError(f"{where} must be a string such as 'rand-m9-mstd0.5-inc1', got {short_repr(config_str)}")
    scheme, *sections = config_str.split("-")
    if scheme not in CONFIG_KEYS:
        raise choice_error(f"{where} scheme", scheme, list(CONFIG_KEYS))
    values = {}
    for section in sections:
        match = re.fullmatch(r"([a-z]*)(\d.*)", section)  # PaddleClas: re.split(r'(\d.*)', section)
        if not match or match.group(1) not in CONFIG_KEYS[scheme]:
            raise ConfigError(f"{where} {short_repr(config_str)}: section {short_repr(section)} is not one of "
                              + ", ".join(f"{k}<number>" for k in CONFIG_KEYS[scheme]))
        values[match.group(1)] = match.group(2)
    return scheme, values


def _value(values, key, kind, default, low, high, config_str):
    if key not in values:
        return default
    try:
        value = kind(values[key])
    except ValueError:
        value = None
    if value is None or not (low <= value <= high):
        raise ConfigError(f"TimmAutoAugment: config_str {short_repr(config_str)}: {key} must be a number from "
                          f"{low} to {high}, got {short_repr(values[key])}")
    return value


class TimmAutoAugment:
    """PaddleClas's ``TimmAutoAugment``: with probability ``prob`` (one draw, always made), the scheme of
    ``config_str`` (module docstring) with ``interpolation`` for its geometric ops, translations of up to
    ``0.45 * min(img_size)`` pixels (absolute) and ``mean`` * 255 as the fill colour."""

    def __init__(self, prob=1.0, config_str="rand-m9-mstd0.5-inc1", interpolation="bicubic", img_size=224,
                 mean=(0.485, 0.456, 0.406)):
        self.prob = _number(prob, "TimmAutoAugment", "prob", 0, None)
        if interpolation is None or interpolation == "":
            interpolation = "random"
        if interpolation not in INTERPOLATIONS:
            raise choice_error("TimmAutoAugment: interpolation", interpolation, list(INTERPOLATIONS))
        sizes = img_size if isinstance(img_size, (list, tuple)) else [img_size]
        if not (sizes and all(is_int(s) and 0 < s <= MAX_SIDE for s in sizes)):
            raise ConfigError(f"TimmAutoAugment: img_size must be an int from 1 to {MAX_SIDE} or a list of such, "
                              f"got {short_repr(img_size)}")
        mean = _color(mean, "TimmAutoAugment", "mean")
        self.scheme, values = _parse(config_str)

        def value(key, kind, default, low, high):
            return _value(values, key, kind, default, low, high, config_str)
        hp = {"fill": tuple(min(255, round(255 * x)) for x in mean), "interpolation": INTERPOLATIONS[interpolation],
              "translate_const": int(min(sizes) * 0.45), "translate_pct": 0.45,
              "mstd": value("mstd", float, 0.0, 0.0, 10.0)}
        if self.scheme == "rand":
            magnitude = value("m", int, 10, 0, 30)
            self.num_layers = value("n", int, 2, 0, MAX_LAYERS)
            self.weights = RAND_CHOICE_WEIGHTS_0 if value("w", int, None, 0, 0) is not None else None
            if self.weights is not None and self.num_layers > sum(w > 0 for w in self.weights):
                raise ConfigError(f"TimmAutoAugment: config_str {short_repr(config_str)}: n must be at most "
                                  f"{sum(w > 0 for w in self.weights)} with w0 (ops are drawn without replacement)")
            names = RAND_INCREASING_TRANSFORMS if "inc" in values else RAND_TRANSFORMS  # any inc<n>: bool("0")
            self.ops = [_Op(name, 0.5, magnitude, hp) for name in names]
        elif self.scheme == "augmix":
            hp["translate_pct"] = 0.3
            magnitude = value("m", int, 3, 0, 30)
            self.width = value("w", int, 3, 1, MAX_WIDTH)
            self.depth = value("d", int, -1, -1, MAX_DEPTH)
            if self.depth == 0:
                raise ConfigError(f"TimmAutoAugment: config_str {short_repr(config_str)}: d must be -1 (1 to 3 at "
                                  f"random) or from 1 to {MAX_DEPTH}, got 0")
            self.alpha = value("a", float, 1.0, 1e-3, 100.0)
            self.blended = "b" in values  # any b<n>: bool("0")
            self.ops = [_Op(name, 1.0, magnitude, hp) for name in AUGMIX_TRANSFORMS]
        else:
            self.policy = [[_Op(name, p, m, hp) for name, p, m in sub] for sub in AUTO_POLICIES[self.scheme]]

    def __call__(self, img, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        if not rng.random() < self.prob:
            return img
        pil = _to_pil(img, "TimmAutoAugment")
        if self.scheme == "rand":
            if self.weights is None:
                picks = [int(rng.integers(0, len(self.ops))) for _ in range(self.num_layers)]
            else:
                picks = _pick_weighted(self.weights, self.num_layers, rng)
            for index in picks:
                pil = self.ops[index](pil, rng)
        elif self.scheme == "augmix":
            pil = self._augmix(pil, rng)
        else:
            for op in self.policy[int(rng.integers(0, len(self.policy)))]:
                pil = op(pil, rng)
        return _from_pil(pil, img)

    def _chain(self, pil, rng):
        depth = self.depth if self.depth > 0 else int(rng.integers(1, 4))
        picks = [int(rng.integers(0, len(self.ops))) for _ in range(depth)]
        for index in picks:
            pil = self.ops[index](pil, rng)
        return pil

    def _augmix(self, pil, rng):
        weights = np.float32(rng.dirichlet([self.alpha] * self.width))
        m = np.float32(rng.beta(self.alpha, self.alpha))
        if self.blended:
            ws, cump, alphas = weights * m, 1.0, []
            for w in ws[::-1]:
                alpha = w / cump
                cump *= (1 - alpha)
                alphas.append(alpha)
            original = pil
            for w in np.array(alphas[::-1], dtype=np.float32):
                pil = Image.blend(pil, self._chain(original, rng), w)
            return pil
        mixed = np.zeros((pil.size[1], pil.size[0], len(pil.getbands())), dtype=np.float32)
        for w in weights:
            mixed += w * np.asarray(self._chain(pil, rng), dtype=np.float32).reshape(mixed.shape)
        np.clip(mixed, 0, 255., out=mixed)
        mixed = Image.fromarray(mixed.astype(np.uint8).squeeze(-1) if pil.mode == "L" else mixed.astype(np.uint8))
        return Image.blend(pil, mixed, m)
