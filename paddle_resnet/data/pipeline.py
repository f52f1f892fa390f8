"""Config op lists -> pipelines: the table of every op a ``transform_ops`` / ``batch_transform_ops`` list may
name, building and checking those lists (op order, layout, channels), and what an eval pipeline tells deployment."""
from ..checks import instantiate
from ..errors import ConfigError, choice_error, short_repr
from .augment import (AutoAugment, ColorJitter, Cutout, GridMask, HideAndSeek, RandAugment, RandomErasing,
                      RandomResizedCrop, RandomRotation)
from .batch_ops import BATCH_OPS, REFUSED_BATCH_OPS
from .lighting import PCALighting
from .timm_augment import TimmAutoAugment
from .transforms import (Compose, CropImage, DecodeImage, NormalizeImage, RandCropImage, RandFlipImage, ResizeImage,
                         ToCHWImage)

AUGMENT_OPS = {op.__name__: op for op in (AutoAugment, RandAugment, TimmAutoAugment, RandomErasing, Cutout, GridMask,
                                          HideAndSeek, ColorJitter, RandomRotation, RandomResizedCrop)}
# Ops whose input must be the decoded uint8 image, and ops told whether the pipeline is CHW where they run.
UINT8_OPS = (AutoAugment, RandAugment, TimmAutoAugment, ColorJitter, RandomRotation, RandomResizedCrop)
LAYOUT_OPS = (RandomErasing, Cutout, GridMask, HideAndSeek)


SAMPLE_OPS = {op.__name__: op for op in (DecodeImage, RandCropImage, RandFlipImage, ResizeImage, CropImage,
                                         NormalizeImage, ToCHWImage, PCALighting)}
SAMPLE_OPS.update(AUGMENT_OPS)
# Ops that draw from the rng: refused in Eval, Infer and export (evaluation sees every image the same way).
RANDOM_OPS = (RandCropImage, RandFlipImage, PCALighting, *AUGMENT_OPS.values())


def _build_ops(op_list, registry, where):
    if op_list is None:
        return []
    if not isinstance(op_list, (list, tuple)):
        raise ConfigError(f"{where} must be a list of ops, each 'Name' or {{Name: {{arguments}}}}, got {op_list!r}")
    return [_build_op(entry, registry, where) for entry in op_list]


def _build_op(entry, registry, where):
    if isinstance(entry, str):
        name, kwargs = entry, None
    elif isinstance(entry, dict) and len(entry) == 1:
        (name, kwargs), = entry.items()
    else:
        raise ConfigError(f"{where}: each op must be 'Name' or {{Name: {{arguments}}}}, got {entry!r}")
    if name not in registry:
        raise choice_error(f"{where}: op", name, list(registry))
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ConfigError(f"{where}: {name} takes {{argument: value, ...}}, got {kwargs!r}")
    try:
        return instantiate(registry[name], kwargs or {}, name)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


# Ops that work on the decoded uint8 HWC image, and the ops after which that image is gone.
PIXEL_OPS = (RandCropImage, RandFlipImage, ResizeImage, CropImage) + UINT8_OPS
FLOAT_OR_CHW_OPS = (NormalizeImage, ToCHWImage, PCALighting)


def _check_order(ops, where):
    for i, op in enumerate(ops):
        earlier = next((o for o in ops[:i] if isinstance(o, FLOAT_OR_CHW_OPS)), None)
        if isinstance(op, PIXEL_OPS) and earlier is not None:
            raise ConfigError(f"{where}: {type(op).__name__} must come before {type(earlier).__name__} "
                              f"(it works on the decoded uint8 image)")


def _gives_chw(ops, where):
    """Whether the pipeline already ends in CHW (DecodeImage channel_first, or ToCHWImage)."""
    chw = False
    for op in ops:
        if isinstance(op, ToCHWImage) and chw:
            raise ConfigError(f"{where}: ToCHWImage after DecodeImage channel_first: true would transpose twice; "
                              f"keep one of them")
        if isinstance(op, DecodeImage):
            chw = op.channel_first
        elif isinstance(op, ToCHWImage):
            chw = True
    return chw


def _tell_layout(ops):
    """Tell each op of ``LAYOUT_OPS`` whether the image is CHW where it runs (DecodeImage channel_first,
    ToCHWImage, or NormalizeImage's ``order: chw`` taking it so), as PaddleClas's ops tell by type."""
    chw = False
    for op in ops:
        if isinstance(op, DecodeImage):
            chw = op.channel_first
        elif isinstance(op, ToCHWImage):
            chw = True
        elif isinstance(op, LAYOUT_OPS):
            op.chw = chw


def pipeline_channels(pipeline):
    """The channels a built pipeline gives: DecodeImage's, plus one for NormalizeImage's ``channel_num: 4``."""
    channels = 3
    for op in pipeline.ops:
        if isinstance(op, DecodeImage):
            channels = op.channels
        elif isinstance(op, NormalizeImage) and op.channel_num == 4:
            channels = 4
    return channels


def build_transforms(op_list, where="transform_ops", chw=False):
    """The ``transform_ops`` list of a config -> Compose. ``where`` (the config key) starts error messages.

    ``chw=True`` (datasets, inference): as PaddleClas's datasets do, an image still HWC after the last op is
    transposed to CHW, so a list without ToCHWImage works and one with it is not transposed twice.
    """
    ops = _build_ops(op_list, SAMPLE_OPS, where)
    _check_order(ops, where)
    _tell_layout(ops)
    if chw and not _gives_chw(ops, where):
        ops.append(ToCHWImage())
    return Compose(ops)


def with_chw(op_list, where="transform_ops"):
    """``op_list`` with PaddleClas's implicit HWC -> CHW spelled out as a final ``ToCHWImage`` (when needed)."""
    ops = list(op_list or [])
    return ops if _gives_chw(_build_ops(ops, SAMPLE_OPS, where), where) else ops + ["ToCHWImage"]


def build_batch_transform(op_list, where="batch_transform_ops"):
    """The ``batch_transform_ops`` list -> one batch op, or None when the list is empty."""
    for entry in op_list if isinstance(op_list, (list, tuple)) else ():
        name = entry if isinstance(entry, str) else next(iter(entry), None) if isinstance(entry, dict) else None
        if name in REFUSED_BATCH_OPS:
            raise ConfigError(f"{where}: {name} {REFUSED_BATCH_OPS[name]}")
    ops = _build_ops(op_list, BATCH_OPS, where)
    if len(ops) > 1:
        raise ConfigError(f"{where}: only one batch op is supported, got {len(ops)}: {short_repr(op_list)}; "
                          f"combine them with OpSampler")
    return ops[0] if ops else None


def describe_eval_preprocess(op_list):
    """A deterministic eval pipeline as a plain dict, for deployment metadata (inference.yml).

    Keys: resize_short (int or None), resize_size ([w, h] or None), crop_size ([w, h] or None),
    mean, std, scale (floats), channels (3 or 1), channel_order ('RGB', 'BGR' or 'GRAY'), layout ('CHW' or 'HWC').
    """
    info = {"resize_short": None, "resize_size": None, "crop_size": None, "mean": None, "std": None,
            "scale": None, "channels": 3, "channel_order": "RGB", "layout": "HWC"}
    for op in build_transforms(op_list, chw=True).ops:
        if isinstance(op, RANDOM_OPS):
            raise ConfigError(f"{type(op).__name__} is random; an eval pipeline must be deterministic")
        if isinstance(op, DecodeImage):
            info["channels"] = op.channels
            info["channel_order"] = "GRAY" if op.channels == 1 else "RGB" if op.to_rgb else "BGR"
            info["layout"] = "CHW" if op.channel_first else "HWC"
        elif isinstance(op, ResizeImage):
            info["resize_short"] = op.resize_short
            info["resize_size"] = list(op.size) if op.size is not None else None
        elif isinstance(op, CropImage):
            info["crop_size"] = [op.width, op.height]
        elif isinstance(op, NormalizeImage):
            info.update(mean=op.mean.tolist(), std=op.std.tolist(), scale=op.scale)
        elif isinstance(op, ToCHWImage):
            info["layout"] = "CHW"
    return info
