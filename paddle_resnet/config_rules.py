"""What each config value may be, checked once when the config loads, before anything is built.

``RULES`` maps a dotted key (``*`` standing for Train and Eval) to the values it allows; the checks
below it cover what spans several keys (the model's arguments, the transform pipelines, the channel
count). Every problem is one ``ConfigError`` line naming the key, the bad value and the allowed ones.
"""

from .config import ARCH_NON_MODEL_KEYS, shown
from .data.loader import DATASETS, SAMPLERS
from .data.transforms import MAX_SIDE
from .data.pipeline import RANDOM_OPS, build_batch_transform, build_transforms, pipeline_channels, with_chw
from .engine.device import DEVICES
from .engine.trainer import AMP_DTYPES, AMP_LEVELS, DIST_BN_MODES
from .engine.losses import check_loss_entries
from .engine.optim import LR_SCHEDULES, OPTIMIZERS, check_lr
from .engine.static_step import check_to_static
from .errors import ConfigError, check_choice, did_you_mean, is_int, is_number
from .models import check_build_args

MODES = ("Train", "Eval")
MAX_WORKERS = 64  # loader processes or CPU threads: more is a typo that would fork the machine to a halt
MAX_SEED = 2**32 - 1  # what np.random.seed accepts (paddle.seed takes up to 2**64 - 1)
MAX_NAME_CHARS = 64  # the longest model name, ResNeXt152_vd_64x4d, has 20
STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")  # what Arch.freeze and Arch.lr_mult_list refer to


class Int:
    def __init__(self, minimum, maximum=None, optional=False):
        self.minimum, self.maximum, self.optional = minimum, maximum, optional

    def __call__(self, key, value):
        if value is None and self.optional:
            return
        if not is_int(value) or value < self.minimum or (self.maximum is not None and value > self.maximum):
            allowed = (f"from {self.minimum} to {self.maximum}" if self.maximum is not None
                       else f">= {self.minimum}")
            none = " (or null)" if self.optional else ""
            raise ConfigError(f"{key} must be an integer {allowed}{none}, got {shown(value)}")


class Number:
    """A real number in a range; ``low``/``high`` are inclusive unless ``open_low``/``open_high``."""

    def __init__(self, low=None, high=None, open_low=False, open_high=False, optional=False):
        self.low, self.high, self.open_low, self.open_high = low, high, open_low, open_high
        self.optional = optional

    def _range(self):
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {self.low}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {self.high}")
        return " and ".join(parts)

    def __call__(self, key, value):
        if value is None and self.optional:
            return
        ok = is_number(value, finite=True)
        if ok and self.low is not None:
            ok = value > self.low if self.open_low else value >= self.low
        if ok and self.high is not None:
            ok = value < self.high if self.open_high else value <= self.high
        if not ok:
            none = " (or null)" if self.optional else ""
            raise ConfigError(f"{key} must be a number {self._range()}{none}, got {shown(value)}")


class Path:
    def __call__(self, key, value):
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{key} must be a path (a non-empty string), got {shown(value)}")


class Bool:
    def __init__(self, hint=""):
        self.hint = hint

    def __call__(self, key, value):
        if not isinstance(value, bool):
            hint = f" ({self.hint})" if self.hint else ""
            raise ConfigError(f"{key} must be true or false{hint}, got {shown(value)}")


class WeightsPath(Path):
    """A weights file, or the name of weights shipped in a package (``imgsim:resnet50``), which must be known."""

    def __call__(self, key, value):
        if value is None:
            return
        super().__call__(key, value)
        from .weights.named import NAMED_WEIGHTS, is_weights_name
        if is_weights_name(value):
            check_choice(f"{key} (a weights name)", value, list(NAMED_WEIGHTS))


class Choice:
    def __init__(self, choices):
        self.choices = tuple(choices)

    def __call__(self, key, value):
        check_choice(key, value, self.choices)


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
    "DataLoader.*.dataset.name": Choice(DATASETS),
    "DataLoader.*.sampler.name": Choice(SAMPLERS),
    "DataLoader.*.sampler.batch_size": Int(1),
    "DataLoader.*.loader.num_workers": Int(0, MAX_WORKERS),
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
    "DataLoader.*.dataset.relabel": Bool(),
}


def _lookup(config, keys):
    """The value at ``keys`` (a list of str), or a sentinel when the path is absent."""
    node = config
    for key in keys:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return _ABSENT
    return node


_ABSENT = object()


def _expand(pattern):
    parts = pattern.split(".")
    if "*" not in parts:
        return [parts]
    i = parts.index("*")
    return [parts[:i] + [mode] + parts[i + 1:] for mode in MODES]


def check_config(config):
    """Raises ConfigError for the first value the config may not have (``config`` is already merged)."""
    _check_named_lists(config)
    for pattern, rule in RULES.items():
        for keys in _expand(pattern):
            value = _lookup(config, keys)
            if value is not _ABSENT:
                rule(".".join(k for k in keys if not k.isdigit()), value)
    check_lr(config["Optimizer"]["lr"])
    _check_image_shape(config["Global"]["image_shape"])
    _check_global_channels(config["Global"])
    _check_arch(config["Arch"], config["Global"]["image_shape"][0])
    for mode in MODES:
        _check_dataset(config["DataLoader"][mode]["dataset"], mode, config["Global"]["image_shape"][0])
    _check_infer(config["Infer"], config["Global"]["image_shape"][0])


def _check_named_lists(config):
    """PaddleClas lists such as ``Loss.Train: [{CELoss: {epsilon: 0.1}}]`` (engine/losses.py checks Loss).
    ``Metric.Train`` may be empty (PaddleClas's ``Train:`` with nothing under it): no train accuracy is logged."""
    for mode in MODES:
        check_loss_entries(config["Loss"][mode], f"Loss.{mode}")
    allowed = {"Metric": ("TopkAcc", ("topk",))}
    for section, (name, keys) in allowed.items():
        for mode in MODES:
            where = f"{section}.{mode}"
            items = config[section][mode]
            if where == "Metric.Train" and not items:
                config[section][mode] = []
                continue
            if (not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict)
                    or len(items[0]) != 1):
                raise ConfigError(f"{where} must be a list with one entry such as [{{{name}: {{...}}}}], "
                                  f"got {shown(items)}")
            (given, options), = items[0].items()
            check_choice(f"{where} entry", given, (name,))
            if options is None:
                items[0][given] = options = {}
            if not isinstance(options, dict):
                raise ConfigError(f"{where}.{name} must be a mapping of options, got {shown(options)}")
            for key in options:
                if key not in keys:
                    raise ConfigError(f"unknown key {where}.{name}.{key}{did_you_mean(key, keys)}")
            if section == "Metric":
                _check_topk(options.setdefault("topk", [1, 5]), mode)


def _check_topk(topk, mode):
    valid = isinstance(topk, list) and topk and all(is_int(k) and k >= 1 for k in topk)
    if mode == "Eval" and not (valid and 1 in topk):
        raise ConfigError(f"Metric.Eval.TopkAcc.topk must be a list of integers >= 1 that includes 1 "
                          f"(the best checkpoint is chosen by top-1), got {shown(topk)}")
    if not valid:
        raise ConfigError(f"Metric.{mode}.TopkAcc.topk must be a non-empty list of integers >= 1, got {shown(topk)}")


def _refuse_random_ops(pipeline, where):
    random_ops = [type(op).__name__ for op in pipeline.ops if isinstance(op, RANDOM_OPS)]
    if random_ops:
        raise ConfigError(f"{where}: {random_ops[0]} is random, for training only; evaluation and prediction see "
                          f"every image the same way (use ResizeImage and CropImage)")


def _check_infer(infer, channels):
    """PaddleClas's Infer section (tools/infer.py); its files are read, and checked, only by infer."""
    ops = infer["transforms"]
    if ops is not None:
        pipeline = build_transforms(ops, where="Infer.transforms")
        if not pipeline.ops or type(pipeline.ops[0]).__name__ != "DecodeImage":
            raise ConfigError(f"Infer.transforms must start with DecodeImage, got {shown(ops)}")
        _refuse_random_ops(pipeline, "Infer.transforms")
        if pipeline_channels(pipeline) != channels:
            raise ConfigError(f"Infer.transforms give {pipeline_channels(pipeline)} channel(s) but "
                              f"Global.image_shape has {channels}{_FOUR_HINT if 4 in (channels, pipeline_channels(pipeline)) else ''}")
        infer["transforms"] = with_chw(ops, "Infer.transforms")
    images = infer["infer_imgs"]
    if images is not None and (not isinstance(images, str) or not images.strip()):
        raise ConfigError(f"Infer.infer_imgs must be an image file or a folder of images, got {shown(images)}")
    post = infer["PostProcess"]
    for key in ("class_id_map_file", "delimiter"):
        if post[key] is not None and (not isinstance(post[key], str) or not post[key]):
            raise ConfigError(f"Infer.PostProcess.{key} must be a non-empty string (or null), got {shown(post[key])}")


def _check_image_shape(shape):
    if (len(shape) != 3 or not all(is_int(d) and d >= 1 for d in shape) or shape[0] not in (1, 3, 4)
            or max(shape[1:]) > MAX_SIDE):
        raise ConfigError(f"Global.image_shape must be [channels, height, width] with 1, 3 or 4 channels and "
                          f"sides from 1 to {MAX_SIDE}, got {shown(shape)}")


_FOUR_HINT = (": 4 channels are PaddleClas's *_ultra layout, 3 decoded + the zero channel of NormalizeImage's "
              "channel_num: 4, with Arch.input_image_channel: 4")


def _check_global_channels(g):
    """PaddleClas's ``Global.image_channel`` (a YAML anchor for image_shape in its *_ultra configs)."""
    given = g.get("image_channel")
    if given is not None and (not is_int(given) or given != g["image_shape"][0]):
        raise ConfigError(f"Global.image_channel is {shown(given)} but Global.image_shape has "
                          f"{shown(g['image_shape'][0])} channels: set both to the same number")


def _check_arch(arch, channels):
    if arch.get("input_image_channel") is not None:  # PaddleClas's name for in_channels
        given = arch.pop("input_image_channel")
        if arch.get("in_channels") not in (None, given):
            raise ConfigError(f"Arch.input_image_channel ({shown(given)}) and Arch.in_channels "
                              f"({shown(arch['in_channels'])}) differ: give one of them")
        arch["in_channels"] = given
    arch.pop("input_image_channel", None)
    if arch.get("use_first_short_conv") is not None:  # PaddleClas's: project stage 1's first block or not
        given = arch.pop("use_first_short_conv")
        if not isinstance(given, bool):
            raise ConfigError(f"Arch.use_first_short_conv must be true or false, got {shown(given)}")
        if arch.get("project_stage1") not in (None, given):
            raise ConfigError(f"Arch.use_first_short_conv ({given}) and Arch.project_stage1 "
                              f"({arch['project_stage1']}) differ: give one of them")
        arch["project_stage1"] = given
    arch.pop("use_first_short_conv", None)
    if not isinstance(arch["name"], str) or len(arch["name"]) > MAX_NAME_CHARS:
        raise ConfigError(f"Arch.name must be a model name such as resnet50, got {type(arch['name']).__name__} "
                          f"{shown(arch['name'])}")
    options = {k: v for k, v in arch.items()
               if k not in ARCH_NON_MODEL_KEYS and v is not None}
    try:
        check_build_args(arch["name"], arch["class_num"], **options)
    except ConfigError as err:
        raise ConfigError(f"Arch: {err}") from None
    in_channels = options.get("in_channels", 3)
    if in_channels != channels:
        raise ConfigError(f"Arch.in_channels is {in_channels} but Global.image_shape {channels} channels: "
                          f"set both to the same number (and DecodeImage's channels to it)")
    freeze = arch["freeze"]
    if freeze is not None and freeze != "backbone" and not (is_int(freeze) and 0 <= freeze < len(STAGES) - 1):
        raise ConfigError(f"Arch.freeze must be 'backbone' or a stage number 0..{len(STAGES) - 2} "
                          f"(0 = stem only), got {shown(freeze)}")
    mults = arch["lr_mult_list"]
    if mults is not None and (not isinstance(mults, list) or len(mults) != len(STAGES)
                              or not all(is_number(m) and m >= 0 for m in mults)):
        raise ConfigError(f"Arch.lr_mult_list must be {len(STAGES)} numbers >= 0 ({', '.join(STAGES)}), "
                          f"got {shown(mults)}")


def _check_dataset(dataset, mode, channels):
    where = f"DataLoader.{mode}.dataset"
    if dataset["name"] in ("FileList", "ImageNetDataset") and not dataset.get("cls_label_path"):
        raise ConfigError(f"missing required key {where}.cls_label_path for {dataset['name']} "
                          f"(a list of 'relative/path label' lines)")
    if dataset["name"] == "ImageFolder" and dataset.get("cls_label_path"):
        raise ConfigError(f"{where}.cls_label_path is for FileList; an ImageFolder takes its labels from "
                          f"the class folders under image_root")
    # PaddleClas's datasets transpose HWC to CHW after the last op; the effective config says so.
    dataset["transform_ops"] = with_chw(dataset["transform_ops"], f"{where}.transform_ops")
    pipeline = build_transforms(dataset["transform_ops"], where=f"{where}.transform_ops")
    decode = pipeline.ops[0] if pipeline.ops else None
    if type(decode).__name__ != "DecodeImage":
        raise ConfigError(f"{where}.transform_ops must start with DecodeImage (the dataset hands it the file), "
                          f"got {shown(dataset['transform_ops'])}")
    if mode != "Train":
        _refuse_random_ops(pipeline, f"{where}.transform_ops")
    decoded = pipeline_channels(pipeline)
    if decoded == 4 or channels == 4:
        if decoded != channels:
            raise ConfigError(f"{where}.transform_ops give {decoded} channel(s) but Global.image_shape has "
                              f"{channels}{_FOUR_HINT}")
    elif decoded != channels:
        raise ConfigError(f"{where}.transform_ops: DecodeImage gives {decoded} channel(s) but "
                          f"Global.image_shape has {channels}: set DecodeImage's channels to {channels}")
    batch_ops = dataset.get("batch_transform_ops")
    if batch_ops and mode != "Train":
        raise ConfigError(f"{where}.batch_transform_ops: batch ops are for training only")
    build_batch_transform(batch_ops, where=f"{where}.batch_transform_ops")
