"""What a config's ``DataLoader`` sections and ``Global.image_shape`` may be, checked when the config loads."""
from ..checks import MAX_WORKERS, Bool, Choice, Int, Number, shown
from ..errors import ConfigError, is_int
from .loader import DATASETS, SAMPLERS
from .pipeline import RANDOM_OPS, build_batch_transform, build_transforms, pipeline_channels, with_chw
from .transforms import MAX_SIDE

RULES = {
    "DataLoader.*.dataset.name": Choice(DATASETS),
    "DataLoader.*.dataset.relabel": Bool(),
    "DataLoader.*.sampler.name": Choice(SAMPLERS),
    "DataLoader.*.sampler.batch_size": Int(1),
    "DataLoader.*.sampler.power": Number(0, 1),
    "DataLoader.*.loader.num_workers": Int(0, MAX_WORKERS),
}

FOUR_CHANNEL_HINT = (": 4 channels are PaddleClas's *_ultra layout, 3 decoded + the zero channel of NormalizeImage's "
                     "channel_num: 4, with Arch.input_image_channel: 4")


def check_sampler(sampler, mode):
    """ClassBalancedSampler draws at random, for training only; ``power`` is its own key."""
    where = f"DataLoader.{mode}.sampler"
    if sampler["name"] == "ClassBalancedSampler" and mode != "Train":
        raise ConfigError(f"{where}.name: ClassBalancedSampler draws images at random, for training; evaluation "
                          f"sees every image once (DistributedBatchSampler)")
    if "power" in sampler and sampler["name"] != "ClassBalancedSampler":
        raise ConfigError(f"{where}.power is ClassBalancedSampler's; {where}.name is {sampler['name']}")


def check_image_shape(shape):
    if (len(shape) != 3 or not all(is_int(d) and d >= 1 for d in shape) or shape[0] not in (1, 3, 4)
            or max(shape[1:]) > MAX_SIDE):
        raise ConfigError(f"Global.image_shape must be [channels, height, width] with 1, 3 or 4 channels and "
                          f"sides from 1 to {MAX_SIDE}, got {shown(shape)}")


def refuse_random_ops(pipeline, where):
    random_ops = [type(op).__name__ for op in pipeline.ops if isinstance(op, RANDOM_OPS)]
    if random_ops:
        raise ConfigError(f"{where}: {random_ops[0]} is random, for training only; evaluation and prediction see "
                          f"every image the same way (use ResizeImage and CropImage)")


def check_eval_transforms(ops, where, channels):
    """An Eval or Infer op list: starts with DecodeImage, draws nothing at random, gives ``channels``; returned
    with PaddleClas's implicit HWC -> CHW spelled out as a final ToCHWImage."""
    pipeline = build_transforms(ops, where=where)
    if not pipeline.ops or type(pipeline.ops[0]).__name__ != "DecodeImage":
        raise ConfigError(f"{where} must start with DecodeImage, got {shown(ops)}")
    refuse_random_ops(pipeline, where)
    given = pipeline_channels(pipeline)
    if given != channels:
        hint = FOUR_CHANNEL_HINT if 4 in (channels, given) else ""
        raise ConfigError(f"{where} give {given} channel(s) but Global.image_shape has {channels}{hint}")
    return with_chw(ops, where)


def check_dataset(dataset, mode, channels):
    """``DataLoader.<mode>.dataset`` -> the same with its ``transform_ops`` ending in CHW (a new dict)."""
    where = f"DataLoader.{mode}.dataset"
    if dataset["name"] in ("FileList", "ImageNetDataset") and not dataset.get("cls_label_path"):
        raise ConfigError(f"missing required key {where}.cls_label_path for {dataset['name']} "
                          f"(a list of 'relative/path label' lines)")
    if dataset["name"] == "ImageFolder" and dataset.get("cls_label_path"):
        raise ConfigError(f"{where}.cls_label_path is for FileList; an ImageFolder takes its labels from "
                          f"the class folders under image_root")
    # PaddleClas's datasets transpose HWC to CHW after the last op; the effective config says so.
    ops = with_chw(dataset["transform_ops"], f"{where}.transform_ops")
    pipeline = build_transforms(ops, where=f"{where}.transform_ops")
    decode = pipeline.ops[0] if pipeline.ops else None
    if type(decode).__name__ != "DecodeImage":
        raise ConfigError(f"{where}.transform_ops must start with DecodeImage (the dataset hands it the file), "
                          f"got {shown(dataset['transform_ops'])}")
    if mode != "Train":
        refuse_random_ops(pipeline, f"{where}.transform_ops")
    decoded = pipeline_channels(pipeline)
    if decoded == 4 or channels == 4:
        if decoded != channels:
            raise ConfigError(f"{where}.transform_ops give {decoded} channel(s) but Global.image_shape has "
                              f"{channels}{FOUR_CHANNEL_HINT}")
    elif decoded != channels:
        raise ConfigError(f"{where}.transform_ops: DecodeImage gives {decoded} channel(s) but "
                          f"Global.image_shape has {channels}: set DecodeImage's channels to {channels}")
    batch_ops = dataset.get("batch_transform_ops")
    if batch_ops and mode != "Train":
        raise ConfigError(f"{where}.batch_transform_ops: batch ops are for training only")
    build_batch_transform(batch_ops, where=f"{where}.batch_transform_ops")
    return {**dataset, "transform_ops": ops}
