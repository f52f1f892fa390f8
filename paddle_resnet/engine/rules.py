"""What each config value may be, checked once when the config loads, before anything is built.

``RULES`` maps a dotted key (``*`` standing for Train and Eval) to the values it allows; the data keys are
data/rules.py's, the Arch section models/arch.py's. ``check_config`` runs them all on a merged config and returns
the config as the engine uses it (PaddleClas's implicit defaults spelled out), a new dict: the merged one is
never changed. Every problem is one ``ConfigError`` line naming the key, the bad value and the allowed ones.
"""
from ..checks import MAX_WORKERS, Bool, Choice, Int, Number, Path, shown
from ..data import rules as data_rules
from ..errors import ConfigError, check_choice, did_you_mean, is_int
from ..models.arch import check_arch
from ..weights.named import NAMED_WEIGHTS, is_weights_name
from .device import DEVICES
from .losses import check_class_weight_count, check_loss_entries
from .optim import LR_SCHEDULES, OPTIMIZERS, check_lr
from .selection import check_best_metric, check_early_stop
from .static_step import check_to_static

MODES = ("Train", "Eval")
MAX_SEED = 2**32 - 1  # what np.random.seed accepts (paddle.seed takes up to 2**64 - 1)
AMP_LEVELS = ("O1", "O2")
AMP_DTYPES = ("float16", "bfloat16")
# multi-process BN statistics before each eval and save (timm's distribute_bn): reduce (average) | broadcast
# (rank 0's) | none (each rank keeps its shard's)
DIST_BN_MODES = ("reduce", "broadcast", "none")


class WeightsPath(Path):
    """A weights file, or the name of weights shipped in a package (``imgsim:resnet50``), which must be known."""

    def __call__(self, key, value):
        if value is None:
            return
        super().__call__(key, value)
        if is_weights_name(value):
            check_choice(f"{key} (a weights name)", value, list(NAMED_WEIGHTS))


RULES = {
    "Global.device": Choice(DEVICES),
    "Global.output_dir": Path(),
    "Global.save_inference_dir": Path(),
    "Global.pretrained_model": WeightsPath(),
    "Global.epochs": Int(1),
    "Global.eval_interval": Int(1),
    "Global.save_interval": Int(0),
    "Global.print_batch_step": Int(1),
    "Global.speed_warmup_steps": Int(0),
    "Global.seed": Int(0, MAX_SEED),
    "Global.num_threads": Int(1, MAX_WORKERS, optional=True),
    "Global.accum_steps": Int(1),
    "Global.clip_grad_norm": Number(0, open_low=True, optional=True),
    "Global.dist_bn": Choice(DIST_BN_MODES),
    "Global.to_static": check_to_static,
    "Arch.class_num": Int(1),
    "Optimizer.name": Choice(OPTIMIZERS),
    "Optimizer.momentum": Number(0, 1, open_high=True),
    "Optimizer.multi_precision": Bool(),
    "Optimizer.lr.name": Choice(LR_SCHEDULES),
    "Optimizer.lr.base_batch_size": Int(1, optional=True),  # the schedule's own keys: optim.check_lr
    "Optimizer.lr.warmup_start_lr": Number(0),
    "Optimizer.regularizer.name": Choice(("L2",)),
    "Optimizer.regularizer.coeff": Number(0),
    **data_rules.RULES,
    "AMP.level": Choice(AMP_LEVELS),
    "AMP.dtype": Choice(AMP_DTYPES),
    "AMP.scale_loss": Number(0, open_low=True),
    "EMA.decay": Number(0, 1, open_low=True, open_high=True),
    "Infer.batch_size": Int(1),
    "Infer.PostProcess.name": Choice(("Topk",)),
    "Infer.PostProcess.topk": Int(1),
    "AMP.use_fp16_test": Bool(),
    "AMP.use_promote": Bool(),
    "Global.use_dali": Bool(),
    "Arch.use_ssld": Bool(),
    "Arch.pretrained": Bool("a file to start from is Global.pretrained_model here: "
                            "-o Global.pretrained_model=PATH"),
}

_ABSENT = object()


def _lookup(config, keys):
    """The value at ``keys`` (a list of str), or _ABSENT when the path is absent."""
    node = config
    for key in keys:
        if isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return _ABSENT
    return node


def _expand(pattern):
    parts = pattern.split(".")
    if "*" not in parts:
        return [parts]
    i = parts.index("*")
    return [parts[:i] + [mode] + parts[i + 1:] for mode in MODES]


def check_config(config):
    """The merged ``config`` as the engine uses it (a new dict); ConfigError for the first value it may not have."""
    loss = {mode: check_loss_entries(config["Loss"][mode], f"Loss.{mode}") for mode in MODES}
    metric = {mode: _check_metric(config["Metric"][mode], mode) for mode in MODES}
    for pattern, rule in RULES.items():
        for keys in _expand(pattern):
            value = _lookup(config, keys)
            if value is not _ABSENT:
                rule(".".join(keys), value)
    lr = check_lr(config["Optimizer"]["lr"])
    settings = config["Global"]
    topk = metric["Eval"][0]["TopkAcc"]["topk"]
    check_best_metric("Global.best_metric", settings["best_metric"], topk)
    settings = {**settings, "early_stop": check_early_stop(settings["early_stop"], settings["best_metric"], topk)}
    if settings["early_stop"] and not settings["eval_during_train"]:
        raise ConfigError("Global.early_stop counts evals, and Global.eval_during_train is false: set it true "
                          "(or drop early_stop)")
    data_rules.check_image_shape(settings["image_shape"])
    _check_global_channels(settings)
    channels = settings["image_shape"][0]
    arch = check_arch(config["Arch"], channels)
    check_class_weight_count(loss["Train"], arch["class_num"])
    for mode in MODES:
        data_rules.check_sampler(config["DataLoader"][mode]["sampler"], mode)
    loaders = {mode: {**config["DataLoader"][mode],
                      "dataset": data_rules.check_dataset(config["DataLoader"][mode]["dataset"], mode, channels)}
               for mode in MODES}
    return {**config, "Global": settings, "Loss": loss, "Metric": metric, "Optimizer": {**config["Optimizer"], "lr": lr}, "Arch": arch,
            "DataLoader": loaders, "Infer": _check_infer(config["Infer"], channels)}


def _check_metric(items, mode):
    """PaddleClas's ``Metric.<mode>: [{TopkAcc: {topk: [1, 5]}}]``, with topk filled in. ``Metric.Train`` may be
    empty (PaddleClas's ``Train:`` with nothing under it): no train accuracy is logged."""
    where = f"Metric.{mode}"
    if mode == "Train" and not items:
        return []
    if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict) or len(items[0]) != 1:
        raise ConfigError(f"{where} must be a list with one entry such as [{{TopkAcc: {{...}}}}], got {shown(items)}")
    (given, options), = items[0].items()
    check_choice(f"{where} entry", given, ("TopkAcc",))
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise ConfigError(f"{where}.TopkAcc must be a mapping of options, got {shown(options)}")
    for key in options:
        if key != "topk":
            raise ConfigError(f"unknown key {where}.TopkAcc.{key}{did_you_mean(key, ('topk',))}")
    topk = options.get("topk", [1, 5])
    valid = isinstance(topk, list) and topk and all(is_int(k) and k >= 1 for k in topk)
    if mode == "Eval" and not (valid and 1 in topk):
        raise ConfigError(f"Metric.Eval.TopkAcc.topk must be a list of integers >= 1 that includes 1 "
                          f"(the best checkpoint is chosen by top-1), got {shown(topk)}")
    if not valid:
        raise ConfigError(f"Metric.{mode}.TopkAcc.topk must be a non-empty list of integers >= 1, got {shown(topk)}")
    return [{"TopkAcc": {"topk": topk}}]


def _check_infer(infer, channels):
    """PaddleClas's Infer section (tools/infer.py); its files are read, and checked, only by infer."""
    ops = infer["transforms"]
    if ops is not None:
        ops = data_rules.check_eval_transforms(ops, "Infer.transforms", channels)
    images = infer["infer_imgs"]
    if images is not None and (not isinstance(images, str) or not images.strip()):
        raise ConfigError(f"Infer.infer_imgs must be an image file or a folder of images, got {shown(images)}")
    post = infer["PostProcess"]
    for key in ("class_id_map_file", "delimiter"):
        if post[key] is not None and (not isinstance(post[key], str) or not post[key]):
            raise ConfigError(f"Infer.PostProcess.{key} must be a non-empty string (or null), got {shown(post[key])}")
    return {**infer, "transforms": ops}


def _check_global_channels(settings):
    """PaddleClas's ``Global.image_channel`` (a YAML anchor for image_shape in its *_ultra configs)."""
    given = settings.get("image_channel")
    if given is not None and (not is_int(given) or given != settings["image_shape"][0]):
        raise ConfigError(f"Global.image_channel is {shown(given)} but Global.image_shape has "
                          f"{shown(settings['image_shape'][0])} channels: set both to the same number")
