"""Key maps from each ecosystem's ResNet parameter names to this package's names.

A scheme is an ordered table of regex rewrites applied in turn to every key. Rewrites that
need the checkpoint's layout (deep stem or not, where PaddleClas's flat block list starts a
new stage) get it as a ``Layout``. Our names are paddle.vision's (v1), timm's resnet50d (ResNet-D)
and timm's resnetv2 laid out on ``layerI.J`` (pre-activation); see ``paddle_resnet.models``.
"""
import re
from dataclasses import dataclass, field

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
# PaddleClas 2.0-2.1 dygraph ResNet_vd (model_zoo/resnet_vd.py) and 2.6's model_zoo ResNeXt / ResNeXt_vd:
# conv1_1 (or conv), bb_0_0.conv0._conv, out.
PADDLECLAS_LEGACY = (
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
