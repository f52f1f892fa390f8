"""The loss of a ``Loss.Train`` / ``Loss.Eval`` list, computed as PaddleClas 2.6 computes it.

Entries (PaddleClas's ``CombinedLoss``: the sum of ``weight x`` each loss; ``weight`` defaults to 1 here):

* ``CELoss: {weight, epsilon}``: cross-entropy; ``0 < epsilon < 1`` smooths the labels (another epsilon means
  none, as in PaddleClas).
* ``SoftTargetCrossEntropy: {weight}``: ``mean(sum(-target * log_softmax(logits)))``; hard labels are one-hot.
* ``FocalLoss: {weight, gamma, class_weights}`` (Lin et al. 2017): ``sum(-target * (1 - p)^gamma * log p)``,
  which down-weights the images the model already gets right; ``gamma: 0`` is the cross-entropy.

``class_weights`` (CELoss and FocalLoss, ``Loss.Train`` only) weighs each image's loss by its class: a list of
one number per class, or ``auto``, the inverse class frequency of the Train set (``n / (classes x n_c)``, as
scikit-learn's ``compute_class_weight("balanced")``; logged when training starts). The mean is then over the
weights (``sum(w_i l_i) / sum(w_i)``, as ``paddle.nn.functional.cross_entropy``'s ``weight``); a mixed batch's
image weighs ``sum_c target_c w_c``.
* ``MixCELoss`` and the distillation losses are refused by name with what to use instead.

As in PaddleClas, a single entry's ``weight`` is not applied (its CombinedLoss skips the weighting for one loss);
two entries of the same name are refused (PaddleClas would keep only the last one's value).

A mixed batch (``MixupLabels(labels_a, labels_b, lam)`` from a batch op) is PaddleClas's soft target
``one_hot(labels_a) * lam + one_hot(labels_b) * (1 - lam)``. PaddleClas 2.6's CELoss without epsilon applies
``softmax`` to a soft target before the cross-entropy (``label = F.softmax(label)``, removed by its commit 4924749
"fix_celoss" in 2022 and put back by 1f8a830 in 2023): the target becomes almost uniform over the classes. That
bug is matched by default; ``CELoss: {softmax_soft_target: false}`` (a key of this suite) scores the soft target
as it is, ``lam * CE(labels_a) + (1 - lam) * CE(labels_b)``. With epsilon, PaddleClas smooths the soft target
itself, without the softmax.
"""
import logging

import numpy as np
import paddle
import paddle.nn.functional as F

from ..errors import ConfigError, choice_error, did_you_mean, is_number, short_repr

__all__ = ["LOSSES", "build_loss", "check_loss_entries"]

logger = logging.getLogger("paddle_resnet")

LOSSES = {"CELoss": ("weight", "epsilon", "softmax_soft_target", "class_weights"), "SoftTargetCrossEntropy": ("weight",),
          "FocalLoss": ("weight", "gamma", "class_weights")}
REFUSED = {
    "MixCELoss": "is deprecated in PaddleClas 2.6 (its own code raises); use CELoss, which scores mixed batches",
    "DistillationCELoss": "needs a teacher model (PaddleClas's DistillationModel), which this suite does not "
                          "build; train with CELoss (or SoftTargetCrossEntropy on a teacher's soft labels)",
}
MAX_LOSSES = 8


def _refusal(name):
    if name in REFUSED:
        return f"{name} {REFUSED[name]}"
    if name.startswith("Distillation"):
        return f"{name} {REFUSED['DistillationCELoss']}"
    return None


def check_loss_entries(entries, where):
    """``Loss.Train`` / ``Loss.Eval``: a list of 1 to MAX_LOSSES ``{Name: {options}}`` entries; a ConfigError
    names the first bad one. Returns them with ``{}`` for an entry given without options (a new list)."""
    if (not isinstance(entries, list) or not 1 <= len(entries) <= MAX_LOSSES
            or not all(isinstance(e, dict) and len(e) == 1 for e in entries)):
        raise ConfigError(f"{where} must be a list of 1 to {MAX_LOSSES} entries such as [{{CELoss: {{...}}}}], "
                          f"got {short_repr(entries)}")
    names = [next(iter(e)) for e in entries]
    checked = []
    for entry in entries:
        (name, options), = entry.items()
        if names.count(name) > 1:
            raise ConfigError(f"{where}: {name} is given {names.count(name)} times; PaddleClas would count only "
                              f"the last one: give it once")
        refusal = _refusal(name) if isinstance(name, str) else None
        if refusal:
            raise ConfigError(f"{where}: {refusal}")
        if name not in LOSSES:
            raise choice_error(f"{where} entry", name, list(LOSSES))
        options = {} if options is None else options
        if not isinstance(options, dict):
            raise ConfigError(f"{where}.{name} must be a mapping of options, got {short_repr(options)}")
        for key, value in options.items():
            if key not in LOSSES[name]:
                raise ConfigError(f"unknown key {where}.{name}.{key}{did_you_mean(key, LOSSES[name])}")
            if key == "softmax_soft_target" and not isinstance(value, bool):
                raise ConfigError(f"{where}.{name}.{key} must be true or false, got {short_repr(value)}")
            if key == "weight" and not (is_number(value, finite=True) and value > 0):
                raise ConfigError(f"{where}.{name}.weight must be a number > 0, got {short_repr(value)}")
            if key == "epsilon" and not (is_number(value, finite=True) and 0 <= value < 1):
                raise ConfigError(f"{where}.{name}.epsilon must be a number >= 0 and < 1, got {short_repr(value)}")
            if key == "gamma" and not (is_number(value, finite=True) and 0 <= value <= 10):
                raise ConfigError(f"{where}.{name}.gamma must be a number from 0 to 10, got {short_repr(value)}")
            if key == "class_weights":
                _check_class_weights(value, f"{where}.{name}.class_weights", where)
        checked.append({name: options})
    return checked


def _check_class_weights(value, key, where):
    if where != "Loss.Train":
        raise ConfigError(f"{key}: class weights are for training (Loss.Train); the Eval loss, which best and "
                          f"early stopping may use, stays unweighted")
    if value == "auto":
        return
    if not (isinstance(value, list) and value and all(is_number(v, finite=True) and v >= 0 for v in value)
            and any(v > 0 for v in value)):
        raise ConfigError(f"{key} must be auto or a list of one number >= 0 per class (not all 0), got "
                          f"{short_repr(value)}")


def check_class_weight_count(entries, class_num):
    """A list of class_weights in ``Loss.Train`` must have ``class_num`` numbers (Arch.class_num)."""
    for entry in entries:
        (name, options), = entry.items()
        weights = (options or {}).get("class_weights")
        if isinstance(weights, list) and len(weights) != class_num:
            raise ConfigError(f"Loss.Train.{name}.class_weights has {len(weights)} numbers but Arch.class_num is "
                              f"{class_num}: give one per class, or auto")


def balanced_class_weights(class_counts):
    """``n / (classes x n_c)`` per class (scikit-learn's "balanced"); a class without images weighs 0."""
    counts = np.asarray(class_counts, dtype=np.float64)
    return np.divide(counts.sum(), len(counts) * counts, out=np.zeros_like(counts), where=counts > 0)


def soft_target(target, class_num):
    """(soft target float32 [N, C] or None, hard labels int64 [N, 1] or None), as PaddleClas's batch ops give."""
    if isinstance(target, tuple):
        labels_a, labels_b, lam = target
        return F.one_hot(labels_a, class_num) * lam + F.one_hot(labels_b, class_num) * (1 - lam), None
    return None, target.reshape([-1, 1])


def _reduce(loss, reduction):
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


def _weighted(per_image, target, class_weights, reduction):
    """``per_image`` losses [N] weighed by the class weights of their targets; the mean is over the weights."""
    soft, hard = soft_target(target, class_weights.shape[0])
    weights = (soft @ class_weights) if soft is not None else paddle.gather(class_weights, hard.reshape([-1]))
    weighted = per_image.reshape([-1]) * weights
    if reduction == "mean":
        return weighted.sum() / weights.sum().clip(min=1e-12)
    return _reduce(weighted, reduction)


def focal_loss(logits, target, gamma=2.0, reduction="mean"):
    """``sum_c -target_c (1 - p_c)^gamma log p_c`` per image (one-hot target for hard labels)."""
    soft, hard = soft_target(target, logits.shape[-1])
    if soft is None:
        soft = F.one_hot(hard.reshape([-1]), logits.shape[-1])
    log_p = F.log_softmax(logits, axis=-1)
    modulation = (1 - paddle.exp(log_p)).clip(min=0) ** gamma if gamma else 1.0
    return _reduce(paddle.sum(-soft * modulation * log_p, axis=-1), reduction)


def cross_entropy(logits, target, epsilon=None, softmax_soft_target=True, reduction="mean"):
    """PaddleClas 2.6's ``CELoss.forward`` on int64 labels [N] or ``MixupLabels``."""
    class_num = logits.shape[-1]
    soft, hard = soft_target(target, class_num)
    if epsilon is not None and 0 < epsilon < 1:
        label = soft if soft is not None else F.one_hot(hard, class_num)
        label = paddle.reshape(F.label_smooth(label, epsilon=epsilon), [-1, class_num])
        return _reduce(paddle.sum(-F.log_softmax(logits, axis=-1) * label, axis=-1), reduction)
    if soft is not None:
        label = F.softmax(soft, axis=-1) if softmax_soft_target else soft
        return F.cross_entropy(logits, label=label, soft_label=True, reduction=reduction)
    return F.cross_entropy(logits, label=hard, reduction=reduction)


def soft_target_cross_entropy(logits, target, reduction="mean"):
    """PaddleClas's ``SoftTargetCrossEntropy`` (which takes only soft targets; hard labels are one-hot here)."""
    soft, hard = soft_target(target, logits.shape[-1])
    if soft is None:
        soft = F.one_hot(hard.reshape([-1]), logits.shape[-1])
    return _reduce(paddle.sum(-soft * F.log_softmax(logits, axis=-1), axis=-1), reduction)


def _class_weights_tensor(name, value, class_counts, class_names):
    """``class_weights`` as a float32 tensor; ``auto`` from ``class_counts`` (the Train set's), logged."""
    if value != "auto":
        return paddle.to_tensor(value, dtype="float32")
    if class_counts is None:
        raise ConfigError(f"{name}: class_weights auto needs the Train set's class counts")
    weights = balanced_class_weights(class_counts)
    names = class_names or [str(i) for i in range(len(weights))]
    shown = ", ".join(f"{n} {w:.3g}" for n, w in list(zip(names, weights))[:10])
    more = f", ... ({len(weights)} classes, from {weights.min():.3g} to {weights.max():.3g})" if len(weights) > 10 else ""
    logger.info(f"{name} class_weights auto (inverse class frequency of the Train set): {shown}{more}")
    return paddle.to_tensor(weights, dtype="float32")


def _term(name, options, class_counts, class_names):
    """``loss(logits, target, reduction)`` of one entry (its ``weight`` popped from ``options``)."""
    if name == "CELoss":
        epsilon = options.get("epsilon")
        softmax = options.get("softmax_soft_target", True)
        if softmax and not (epsilon is not None and 0 < epsilon < 1):
            logger.debug("CELoss: a mixed batch's soft target goes through softmax, as in PaddleClas 2.6")
        term = lambda x, t, r, e=epsilon, s=softmax: cross_entropy(x, t, e, s, r)
    elif name == "FocalLoss":
        term = lambda x, t, r, g=float(options.get("gamma", 2.0)): focal_loss(x, t, g, r)
    else:
        term = soft_target_cross_entropy
    if options.get("class_weights") is None:
        return term
    weights = _class_weights_tensor(name, options["class_weights"], class_counts, class_names)
    return lambda x, t, r: _weighted(term(x, t, "none"), t, weights, r)


def build_loss(entries, class_counts=None, class_names=None):
    """A checked ``Loss.Train`` list -> ``loss(logits, target, reduction)``; ``target`` is int64 labels [N] or a
    ``MixupLabels``. One entry gives its loss (unweighted, as PaddleClas); several, the sum of ``weight x`` each.
    ``class_counts``: images per class of the Train set, for ``class_weights: auto``."""
    terms = []
    for entry in entries:
        (name, options), = entry.items()
        options = dict(options or {})
        weight = float(options.pop("weight", 1.0))
        terms.append((weight, _term(name, options, class_counts, class_names)))

    def loss(logits, target, reduction="mean"):
        total = None
        for weight, term in terms:
            value = term(logits, target, reduction)
            value = value * weight if len(terms) > 1 else value
            total = value if total is None else total + value
        return total
    return loss
