"""Key maps from each ecosystem's ResNet parameter names to this package's names.

A scheme is an ordered table of regex rewrites applied in turn to every key. Rewrites that
need the checkpoint's layout (deep stem or not, where PaddleClas's flat block list starts a
new stage) get it as a ``Layout``. Our names are paddle.vision's (v1), timm's resnet50d (ResNet-D)
and timm's resnetv2 laid out on ``layerI.J`` (pre-activation); see ``paddle_resnet.models``.
"""
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

SOURCES = ("paddle", "paddleclas", "torchvision", "timm")
HEAD_KEYS = ("fc.weight", "fc.bias")
STATIC_BN_LEAVES = {"scale": "weight", "offset": "bias", "mean": "_mean", "variance": "_variance"}
# PaddleClas ResNet-D, timm resnetv2 "d" and our ResNet-D stems all stack three 3x3 convs.
DEEP_STEM_KEY = re.compile(r"^(stem\.1\.|stem\.conv2\.|conv1_2[._]|bn1_2_|conv1\.3\.)")
PADDLECLAS_SHORTCUT_KEY = re.compile(r"^blocks\.(\d+)\.short\.")


@dataclass(frozen=True)
class Layout:
    """What a rewrite needs to know about the checkpoint beyond one key."""
    deep_stem: bool = False
    stage_starts: tuple = (0,)  # PaddleClas ``blocks.N`` indices that open a stage

    def stem_conv(self, i):
        return f"conv1.{3 * i}" if self.deep_stem else "conv1"

    def stem_norm(self, i):
        # The deep stem's last BN is bn1, outside the conv1 Sequential.
        return f"conv1.{3 * i + 1}" if self.deep_stem and i < 2 else "bn1"

    def shortcut(self, part):
        # Checkpoints with a deep stem (PaddleClas _vd, timm resnetv2 "d") also average-pool in
        # their shortcuts, which are then [avg-pool, conv, bn]; plain ones are [conv, bn].
        return f"downsample.{int(self.deep_stem) + (part == 'bn')}"

    def block(self, flat_index):
        start = max(s for s in self.stage_starts if s <= flat_index)
        return f"layer{self.stage_starts.index(start) + 1}.{flat_index - start}"

    @classmethod
    def of(cls, keys):
        starts = {0} | {int(m[1]) for m in map(PADDLECLAS_SHORTCUT_KEY.match, keys) if m}
        return cls(deep_stem=any(DEEP_STEM_KEY.match(k) for k in keys), stage_starts=tuple(sorted(starts)))


def _block_letter_index(letters):
    """PaddleClas static names number blocks a, b, c, ... or, in long stages, a, b1, b2, ..."""
    return ord(letters) - ord("a") if len(letters) == 1 else int(letters[1:])


def _static_block(m):
    return f"layer{int(m['stage']) - 1}.{_block_letter_index(m['block'])}"


def _static_leaf(m):
    return STATIC_BN_LEAVES[m["leaf"]]


STATIC_BN = r"(?P<leaf>scale|offset|mean|variance)$"
STATIC_BLOCK = r"(?P<stage>\d)(?P<block>[a-z]\d*)_branch"

# PaddleClas static-graph parameter names (pre-2.0 ResNet/ResNet_vd, e.g. res2a_branch2a_weights),
# rewritten to the structured names below them.
PADDLECLAS_STATIC = (
    (r"^conv1_(\d)_weights$", lambda m, lay: f"stem.{int(m[1]) - 1}.conv.weight"),
    (r"^bn1_(\d)_" + STATIC_BN, lambda m, lay: f"stem.{int(m[1]) - 1}.bn.{_static_leaf(m)}"),
    (r"^conv1_weights$", "stem.0.conv.weight"),
    (r"^bn_conv1_" + STATIC_BN, lambda m, lay: f"stem.0.bn.{_static_leaf(m)}"),
    (r"^res" + STATIC_BLOCK + r"2(?P<conv>[abc])_weights$",
     lambda m, lay: f"{_static_block(m)}.conv{'abc'.index(m['conv'])}.conv.weight"),
    (r"^bn" + STATIC_BLOCK + r"2(?P<conv>[abc])_" + STATIC_BN,
     lambda m, lay: f"{_static_block(m)}.conv{'abc'.index(m['conv'])}.bn.{_static_leaf(m)}"),
    (r"^res" + STATIC_BLOCK + r"1_weights$", lambda m, lay: f"{_static_block(m)}.short.conv.weight"),
    (r"^bn" + STATIC_BLOCK + r"1_" + STATIC_BN, lambda m, lay: f"{_static_block(m)}.short.bn.{_static_leaf(m)}"),
    (r"^fc_0\.w_0$", "fc.weight"),
    (r"^fc_0\.b_0$", "fc.bias"),
)
# PaddleClas 2.0-2.1 dygraph ResNet_vd (model_zoo/resnet_vd.py): conv1_1, bb_0_0.conv0._conv, out; its
# model_zoo/resnext.py (still PaddleClas 2.6's ResNeXt) names the 7x7 stem conv._conv / conv._batch_norm.
PADDLECLAS_LEGACY = (
    (r"^conv\._conv\.", "conv1."),
    (r"^conv\._batch_norm\.", "bn1."),
    (r"^conv1_(\d)\.", lambda m, lay: f"stem.{int(m[1]) - 1}."),
    (r"^bb_(\d+)_(\d+)\.", lambda m, lay: f"layer{int(m[1]) + 1}.{m[2]}."),
    (r"\._conv\.", ".conv."),
    (r"\._batch_norm\.", ".bn."),
    (r"^out\.", "fc."),
    (r"^conv\.conv\.", "conv1."),  # model_zoo ResNeXt's 7x7 stem: conv._conv, conv._batch_norm
    (r"^conv\.bn\.", "bn1."),
)
# PaddleClas >= 2.2 legendary_models/resnet.py: stem.0.conv, blocks.N.conv0.bn, blocks.N.short.conv.
PADDLECLAS = PADDLECLAS_STATIC + PADDLECLAS_LEGACY + (
    (r"^stem\.(\d)\.conv\.", lambda m, lay: f"{lay.stem_conv(int(m[1]))}."),
    (r"^stem\.(\d)\.bn\.", lambda m, lay: f"{lay.stem_norm(int(m[1]))}."),
    (r"^blocks\.(\d+)\.", lambda m, lay: f"{lay.block(int(m[1]))}."),
    (r"\.conv(\d)\.(?=dbb_)", lambda m, lay: f".conv{int(m[1]) + 1}."),  # ResNet18_dbb: names kept inside
    (r"\.conv(\d)\.conv\.", lambda m, lay: f".conv{int(m[1]) + 1}."),
    (r"\.conv(\d)\.bn\.", lambda m, lay: f".bn{int(m[1]) + 1}."),
    (r"\.short\.conv\.", lambda m, lay: f".{lay.shortcut('conv')}."),
    (r"\.short\.bn\.", lambda m, lay: f".{lay.shortcut('bn')}."),
)
TORCH_BN = (
    (r"\.running_mean$", "._mean"),
    (r"\.running_var$", "._variance"),
)
# timm resnet/resnetd already use our names; timm resnetv2 (pre-activation) needs these.
TIMM = (
    (r"^stem\.conv\.", "conv1."),
    (r"^stem\.conv(\d)\.", lambda m, lay: f"{lay.stem_conv(int(m[1]) - 1)}."),
    (r"^stem\.norm(\d)\.", lambda m, lay: f"{lay.stem_norm(int(m[1]) - 1)}."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.", lambda m, lay: f"layer{int(m[1]) + 1}.{m[2]}."),
    (r"\.norm(\d)\.", r".bn\1."),
    (r"\.downsample\.conv\.", lambda m, lay: f".{lay.shortcut('conv')}."),
    (r"^head\.fc\.", "fc."),
) + TORCH_BN


@dataclass(frozen=True)
class Scheme:
    rules: tuple = ()
    dropped: str = None  # regex of keys that carry no weights (torch's BN step counters)
    linear_out_in: bool = False  # torch stores Linear weights (out, in); Paddle (in, out)
    compiled: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "compiled", tuple((re.compile(p), r) for p, r in self.rules))

    def drops(self, key):
        return self.dropped is not None and re.search(self.dropped, key) is not None

    def rename(self, key, layout):
        for pattern, repl in self.compiled:
            key = pattern.sub(repl if isinstance(repl, str) else (lambda m, r=repl: r(m, layout)), key)
        return key


TORCH_DROPPED = r"\.num_batches_tracked$"
SCHEMES = {
    "paddle": Scheme(),
    "paddleclas": Scheme(PADDLECLAS),
    "torchvision": Scheme(TORCH_BN, TORCH_DROPPED, linear_out_in=True),
    "timm": Scheme(TIMM, TORCH_DROPPED, linear_out_in=True),
}
# First row whose every pattern matches some key names the source; order matters.
DETECTORS = (
    ("paddleclas", (r"^(stem\.\d\.conv\.|blocks\.\d+\.conv\d\.|conv1_\d[._]|bb_\d+_\d+\.|res\d[a-z]\d*_branch)",)),
    ("timm", (r"^stages\.\d+\.blocks\.",)),
    ("timm", (r"^conv1\.0\.weight$", r"\.running_var$")),
    ("torchvision", (r"\.running_var$",)),
    ("paddle", (r"\._variance$",)),
)


def detect_source(keys):
    """The naming scheme of ``keys`` (one of SOURCES), or None when no detector fits."""
    for source, patterns in DETECTORS:
        if all(any(re.search(p, k) for k in keys) for p in patterns):
            return source
    return None


def wrapper_prefix(keys):
    """The dotted prefix every key shares, such as ``module.`` (DataParallel) or ``module.pre.``."""
    split = [k.split(".")[:-1] for k in keys]
    if len(split) < 2:
        return ""
    common = []
    for parts in zip(*split):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return "".join(f"{p}." for p in common)


def _to_paddle_linear(array):
    """torch Linear (out, in) or timm's 1x1-conv head (out, in, 1, 1) -> Paddle Linear (in, out)."""
    return array.reshape(array.shape[0], -1).T


@dataclass
class Renamed:
    source: str
    prefix: str
    state: dict  # our name -> array, in our layout
    origin: dict  # our name -> the checkpoint's name
    dropped: tuple  # checkpoint names that carry no weights


def to_our_names(state, source="auto"):
    """Renames a checkpoint's tensors to ours; raises InputError for an unknown or undetectable source."""
    prefix = wrapper_prefix(list(state))
    stripped = {k[len(prefix):]: v for k, v in state.items()}
    if source == "auto":
        source = detect_source(list(stripped))
        if source is None:
            raise InputError(f"cannot tell which naming scheme the checkpoint uses (first keys: "
                             f"{', '.join(list(stripped)[:5])}); name it with source= (convert_weights.py: --source), one of "
                             f"{', '.join(SOURCES)}")
    elif source not in SCHEMES:
        raise InputError(f"unknown source {source!r}; choose one of auto, {', '.join(SOURCES)}")
    scheme = SCHEMES[source]
    layout = Layout.of(list(stripped))
    renamed = Renamed(source, prefix, {}, {}, tuple(prefix + k for k in stripped if scheme.drops(k)))
    for key, array in stripped.items():
        if scheme.drops(key):
            continue
        ours = scheme.rename(key, layout)
        if ours in renamed.state:
            raise InputError(f"checkpoint keys {renamed.origin[ours]!r} and {prefix + key!r} "
                             f"both map to {ours!r} under the {source} scheme")
        renamed.state[ours] = _to_paddle_linear(array) if scheme.linear_out_in and ours == "fc.weight" else array
        renamed.origin[ours] = prefix + key
    return renamed


# ---- the other way: our names -> PaddleClas >= 2.2 legendary_models/resnet.py ----

PADDLECLAS_200_BLOCKS = (3, 12, 48, 3)  # its ResNet200_vd: our resnet200_vd_paddleclas
TABLE_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3),
                200: (3, 24, 36, 3)}  # models.resnet.DEPTHS's blocks per stage (tests check they agree)
PADDLECLAS_DEPTHS = (18, 34, 50, 101, 152)  # ResNet* and ResNet*_vd with our blocks per stage
PADDLECLAS_RESNEXT_DEPTHS = (50, 101, 152)  # model_zoo/resnext.py and resnext_vd.py, 32x4d and 64x4d
PADDLECLAS_STEMS = ("classic", "deep")
OUR_STEM_KEY = re.compile(r"^(?:conv1(?:\.(?P<index>\d+))?\.(?P<leaf>.+)|bn1\.(?P<bn1_leaf>.+))$")
OUR_BLOCK_KEY = re.compile(r"^layer(\d)\.(\d+)\.(?:conv(\d)\.(.+)|bn(\d)\.(.+)|downsample\.(\d)\.(.+))$")


def paddleclas_layout_problem(depth, stem_type="classic", avg_down=False, preact=False, groups=1, base_width=64,
                              num_classes=1000, stage_blocks=None, **_):
    """Why a model built with these ``ResNet`` arguments has no PaddleClas equivalent, or None when it has one
    (PaddleClas 2.6: legendary_models/resnet.py's ResNet18-152 and ResNet18_vd-ResNet152_vd, model_zoo's
    ResNeXt{50,101,152}{,_vd}_{32,64}x4d; its ResNet200_vd stacks other block counts than ours)."""
    if preact:
        return "PaddleClas has no pre-activation (v2) ResNet"
    resnext = groups != 1
    if (groups, base_width) != (1, 64) and not (groups in (32, 64) and base_width == 4):
        return (f"PaddleClas's ResNeXt are 32x4d and 64x4d (groups 32 or 64, base_width 4) and it has no wide "
                f"ResNet; this model has groups={groups}, base_width={base_width}")
    if stem_type not in PADDLECLAS_STEMS or avg_down != (stem_type == "deep"):
        return (f"PaddleClas's ResNet has the classic 7x7 stem with plain shortcuts, or (_vd) the deep stem with "
                f"average-pool shortcuts; this model has stem_type={stem_type!r} with avg_down={avg_down}")
    paddleclas_200 = (depth == 200 and stem_type == "deep" and not resnext
                      and tuple(stage_blocks or ()) == PADDLECLAS_200_BLOCKS)
    if paddleclas_200:
        return "PaddleClas's ResNet always has a classifier head; this model has none" if num_classes <= 0 else None
    if stage_blocks is not None and tuple(stage_blocks) != TABLE_BLOCKS.get(depth):
        return f"PaddleClas has no ResNet with {', '.join(map(str, stage_blocks))} blocks per stage"
    if depth == 200 and stem_type == "deep" and not resnext:
        return ("PaddleClas's ResNet200_vd stacks 3, 12, 48, 3 blocks per stage; this model (timm's resnet200d) "
                "3, 24, 36, 3: build resnet200_vd_paddleclas (Arch.name: ResNet200_vd)")
    if depth not in (PADDLECLAS_RESNEXT_DEPTHS if resnext else PADDLECLAS_DEPTHS):
        vd = "_vd" if stem_type == "deep" else ""
        return (f"PaddleClas has no ResNeXt{depth}{vd}_{groups}x{base_width}d" if resnext
                else f"PaddleClas has no ResNet{depth}{vd}")
    if num_classes <= 0:
        return "PaddleClas's ResNet always has a classifier head; this model has none"
    return None


PADDLE_BN_EPSILON = 1e-5  # paddle.nn.BatchNorm's default, which PaddleClas's ConvBNLayer keeps


def with_identity_projection(state):
    """PaddleClas's ResNet18/34 always give stage 1's first block a projection shortcut; a model without one
    (our default, project_stage1=False) gets a projection that computes the identity: a 1x1 conv holding the
    identity matrix and a BN with scale 1, shift 0, mean 0 and variance 1 - eps (var + eps is exactly 1 in
    float32). ``state`` holds numpy arrays; returns it unchanged when the block already projects or is a
    bottleneck (which always projects)."""
    if "layer1.0.conv3.weight" in state or any(k.startswith("layer1.0.downsample.") for k in state):
        return state
    channels = state["layer1.0.conv1.weight"].shape[0]
    part = int("conv1.0.weight" in state)  # a deep-stem (vd) shortcut is [avg-pool, conv, bn]
    eps = np.float32(PADDLE_BN_EPSILON)
    projection = {
        f"layer1.0.downsample.{part}.weight": np.eye(channels, dtype=np.float32).reshape(channels, channels, 1, 1),
        f"layer1.0.downsample.{part + 1}.weight": np.ones(channels, np.float32),
        f"layer1.0.downsample.{part + 1}.bias": np.zeros(channels, np.float32),
        f"layer1.0.downsample.{part + 1}._mean": np.zeros(channels, np.float32),
        f"layer1.0.downsample.{part + 1}._variance": np.full(channels, np.float32(1) - eps, np.float32),
    }
    last = [k for k in state if k.startswith("layer1.0.")][-1]  # keep PaddleClas's order: block 0's keys together
    result = {}
    for key, value in state.items():
        result[key] = value
        if key == last:
            result.update(projection)
    return result


def _block_name(block, prefix, conv_layer, bn_layer, deep_stem):
    """An ``OUR_BLOCK_KEY`` match -> ``prefix``'s name in a PaddleClas layout whose ConvBNLayer names its conv
    ``conv_layer`` and its BN ``bn_layer``; convN is PaddleClas's conv(N-1), the shortcut is ``short`` (with an
    avg-pool in front under the deep stem, hence its BN at index 2 there, 1 otherwise)."""
    _, _, conv, conv_leaf, norm, norm_leaf, part, short_leaf = block.groups()
    if conv and conv_leaf.startswith("dbb_"):  # a Diverse Branch Block keeps PaddleClas's names inside
        return f"{prefix}.conv{int(conv) - 1}.{conv_leaf}"
    if conv:
        return f"{prefix}.conv{int(conv) - 1}.{conv_layer}.{conv_leaf}"
    if norm:
        return f"{prefix}.conv{int(norm) - 1}.{bn_layer}.{norm_leaf}"
    return f"{prefix}.short.{bn_layer if int(part) > int(deep_stem) else conv_layer}.{short_leaf}"


def _paddleclas_name(key, deep_stem, first_block):
    """One of our v1/vd names -> PaddleClas's; the inverse of the PADDLECLAS rules above."""
    stem = OUR_STEM_KEY.match(key)
    if stem and stem["bn1_leaf"]:
        return f"stem.{2 if deep_stem else 0}.bn.{stem['bn1_leaf']}"
    if stem:  # conv1 (classic) or the deep stem's Sequential: conv at 0, 3, 6, BN at 1, 4
        index = int(stem["index"] or 0)
        return f"stem.{index // 3}.{'bn' if index % 3 else 'conv'}.{stem['leaf']}"
    block = OUR_BLOCK_KEY.match(key)
    if block:
        return _block_name(block, f"blocks.{first_block[int(block[1])] + int(block[2])}", "conv", "bn", deep_stem)
    if key in HEAD_KEYS:
        return key
    raise InputError(f"{key!r} has no place in PaddleClas's ResNet layout")


def _paddleclas_resnext_name(key, deep_stem):
    """One of our names -> PaddleClas's model_zoo/resnext.py (resnext_vd.py with the deep stem) name."""
    stem = OUR_STEM_KEY.match(key)
    if stem:  # conv1, or the deep stem's Sequential (conv at 0, 3, 6, BN at 1, 4); bn1 is the last conv's BN
        index, leaf = (7, stem["bn1_leaf"]) if stem["bn1_leaf"] else (int(stem["index"] or 0), stem["leaf"])
        layer = f"conv1_{index // 3 + 1}" if deep_stem else "conv"
        return f"{layer}.{'_batch_norm' if index % 3 else '_conv'}.{leaf}"
    block = OUR_BLOCK_KEY.match(key)
    if block:
        return _block_name(block, f"bb_{int(block[1]) - 1}_{block[2]}", "_conv", "_batch_norm", deep_stem)
    if key in HEAD_KEYS:
        return key.replace("fc.", "out.")
    raise InputError(f"{key!r} has no place in PaddleClas's ResNeXt layout")


def to_paddleclas_names(state, resnext=False):
    """Our v1 / vd state dict -> PaddleClas's names (same arrays): legendary_models/resnet.py's, or with
    ``resnext`` model_zoo/resnext.py's. Checked against the forward PADDLECLAS map: reading the result back
    with ``to_our_names`` gives every key its own name again."""
    deep_stem = "conv1.0.weight" in state
    blocks = {}
    for key in state:
        match = OUR_BLOCK_KEY.match(key)
        if match:
            blocks.setdefault(int(match[1]), set()).add(int(match[2]))
    first_block, count = {}, 0
    for stage in sorted(blocks):
        first_block[stage], count = count, count + len(blocks[stage])
    name = ((lambda key: _paddleclas_resnext_name(key, deep_stem)) if resnext
            else (lambda key: _paddleclas_name(key, deep_stem, first_block)))
    renamed = {name(key): key for key in state}
    back = to_our_names(dict.fromkeys(renamed, np.zeros(0)), "paddleclas").origin
    if len(renamed) != len(state) or any(renamed[theirs] != ours for ours, theirs in back.items()):
        raise AssertionError("the PaddleClas key map and its inverse disagree")  # a bug, not a user error
    return {theirs: state[ours] for theirs, ours in renamed.items()}
