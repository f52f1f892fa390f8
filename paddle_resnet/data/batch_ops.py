"""Batch ops with PaddleClas's names and arguments: MixupOperator, CutmixOperator, FmixOperator, OpSampler.

A batch op is called as ``op(images [N,C,H,W] float32, labels [N] int64, rng)`` and returns ``(images, targets)``.
``targets`` is a ``MixupLabels(labels_a, labels_b, lam)``: PaddleClas's soft target
``one_hot(labels_a) * lam + one_hot(labels_b) * (1 - lam)`` held as its three parts (the loss builds it, see
engine/losses.py); or the labels unchanged when ``OpSampler`` picks no op (PaddleClas's hard labels then).

Random draws come only from ``rng`` and in PaddleClas 2.6's order (permutation, then lambda, then the box or the
mask), so with the same draws the pixels equal PaddleClas's (tests/test_recipes.py injects them into its code).
PaddleClas fills in its ``class_num`` argument from ``Arch.class_num``; here the loss knows the class count.
PaddleClas defines no Mixup/Cutmix schedule for these ops (its timm-style ``MixupCutmixHybrid`` has a
``mixup_enabled`` switch that no PaddleClas 2.6 code sets); none is offered here.
"""
import bisect
import itertools
import math
from typing import NamedTuple

import numpy as np

from ..checks import instantiate
from ..errors import ConfigError, choice_error, is_number, short_repr

__all__ = ["MixupLabels", "MixupOperator", "CutmixOperator", "FmixOperator", "OpSampler", "BATCH_OPS",
           "fmix_mask"]


class MixupLabels(NamedTuple):
    """Targets of a mixed batch: soft target ``lam * one_hot(labels_a) + (1 - lam) * one_hot(labels_b)``."""
    labels_a: object
    labels_b: object
    lam: float


def _alpha(value, op, name="alpha"):
    if not (is_number(value, finite=True) and value > 0):
        raise ConfigError(f"{op}: {name} must be a number > 0, got {short_repr(value)}")
    return float(value)


class MixupOperator:
    """``images = lam * images + (1 - lam) * images[perm]``, lam ~ Beta(alpha, alpha) (PaddleClas default alpha 1)."""

    def __init__(self, alpha=1.0):
        self.alpha = _alpha(alpha, "MixupOperator")

    def __call__(self, images, labels, rng):
        perm = rng.permutation(len(images))
        lam = float(rng.beta(self.alpha, self.alpha))
        return lam * images + (1 - lam) * images[perm], MixupLabels(labels, labels[perm], lam)


class CutmixOperator:
    """A box of ``images[perm]`` pasted into each image; lam ~ Beta(alpha, alpha) (PaddleClas default alpha 0.2)
    sets the box side ``sqrt(1 - lam)``, its centre is uniform, and lam becomes the kept area after clipping."""

    def __init__(self, alpha=0.2):
        self.alpha = _alpha(alpha, "CutmixOperator")

    def __call__(self, images, labels, rng):
        perm = rng.permutation(len(images))
        lam = float(rng.beta(self.alpha, self.alpha))
        height, width = images.shape[2:]
        cut = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * cut), int(width * cut)
        cy, cx = rng.integers(height), rng.integers(width)  # PaddleClas draws the row centre first
        y1, y2 = np.clip(cy - cut_h // 2, 0, height), np.clip(cy + cut_h // 2, 0, height)
        x1, x2 = np.clip(cx - cut_w // 2, 0, width), np.clip(cx + cut_w // 2, 0, width)
        mixed = images.copy()
        mixed[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
        lam = float(1 - (float(y2 - y1) * (x2 - x1) / (height * width)))
        return mixed, MixupLabels(labels, labels[perm], lam)


def fmix_mask(height, width, lam, decay_power, max_soft, rng):
    """FMix's mask [1, 1, H, W] float64 with about ``lam * H * W`` ones, as PaddleClas's fmix.py makes it.

    Kept as PaddleClas has it (from the FMix reference code): the complex spectrum takes rows 0 and 1 of the
    random parameters (``spectrum[:, 0]``, ``spectrum[:, 1]``), not their real and imaginary parts, and an odd
    width samples one frequency more; ``irfftn`` crops or pads to the image either way."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[:width // 2 + 1 + width % 2]
    freqs = np.sqrt(fx * fx + fy * fy)
    scale = 1.0 / np.maximum(freqs, 1.0 / max(width, height)) ** decay_power
    param = rng.standard_normal((1, *freqs.shape, 2))
    spectrum = scale[None, :, :, None] * param
    spectrum = spectrum[:, 0] + 1j * spectrum[:, 1]
    mask = np.real(np.fft.irfftn(spectrum, (height, width), axes=(1, 2)))[:1, :height, :width]
    mask = mask - mask.min()
    mask = (mask / mask.max()).reshape(-1)
    order = mask.argsort()[::-1]
    num = math.ceil(lam * mask.size) if rng.random() > 0.5 else math.floor(lam * mask.size)
    soft = min(lam, 1 - lam) if max_soft > lam or max_soft > 1 - lam else max_soft
    soft = int(mask.size * soft)
    low, high = int(num - soft), int(num + soft)
    mask[order[:high]] = 1
    mask[order[low:]] = 0
    mask[order[low:high]] = np.linspace(1, 0, high - low)
    return mask.reshape(1, 1, height, width)


MAX_DECAY_POWER = 10  # FMix uses 3; a bound on typos (past ~79 the float64 spectrum of an 8192 px image overflows)


class FmixOperator:
    """FMix: a binarised low-frequency mask mixes ``images`` with ``images[perm]``; lam ~ Beta(alpha, alpha)
    (``reformulate``: Beta(alpha + 1, alpha)) is the mask's share of ones, ``max_soft`` softens its edges."""

    def __init__(self, alpha=1, decay_power=3, max_soft=0.0, reformulate=False):
        self.alpha = _alpha(alpha, "FmixOperator")
        if not (is_number(decay_power, finite=True) and 0 < decay_power <= MAX_DECAY_POWER):
            raise ConfigError(f"FmixOperator: decay_power must be a number > 0 and <= {MAX_DECAY_POWER} (FMix uses 3), "
                              f"got {short_repr(decay_power)}")
        self.decay_power = float(decay_power)
        if not (is_number(max_soft, finite=True) and 0 <= max_soft <= 0.5):
            raise ConfigError(f"FmixOperator: max_soft must be a number from 0 to 0.5, got {short_repr(max_soft)}")
        if not isinstance(reformulate, bool):
            raise ConfigError(f"FmixOperator: reformulate must be true or false, got {short_repr(reformulate)}")
        self.max_soft, self.reformulate = float(max_soft), reformulate

    def __call__(self, images, labels, rng):
        perm = rng.permutation(len(images))
        lam = float(rng.beta(self.alpha + 1 if self.reformulate else self.alpha, self.alpha))
        mask = fmix_mask(*images.shape[2:], lam, self.decay_power, self.max_soft, rng)
        mixed = (mask * images + (1 - mask) * images[perm]).astype(images.dtype)
        return mixed, MixupLabels(labels, labels[perm], lam)


MIX_OPS = {op.__name__: op for op in (MixupOperator, CutmixOperator, FmixOperator)}


class OpSampler:
    """One of the ops per batch, chosen with the ``prob`` given to each; the probability left (1 - the sum) is
    "no op": the batch and its labels unchanged. PaddleClas's form::

        OpSampler: {MixupOperator: {alpha: 0.2, prob: 0.5}, CutmixOperator: {alpha: 1.0, prob: 0.5}}

    The choice is ``random.choices`` over the ops then "no op" with one uniform draw, as PaddleClas makes it.
    A missing ``prob`` is refused (PaddleClas warns and uses 0, so the op would never run)."""

    def __init__(self, **ops):
        if not ops:
            raise ConfigError(f"OpSampler needs at least one op with a prob, e.g. "
                              f"{{MixupOperator: {{alpha: 0.2, prob: 0.5}}}}; choose from {', '.join(MIX_OPS)}")
        self.ops, self.probs = [], []
        for name, kwargs in ops.items():
            if name not in MIX_OPS:
                raise choice_error("OpSampler: op", name, list(MIX_OPS))
            kwargs = dict(kwargs) if isinstance(kwargs, dict) else kwargs
            if not isinstance(kwargs, dict) or "prob" not in kwargs:
                raise ConfigError(f"OpSampler: {name} needs {{prob: p, ...}} (PaddleClas would use prob 0 and never "
                                  f"run it), got {short_repr(kwargs)}")
            prob = kwargs.pop("prob")
            if not (is_number(prob, finite=True) and 0 <= prob <= 1):
                raise ConfigError(f"OpSampler: {name}.prob must be a number from 0 to 1, got {short_repr(prob)}")
            self.ops.append(instantiate(MIX_OPS[name], kwargs, f"OpSampler: {name}"))
            self.probs.append(prob)
        if sum(self.probs) > 1:
            raise ConfigError(f"OpSampler: the probs add up to {sum(self.probs):g}, more than 1")
        self.ops.append(None)
        self.probs.append(1 - sum(self.probs))
        self._cumulative = list(itertools.accumulate(self.probs))

    def __call__(self, images, labels, rng):
        draw = rng.random() * self._cumulative[-1]
        op = self.ops[bisect.bisect(self._cumulative, draw, 0, len(self.ops) - 1)]
        return op(images, labels, rng) if op is not None else (images, labels)


BATCH_OPS = {**MIX_OPS, "OpSampler": OpSampler}
# PaddleClas 2.6 batch ops not built here, with what to use instead.
REFUSED_BATCH_OPS = {
    "MixupCutmixHybrid": "(timm's per-element Mixup/CutMix with label smoothing, used only by PaddleClas's CAE "
                         "ViT fine-tuning configs) is not built here; use OpSampler with MixupOperator and "
                         "CutmixOperator, and CELoss epsilon for the smoothing",
}
