"""The loss of a ``Loss.Train`` / ``Loss.Eval`` list (PaddleClas's CELoss: ``weight x`` cross-entropy with
label smoothing ``epsilon``), also over mixup targets."""
import paddle.nn.functional as F


def build_loss(entries):
    """``[{CELoss: {weight, epsilon}}]`` (checked by config_rules) -> ``loss(logits, target, reduction)``;
    ``target`` is int64 labels or a ``MixupLabels`` (labels_a, labels_b, lam)."""
    (_name, options), = entries[0].items()
    weight, epsilon = float(options.get("weight", 1.0)), float(options.get("epsilon", 0.0))

    def loss(logits, target, reduction="mean"):
        def cross_entropy(labels):
            return F.cross_entropy(logits, labels, label_smoothing=epsilon, reduction=reduction)
        if isinstance(target, tuple):
            labels_a, labels_b, lam = target
            return weight * (lam * cross_entropy(labels_a) + (1 - lam) * cross_entropy(labels_b))
        return weight * cross_entropy(target)
    return loss
