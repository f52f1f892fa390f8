"""What tools/summary.py reports: the paddle.summary table, parameter counts and FLOPs."""
import contextlib
import io

import paddle

from .flops import count_flops
from .resnet import DEPTHS, _check_choice, build_model

VARIANT_SUFFIX = {"v1": "", "vd": "_vd", "v2": "_v2"}


def model_name(depth, variant="v1"):
    """``(50, "vd") -> "resnet50_vd"``, validating both parts."""
    _check_choice("depth", depth, tuple(DEPTHS))
    _check_choice("variant", variant, tuple(VARIANT_SUFFIX))
    return f"resnet{depth}{VARIANT_SUFFIX[variant]}"


def summarize(name, input_size=224, num_classes=1000, **model_kwargs):
    model = build_model(name, num_classes=num_classes, **model_kwargs)
    in_channels = model_kwargs.get("in_channels", 3)
    model.eval()
    table = io.StringIO()
    with contextlib.redirect_stdout(table):
        counts = paddle.summary(model, (1, in_channels, input_size, input_size))
    return {
        "model": name,
        "input_size": input_size,
        "num_classes": num_classes,
        "table": table.getvalue(),
        "total_params": int(counts["total_params"]),
        "trainable_params": int(counts["trainable_params"]),
        "flops": count_flops(model, input_size, in_channels),
    }
