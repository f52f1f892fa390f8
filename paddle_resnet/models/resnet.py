"""One table-driven ResNet family: v1, ResNet-D, pre-activation v2, ResNeXt and wide.

A variant is a row of arguments registered by name (see ``_register`` at the bottom);
the depth table maps a depth to its block type and the blocks per stage.
"""
import inspect
from types import SimpleNamespace
import math
import re

import paddle
import paddle.nn as nn

from ..checks import check_int
from ..errors import ConfigError, InputError, check_choice, did_you_mean, is_int, is_number, short_repr
from .aliases import PADDLECLAS_ALIASES, resolve_alias
from .blocks import BLOCKS, conv, make_shortcut
from .dbb import DBBBasicBlock, reparameterize

DEPTHS = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
}
STEM_TYPES = ("classic", "deep", "small")
DATA_FORMATS = ("NCHW", "NHWC")
LAYER_TYPES = ("ConvBNLayer", "DiverseBranchBlock")  # PaddleClas's Arch.layer_type (models/dbb.py)
MAX_STAGE_BLOCKS = 64  # blocks in one stage; the deepest row (PaddleClas's ResNet200_vd) has 48
MAX_CLASSES = 100_000  # a 2048 x 100,000 classifier is 0.8 GB; more is a mistake, not a data set


def _choices(values):
    return ", ".join(str(v) for v in values)


def check_num_classes(num_classes, what="num_classes"):
    """``num_classes`` if it is an integer from 0 (no classifier head) to MAX_CLASSES; InputError otherwise."""
    if not (is_int(num_classes) and 0 <= num_classes <= MAX_CLASSES):
        raise InputError(f"{what} must be an integer from 0 (no classifier head) to {MAX_CLASSES:,}, "
                         f"got {short_repr(num_classes)}")
    return num_classes


def _shown_blocks(value):
    small = isinstance(value, (list, tuple)) and len(value) <= 8 and all(is_number(v) for v in value)
    return repr(list(value)) if small else short_repr(value)


def check_model_args(depth=50, num_classes=1000, **options):
    """Raises ConfigError for arguments ``ResNet`` cannot be built with, without building anything."""
    parameters = inspect.signature(ResNet.__init__).parameters
    unknown = sorted(set(options) - set(parameters) - {"self"})
    if unknown:
        raise ConfigError(f"unknown model argument {short_repr(unknown[0])}{did_you_mean(unknown[0], parameters)}")
    args = {name: p.default for name, p in parameters.items() if name != "self"}
    args.update(options, depth=depth, num_classes=num_classes)
    _check_args(SimpleNamespace(**args))


def _check_args(a):
    """``a``: ResNet's arguments by name (``check_model_args`` fills in the defaults)."""
    check_choice("depth", a.depth, tuple(DEPTHS))
    check_choice("layer_type", a.layer_type, LAYER_TYPES)
    if a.layer_type == "DiverseBranchBlock":
        kept = {"BasicBlock depth (18, 34)": DEPTHS[a.depth][0] == "basic", "preact=False": a.preact is False,
                "data_format NCHW": a.data_format == "NCHW",
                "zero_init_residual=False": a.zero_init_residual is False}
        missing = [what for what, ok in kept.items() if not ok]
        if missing:
            raise ConfigError(f"layer_type DiverseBranchBlock needs {', '.join(missing)} (PaddleClas publishes "
                              f"ResNet18_dbb only; its padded BNs are NCHW only), got depth {a.depth}, "
                              f"preact={a.preact}, data_format {a.data_format}, "
                              f"zero_init_residual={a.zero_init_residual}")
    blocks = a.stage_blocks
    if blocks is not None and not (isinstance(blocks, (list, tuple)) and len(blocks) == 4
                                   and all(is_int(b) and 1 <= b <= MAX_STAGE_BLOCKS for b in blocks)):
        raise ConfigError(f"stage_blocks must be 4 integers from 1 to {MAX_STAGE_BLOCKS} (blocks per stage), "
                          f"got {_shown_blocks(a.stage_blocks)}")
    check_choice("stem_type", a.stem_type, STEM_TYPES)
    check_choice("data_format", a.data_format, DATA_FORMATS)
    if not is_int(a.num_classes) or a.num_classes > MAX_CLASSES:
        raise ConfigError(f"num_classes must be an integer up to {MAX_CLASSES:,} (<= 0 for no classifier), "
                          f"got {short_repr(a.num_classes)}")
    if a.num_classes > 0 and not a.with_pool:
        raise ConfigError("a classifier needs pooled features: set with_pool=True, "
                          "or num_classes=0 to get the unpooled feature map")
    for name, value in (("groups", a.groups), ("base_width", a.base_width), ("in_channels", a.in_channels)):
        check_int(name, value, 1)
    if DEPTHS[a.depth][0] == "basic" and (a.groups != 1 or a.base_width != 64):
        raise ConfigError(f"depth {a.depth} uses BasicBlock, which supports only groups=1 and base_width=64; "
                          f"use a bottleneck depth (50, 101, 152, 200) for ResNeXt or wide models")
    for name, value in (("avg_down", a.avg_down), ("preact", a.preact), ("with_pool", a.with_pool),
                        ("zero_init_residual", a.zero_init_residual), ("project_stage1", a.project_stage1)):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {short_repr(value)}")
    if not is_number(a.drop_rate) or not 0 <= a.drop_rate < 1:
        raise ConfigError(f"drop_rate must be a number in [0, 1), got {short_repr(a.drop_rate)}")


def _build_stem(stem_type, in_channels, preact, data_format):
    """Returns (conv1, bn1 or None, maxpool). No BN/ReLU follows the stem conv in v2."""
    if stem_type == "deep":
        # "Bag of Tricks" ResNet-C stem: three 3x3 convs (32, 32, 64); names match timm's conv1.0 ... conv1.6.
        conv1 = nn.Sequential(
            conv(in_channels, 32, 3, 2, data_format=data_format), nn.BatchNorm2D(32, data_format=data_format),
            nn.ReLU(),
            conv(32, 32, 3, 1, data_format=data_format), nn.BatchNorm2D(32, data_format=data_format), nn.ReLU(),
            conv(32, 64, 3, 1, data_format=data_format))
    elif stem_type == "small":
        conv1 = conv(in_channels, 64, 3, 1, data_format=data_format)
    else:
        conv1 = conv(in_channels, 64, 7, 2, data_format=data_format)
    bn1 = None if preact else nn.BatchNorm2D(64, data_format=data_format)
    maxpool = (nn.Identity() if stem_type == "small"
               else nn.MaxPool2D(3, stride=2, padding=1, data_format=data_format))
    return conv1, bn1, maxpool


class ResNet(nn.Layer):
    """ResNet builder.

    Args:
        depth: a key of ``DEPTHS`` (18, 34, 50, 101, 152, 200).
        num_classes: classifier size; <= 0 builds no head and the model returns pooled features.
        stem_type: "classic" (7x7/2 + max-pool), "deep" (3x 3x3, ResNet-C/D) or "small"
            (3x3/1, no max-pool, for 32x32 inputs).
        avg_down: shortcut downsamples with a 2x2 avg-pool before the 1x1 conv (ResNet-D).
        preact: full pre-activation blocks (ResNetV2, He et al. 2016).
        groups, base_width: ResNeXt cardinality and width per group; wide ResNets use base_width=128.
        project_stage1: give the first block of every stage a projection shortcut, even when
            shapes match (PaddleClas's ResNet18/34 and their _vd forms).
        data_format: "NCHW" or "NHWC". Inputs are always NCHW; NHWC transposes once at the start.
        stage_blocks: blocks per stage, replacing the depth table's (``depth`` still picks the block type):
            PaddleClas's ResNet200_vd is depth 200 with (3, 12, 48, 3), timm's resnet200d (3, 24, 36, 3).
        layer_type: "ConvBNLayer", or "DiverseBranchBlock" for BasicBlock depths: each 3x3 conv + BN of the
            blocks trains as a Diverse Branch Block (models/dbb.py; PaddleClas's ResNet18_dbb), folded into one
            conv for export by ``reparameterize()``.
    """

    def __init__(self, depth=50, num_classes=1000, *, stem_type="classic", avg_down=False, preact=False,
                 groups=1, base_width=64, in_channels=3, with_pool=True, data_format="NCHW",
                 zero_init_residual=False, project_stage1=False, drop_rate=0.0, stage_blocks=None,
                 layer_type="ConvBNLayer"):
        super().__init__()
        _check_args(SimpleNamespace(**{k: v for k, v in locals().items() if k not in ("self", "__class__")}))
        block_type, layers = DEPTHS[depth]
        layers = tuple(stage_blocks) if stage_blocks is not None else layers
        block = DBBBasicBlock if layer_type == "DiverseBranchBlock" else BLOCKS[(block_type, preact)]
        self.layer_type = layer_type
        self.depth, self.preact, self.data_format = depth, preact, data_format
        self.num_classes, self.with_pool = int(num_classes), with_pool

        self.conv1, self.bn1, self.maxpool = _build_stem(stem_type, in_channels, preact, data_format)
        self.relu = nn.ReLU()

        in_ch = 64
        for idx, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if idx == 0 else 2
            stage = []
            for b in range(blocks):
                out_ch = planes * block.expansion
                s = stride if b == 0 else 1
                needs_proj = s != 1 or in_ch != out_ch or (project_stage1 and b == 0)
                downsample = make_shortcut(in_ch, out_ch, s, avg_down, preact, data_format) if needs_proj else None
                stage.append(block(in_ch, planes, s, downsample, groups, base_width, data_format))
                in_ch = out_ch
            setattr(self, f"layer{idx + 1}", nn.Sequential(*stage))
        self.num_features = in_ch
        if preact:
            self.norm = nn.BatchNorm2D(in_ch, data_format=data_format)
        if with_pool:
            self.avgpool = nn.AdaptiveAvgPool2D(1, data_format=data_format)
        self.dropout = nn.Dropout(drop_rate) if drop_rate > 0 else None
        if self.num_classes > 0:
            bound = 1.0 / math.sqrt(in_ch)
            self.fc = nn.Linear(in_ch, self.num_classes,
                                weight_attr=paddle.ParamAttr(initializer=nn.initializer.Uniform(-bound, bound)))
        if zero_init_residual:
            self._zero_init_residual()

    def _zero_init_residual(self):
        """Each residual branch starts as zero, so every block starts as the identity (Goyal et al. 2017)."""
        for layer in self.sublayers():
            if hasattr(layer, "last_norm"):
                layer.last_norm().weight.set_value(paddle.zeros_like(layer.last_norm().weight))
            elif hasattr(layer, "last_conv"):  # pre-activation blocks end in a conv, as in timm
                layer.last_conv().weight.set_value(paddle.zeros_like(layer.last_conv().weight))

    def stages(self):
        """The five trainable groups PaddleClas's lr_mult_list and freezing refer to: stem, layer1..4."""
        stem = [self.conv1] + ([self.bn1] if self.bn1 is not None else [])
        return [nn.LayerList(stem), self.layer1, self.layer2, self.layer3, self.layer4]

    def forward_features(self, x):
        """NCHW image -> final feature map (in the model's data_format), before pooling."""
        if self.data_format == "NHWC":
            x = paddle.transpose(x, [0, 2, 3, 1])
        x = self.conv1(x)
        if not self.preact:
            x = self.relu(self.bn1(x))
        x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if self.preact:
            x = self.relu(self.norm(x))
        return x

    def forward_head(self, x, pre_logits=False):
        if not self.with_pool:
            return x
        x = paddle.flatten(self.avgpool(x), 1)
        if self.dropout is not None:
            x = self.dropout(x)
        if pre_logits or self.num_classes <= 0:
            return x
        return self.fc(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def reparameterize(self):
        """Folds every Diverse Branch Block into one conv (in place; nothing to do for ConvBNLayer models):
        the deploy form, equal to the trained model up to float rounding. Returns the model."""
        return reparameterize(self)


_MODELS = {}


def _register(name, **row):
    _MODELS[name] = row


for _d in DEPTHS:
    _register(f"resnet{_d}", depth=_d)
    _register(f"resnet{_d}_vd", depth=_d, stem_type="deep", avg_down=True)
    if _d <= 152:
        _register(f"resnet{_d}_v2", depth=_d, preact=True)
# PaddleClas's ResNet200_vd (alias ResNet200_vd); resnet200_vd is timm's resnet200d (3, 24, 36, 3).
_register("resnet200_vd_paddleclas", depth=200, stem_type="deep", avg_down=True, stage_blocks=(3, 12, 48, 3))
_register("resnext50_32x4d", depth=50, groups=32, base_width=4)
_register("resnext101_32x4d", depth=101, groups=32, base_width=4)
_register("resnext101_32x8d", depth=101, groups=32, base_width=8)
_register("resnext101_64x4d", depth=101, groups=64, base_width=4)
_register("wide_resnet50_2", depth=50, base_width=128)
_register("wide_resnet101_2", depth=101, base_width=128)


def _listing_order(name):
    family, depth, rest = re.match(r"([a-z_]+?)(\d+)(.*)", name).groups()
    return family, int(depth), ("", "_vd", "_v2").index(rest) if rest in ("", "_vd", "_v2") else 3, rest


def list_models(aliases=False):
    """Registered names: resnet by depth (v1, _vd, _v2), then resnext, then wide; with ``aliases=True``
    followed by the PaddleClas names that also build (``models/aliases.py``)."""
    names = sorted(_MODELS, key=_listing_order)
    return names + list(PADDLECLAS_ALIASES) if aliases else names


def model_args(name):
    """The registered row of arguments for ``name`` (a copy); a PaddleClas alias gives its row's arguments
    plus its own."""
    alias = resolve_alias(name)
    if alias is not None:
        target, extra = alias
        return {**_MODELS[target], **extra}
    if name not in _MODELS:
        known = list(_MODELS) + list(PADDLECLAS_ALIASES)
        raise ConfigError(f"unknown model {short_repr(name)}{did_you_mean(name, known)} Available: {_choices(list_models())} "
                          f"(and PaddleClas's names: paddle-resnet models)")
    return dict(_MODELS[name])


def check_build_args(name, num_classes=1000, **kwargs):
    """Raises ConfigError for what ``build_model(name, num_classes, **kwargs)`` would refuse, without building."""
    check_model_args(num_classes=num_classes, **{**model_args(name), **kwargs})


def build_model(name, num_classes=1000, **kwargs):
    """Builds a registered model; ``kwargs`` override or extend its row (e.g. data_format="NHWC")."""
    args = model_args(name)
    args.update(kwargs)
    return ResNet(num_classes=num_classes, **args)
