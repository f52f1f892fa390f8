"""A config's ``Arch`` section: which of its keys are model arguments, PaddleClas's names for two of them, and what
``freeze`` and ``lr_mult_list`` may be."""
from ..checks import shown
from ..errors import ConfigError, is_int, is_number
from .resnet import check_build_args

# Arch keys that are not arguments of the model: pretrained and use_ssld are PaddleClas's download switches.
ARCH_NON_MODEL_KEYS = ("name", "class_num", "freeze", "lr_mult_list", "pretrained", "use_ssld", "input_image_channel",
                       "use_first_short_conv")
STAGES = ("stem", "layer1", "layer2", "layer3", "layer4")  # what Arch.freeze and Arch.lr_mult_list refer to
MAX_NAME_CHARS = 64  # the longest model name, ResNeXt152_vd_64x4d, has 20
# PaddleClas's Arch keys that are ours under another name.
PADDLECLAS_ARCH_KEYS = {"input_image_channel": "in_channels", "use_first_short_conv": "project_stage1"}


def model_options(arch):
    """The model arguments an (already checked) Arch section sets: what ``build_model`` takes beside the name."""
    return {key: value for key, value in arch.items() if key not in ARCH_NON_MODEL_KEYS and value is not None}


def _take_paddleclas_names(arch):
    out = dict(arch)
    for theirs, ours in PADDLECLAS_ARCH_KEYS.items():
        given = out.pop(theirs, None)
        if given is None:
            continue
        if ours == "project_stage1" and not isinstance(given, bool):
            raise ConfigError(f"Arch.{theirs} must be true or false, got {shown(given)}")
        if out.get(ours) not in (None, given):
            raise ConfigError(f"Arch.{theirs} ({shown(given)}) and Arch.{ours} ({shown(out[ours])}) differ: give "
                              f"one of them")
        out[ours] = given
    return out


def check_arch(arch, channels):
    """The Arch section with PaddleClas's key names taken as ours (a new dict); ConfigError for a model that
    cannot be built from it or a ``channels`` (Global.image_shape's) it does not take."""
    arch = _take_paddleclas_names(arch)
    if not isinstance(arch["name"], str) or len(arch["name"]) > MAX_NAME_CHARS:
        raise ConfigError(f"Arch.name must be a model name such as resnet50, got {type(arch['name']).__name__} "
                          f"{shown(arch['name'])}")
    options = model_options(arch)
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
    return arch
