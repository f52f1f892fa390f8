"""The config's shape: PaddleClas's sections (Global / Arch / Loss / Optimizer / DataLoader / Metric / AMP / EMA /
Infer) with their keys and defaults, YAML reading, ``-o Section.key=value`` overrides (typed by YAML's safe loader,
never ``eval``), and the read-only form a validated config is handed down in.

``merge_config`` checks the shape: an unknown key names the nearest valid one, a missing required key names its
section, a value of the wrong type names both types. What each value may be is each subsystem's own rule
(data/rules.py, models/arch.py, engine/rules.py); ``paddle_resnet.config.load_config`` runs them all.
"""
import copy
import inspect
import logging
import numbers

import yaml

from .checks import shown
from .errors import ConfigError, MissingFileError, did_you_mean, short_repr
from .models import ResNet
from .yaml_io import parse_yaml, read_yaml_file

logger = logging.getLogger("paddle_resnet")

REQUIRED = object()  # marks a key the user must set
OPTIONAL = object()  # a key that may be set; left out when absent

_DATASET = {"name": REQUIRED, "image_root": REQUIRED, "cls_label_path": OPTIONAL, "class_indices": OPTIONAL,
            "delimiter": OPTIONAL, "relabel": OPTIONAL, "transform_ops": REQUIRED, "batch_transform_ops": OPTIONAL}
_LOADER_SECTION = {
    "dataset": _DATASET,
    # power: ClassBalancedSampler's (0: the data's class frequencies .. 1: every class equally often)
    "sampler": {"name": "DistributedBatchSampler", "batch_size": 64, "drop_last": False, "shuffle": True,
                "power": OPTIONAL},
    "loader": {"num_workers": 4, "use_shared_memory": True},
}
# Model options default to None: "as the registered model's row says" (build_model checks the values).
_ARCH_OPTIONS = {k: None for k in inspect.signature(ResNet.__init__).parameters
                 if k not in ("self", "depth", "num_classes")}

SCHEMA = {
    "Global": {
        "device": "auto",  # auto | cpu | gpu
        "output_dir": "output",
        "epochs": 120,
        "eval_during_train": True,
        "eval_interval": 1,
        "save_interval": 1,
        "print_batch_step": 10,
        "speed_warmup_steps": 5,  # steps left out of images/s
        "pretrained_model": None,
        "checkpoints": None,
        "seed": 0,
        "image_shape": [3, 224, 224],
        "save_inference_dir": "inference",
        "use_visualdl": True,
        "num_threads": None,  # CPU threads; None uses every core
        "accum_steps": 1,
        "clip_grad_norm": None,
        "sync_bn": False,
        # multi-process: make BN running statistics equal on all ranks before each eval and save (timm's
        # distribute_bn): reduce (average) | broadcast (rank 0's) | none (each rank keeps its shard's)
        "dist_bn": "reduce",
        # the train step as a static program (engine/static_step.py): true | false | auto (null: auto), where
        # auto is true on the CPU (oneDNN convolutions, 2-5x faster there) and false on a GPU
        "to_static": None,
        # which eval keeps "best": top1 | top5 | loss | macro_f1 | weighted_f1 | macro_recall (engine/selection.py);
        # ties go to the lower eval loss, then the later epoch
        "best_metric": "top1",
        "early_stop": None,  # {metric (default best_metric), patience, min_delta (default 0)}: stop without gains
        "use_dali": OPTIONAL,  # PaddleClas's: accepted with a warning (NO_EFFECT below)
        "image_channel": OPTIONAL,  # PaddleClas's *_ultra configs: must equal image_shape[0]
    },
    # pretrained and use_ssld are PaddleClas's download switches (NO_EFFECT below), not model arguments.
    "Arch": {"name": REQUIRED, "class_num": 1000, "freeze": None, "lr_mult_list": None, "pretrained": OPTIONAL,
             "use_ssld": OPTIONAL, "input_image_channel": OPTIONAL, "use_first_short_conv": OPTIONAL,
             **_ARCH_OPTIONS},
    "Loss": {"Train": [{"CELoss": {"weight": 1.0, "epsilon": 0.0}}], "Eval": [{"CELoss": {"weight": 1.0}}]},
    "Optimizer": {
        "name": "Momentum",
        "momentum": 0.9,
        "use_nesterov": False,
        "no_weight_decay_on_bn_bias": False,
        # Paddle optimizers' fp32 master weights for fp16 parameters (always on with AMP O2); on the CPU, in
        # float32, it changes nothing
        "multi_precision": False,
        # learning_rate is for a total batch of base_batch_size (batch x devices x accum_steps) when that is set:
        # the linear scaling rule of Goyal et al. 2017. null uses learning_rate as it is.
        # Schedules and their own arguments as in PaddleClas (engine/optim.py: LR_ARGUMENTS, check_lr).
        # learning_rate may be left out only by Piecewise (decay_epochs + values); warmup_epoch defaults to
        # PaddleClas's 0 (CosineWarmup: 5).
        "lr": {"name": "Cosine", "learning_rate": None, "base_batch_size": None, "warmup_epoch": None,
               "warmup_start_lr": 0.0, "by_epoch": False,
               **{key: OPTIONAL for key in ("eta_min", "step_size", "gamma", "decay_epochs", "values",
                                            "milestones", "end_lr", "power", "cycle")}},
        "regularizer": {"name": "L2", "coeff": 1e-4},
    },
    "DataLoader": {"Train": _LOADER_SECTION, "Eval": _LOADER_SECTION},
    "Metric": {"Train": [{"TopkAcc": {"topk": [1, 5]}}], "Eval": [{"TopkAcc": {"topk": [1, 5]}}]},
    "AMP": {"use_amp": False, "level": "O1", "dtype": "float16", "scale_loss": 65536.0,
            "use_dynamic_loss_scaling": True, "use_fp16_test": OPTIONAL, "use_promote": OPTIONAL},
    "EMA": {"use_ema": False, "decay": 0.9999},
    # tools/infer.py (PaddleClas's): images, their transforms (default: Eval's) and the Topk post-process.
    "Infer": {"infer_imgs": None, "batch_size": 10, "transforms": None,
              "PostProcess": {"name": "Topk", "topk": 5, "class_id_map_file": None, "delimiter": None}},
}
# PaddleClas keys that are accepted but change nothing here: set in a config, each is named in one warning
# saying why. A key not in SCHEMA nor here is refused with the nearest valid key.
NO_EFFECT = {
    "AMP.use_fp16_test": "evaluation always runs in float32 here (AMP covers the training steps), so eval "
                         "figures and the best checkpoint do not depend on fp16 rounding",
    "AMP.use_promote": "PaddleClas 2.6 hands it to paddle.amp.auto_cast only on Paddle 2.5; with Paddle 3, as "
                       "here, auto_cast runs ops with mixed inputs in float32 (use_promote=True)",
    "Global.use_dali": "NVIDIA DALI is a GPU data loader; images are decoded with PIL in paddle.io workers here",
    "Arch.pretrained": "PaddleClas downloads its ImageNet weights then; nothing is downloaded at run time here: "
                       "download the .pdparams and set Global.pretrained_model to it (PaddleClas checkpoints load)",
    "Arch.use_ssld": "it picks PaddleClas's SSLD download, and nothing is downloaded at run time here",
}
# Lists whose items are {Name: {options}} mappings (PaddleClas style); their content is checked by the subsystems.
LIST_KEYS = {"Loss.Train", "Loss.Eval", "Metric.Train", "Metric.Eval", "Infer.transforms"}


def _typename(value):
    return type(value).__name__


def _key_text(key):
    """A key as a message names it: as written when it is a short string (``Global.epochz``)."""
    return key if isinstance(key, str) and len(key) <= 80 else short_repr(key)


def _check_type(path, default, value):
    if default is None or default is REQUIRED or default is OPTIONAL or value is None:
        return value
    if isinstance(default, bool) and not isinstance(value, bool):
        raise ConfigError(f"{path} must be a bool (true/false), got {shown(value)}")
    if isinstance(value, bool) and not isinstance(default, bool):
        raise ConfigError(f"{path} must be {_typename(default)}, got bool {shown(value)}")
    if isinstance(default, float) and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, (int, float, str, list)) and not isinstance(value, type(default)):
        raise ConfigError(f"{path} must be {_typename(default)}, got {_typename(value)} {shown(value)}")
    return value


def _merge(schema, user, path):
    """Defaults of ``schema`` overlaid with ``user``, validated key by key."""
    if user is None:
        user = {}
    if not isinstance(user, dict):
        raise ConfigError(f"{path} must be a mapping of keys, got {_typename(user)} {shown(user)}")
    for key in user:
        if key not in schema:
            what = f"key {path}.{_key_text(key)}" if path else f"section {short_repr(key)}"
            raise ConfigError(f"unknown {what}{did_you_mean(key, schema)}")
    out = {}
    for key, default in schema.items():
        where = f"{path}.{key}" if path else key
        value = user.get(key, default)
        if value is OPTIONAL:
            continue
        if value is REQUIRED or (default is REQUIRED and value is None):
            section = path or key
            raise ConfigError(f"missing required key {where} in section {section.split('.')[0]}")
        if isinstance(default, dict) and where not in LIST_KEYS:
            out[key] = _merge(default, value, where)
        else:
            out[key] = copy.deepcopy(_check_type(where, default, value))
    return out


def _override_text(override):
    return short_repr(override, limit=200)


def _parse_value(text, override):
    return parse_yaml(text, f"override {_override_text(override)}") if text.strip() else None


def apply_override(config, override):
    """``"Global.epochs=10"`` -> config["Global"]["epochs"] = 10; list items by index (``transform_ops.1``)."""
    if "=" not in override:
        raise ConfigError(f"override {_override_text(override)} must look like Section.key=value")
    dotted, text = override.split("=", 1)
    keys = dotted.strip().split(".")
    node = config
    for i, key in enumerate(keys[:-1]):
        if isinstance(node, list):
            node = node[_list_index(keys, i, node)]
        else:
            if not isinstance(node, dict):
                raise ConfigError(f"override {_override_text(override)}: {'.'.join(keys[:i])} is "
                                  f"{_typename(node)} {short_repr(node)}, not a section with keys")
            if key not in node or node[key] is None:
                node[key] = {}  # validation below names an unknown key and its nearest valid neighbour
            node = node[key]
    last = keys[-1]
    if isinstance(node, list):
        node[_list_index(keys, len(keys) - 1, node)] = _parse_value(text, override)
    elif isinstance(node, dict):
        node[last] = _parse_value(text, override)
    else:
        raise ConfigError(f"override {_override_text(override)}: {'.'.join(keys[:-1])} is "
                          f"{_typename(node)} {short_repr(node)}, not a section with keys")


def _list_index(keys, i, node):
    if keys[i].isdecimal() and keys[i].isascii() and int(keys[i]) < len(node):  # not -1: it counts from the end
        return int(keys[i])
    raise ConfigError(f"{'.'.join(keys[:i])} is a list of {len(node)} items; {short_repr(keys[i])} is not an "
                      f"index of it")


def _warn_no_effect(user):
    for dotted, why in NO_EFFECT.items():
        section, key = dotted.split(".")
        if isinstance(user.get(section), dict) and key in user[section]:
            logger.warning(f"{dotted}: {short_repr(user[section][key])} is accepted but has no effect: {why}")


def merge_config(user):
    """``user`` (a config file's mapping, overrides applied) over the defaults, its shape checked; a new dict."""
    if user is not None and not isinstance(user, dict):
        raise ConfigError(f"a config must be a mapping of sections (Global, Arch, ...), got {_typename(user)}")
    merged = _merge(SCHEMA, user, "")
    _warn_no_effect(user or {})
    return merged


def read_config(path, overrides=()):
    """The mapping of a config file with ``-o`` overrides applied (not merged, not checked)."""
    try:
        user = read_yaml_file(path, "config file") or {}
    except MissingFileError as error:
        raise MissingFileError(f"{error}; the shipped configs are in configs/") from None
    if not isinstance(user, dict):
        raise ConfigError(f"config file {path} must be a mapping of sections (Global, Arch, ...), "
                          f"got {_typename(user)} {shown(user)}")
    for override in overrides:
        apply_override(user, override)
    return user


class FrozenDict(dict):
    """A section of a validated config: it reads as the dict it was built from, also by attribute
    (``config.Global.epochs``), and never changes: what a subsystem needs it takes as values."""

    __slots__ = ()

    def _read_only(self, *args, **kwargs):
        raise TypeError("a validated config is read-only; validate a changed copy (config_schema.thaw) instead")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _read_only

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):  # to data-loader workers: rebuilt from its items, not item by item
        return type(self), (dict(self),)


class FrozenList(list):
    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = FrozenDict._read_only
    append = extend = insert = remove = pop = clear = sort = reverse = FrozenDict._read_only

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        return type(self), (list(self),)


# yaml.safe_dump writes them as the mappings and lists they are (a frozen config or a part of it)
yaml.add_representer(FrozenDict, yaml.representer.SafeRepresenter.represent_dict, Dumper=yaml.SafeDumper)
yaml.add_representer(FrozenList, yaml.representer.SafeRepresenter.represent_list, Dumper=yaml.SafeDumper)


def freeze(value):
    """``value`` with every dict and list in it made read-only (FrozenDict, FrozenList)."""
    if isinstance(value, dict):
        return FrozenDict({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return FrozenList(freeze(item) for item in value)
    return value


def thaw(value):
    """A plain, changeable copy of a (frozen) config or part of one."""
    if isinstance(value, dict):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [thaw(item) for item in value]
    return value


def dump_config(config, path):
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(thaw(config), f, sort_keys=False)


