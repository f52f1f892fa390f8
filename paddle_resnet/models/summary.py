"""What tools/summary.py reports: the paddle.summary table, parameter counts and FLOPs."""
import contextlib
import io

import paddle

from .flops import count_flops
from ..checks import check_int
from ..errors import InputError, check_choice
from .resnet import check_num_classes
from .resnet import DEPTHS, build_model

VARIANT_SUFFIX = {"v1": "", "vd": "_vd", "v2": "_v2"}
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 1, 2048


def model_name(depth, variant="v1"):
    """``(50, "vd") -> "resnet50_vd"``, validating both parts."""
    check_choice("depth", depth, tuple(DEPTHS))
    check_choice("variant", variant, tuple(VARIANT_SUFFIX))
    return f"resnet{depth}{VARIANT_SUFFIX[variant]}"


def check_input_size(input_size):
    """``input_size`` if a summary can run at it: every model takes 1 px and up (its convolutions pad), and
    the activations grow with the square of the size (resnet50 peaks at 0.8 GB at 1024 px)."""
    return check_int("input size (pixels)", input_size, MIN_INPUT_SIZE, MAX_INPUT_SIZE, error=InputError)


def summarize(name, input_size=224, num_classes=1000, **model_kwargs):
    check_input_size(input_size)
    check_num_classes(num_classes)
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


PADDLE_VISION_ONLY = {"resnext101_32x4d"}
TORCHVISION_ONLY = {"resnext101_32x8d"}


def reference_of(name):
    """The implementation a registered model matches, for the model table (docs/models.md)."""
    if name == "resnet200_vd_paddleclas":
        return "PaddleClas `ResNet200_vd` (3-12-48-3 blocks)"
    if name.endswith("_vd"):
        depth = name[len("resnet"):-len("_vd")]
        paddleclas = "" if depth == "200" else f", PaddleClas `ResNet{depth}_vd`"  # PaddleClas's 200 has other stages
        return f"timm `resnet{depth}d`{paddleclas}"
    if name.endswith("_v2"):
        return f"timm `resnetv2_{name[len('resnet'):-len('_v2')]}` layout (He et al. 2016)"
    if name == "resnet200":
        return "timm `resnet200`"
    if name in PADDLE_VISION_ONLY:
        return f"paddle.vision `{name}`"
    if name in TORCHVISION_ONLY:
        return f"torchvision `{name}`"
    return f"paddle.vision / torchvision `{name}`"


def model_table(names, input_size=224):
    """Markdown rows: name, trainable parameters, GFLOPs at ``input_size``, reference."""
    check_input_size(input_size)
    rows = ["| model | params | GFLOPs @224 | matches |", "| --- | ---: | ---: | --- |"]
    for name in names:
        model = build_model(name)
        params = sum(int(p.size) for p in model.parameters() if not p.stop_gradient)
        flops = count_flops(model, input_size)
        rows.append(f"| `{name}` | {params / 1e6:.2f} M | {flops / 1e9:.2f} | {reference_of(name)} |")
    return "\n".join(rows)
