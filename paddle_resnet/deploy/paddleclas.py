"""Inference models exported by PaddleClas itself, and PaddleClas's ``deploy/configs/inference_cls.yaml``.

PaddleClas's export folder holds ``inference.json`` (Paddle 3) or ``inference.pdmodel`` (Paddle 2) and
``inference.pdiparams`` but no ``inference.yml``: its ``deploy/python/predict_cls.py`` takes the
preprocessing and the top-k from ``inference_cls.yaml`` instead. This module turns such a folder, with or
without that yaml, into an ``InferenceConfig`` the ``Predictor`` runs, and checks every key of the yaml:
read, refused with the nearest valid key, or accepted with one warning saying why it has no effect here.
PaddleClas's own readers are ``deploy/python/{predict_cls,preprocess,postprocess}.py`` and
``deploy/utils/predictor.py`` (PaddleClas 2.6); what they do is followed here unless noted.
"""
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..data.pipeline import build_transforms
from ..errors import (ConfigError, InputError, check_choice, choice_error, did_you_mean, is_int, is_number,
                      short_repr)
from ..labels import read_class_id_map
from ..yaml_io import read_yaml_file
from .model_dir import CONFIG_FILE, PROGRAM_FILES, InferenceConfig, committed_file

logger = logging.getLogger(__name__)

MAX_CONFIG_BYTES = 1 << 20  # an inference_cls.yaml is about 1 KB

# deploy/configs/inference_cls.yaml's PreProcess, the one predict_cls.py runs on ImageNet models.
PADDLECLAS_PREPROCESS = [
    {"ResizeImage": {"resize_short": 256}},
    {"CropImage": {"size": 224}},
    {"NormalizeImage": {"scale": 0.00392157, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                        "order": ""}},
    {"ToCHWImage": None},
]
DEFAULTS_SUMMARY = "RGB, resize short side to 256, center crop 224, ImageNet mean/std, CHW"
# predict_cls.py decodes with cv2 and flips BGR to RGB before the PreProcess ops run.
DECODE = {"DecodeImage": {"to_rgb": True}}
SUPPORTED_OPS = ("ResizeImage", "CropImage", "NormalizeImage", "ToCHWImage")
NOT_FOR_INFERENCE = {
    "DecodeImage": "predict_cls.py decodes every image itself (to RGB) before PreProcess; remove it",
    "RandCropImage": "it is random; an inference pipeline must be deterministic",
    "RandFlipImage": "it is random; an inference pipeline must be deterministic",
    "AutoAugment": "it is random; an inference pipeline must be deterministic",
    **{name: "it is random; an inference pipeline must be deterministic"
       for name in ("RandAugment", "TimmAutoAugment", "RandomErasing", "Cutout", "GridMask", "HideAndSeek",
                    "ColorJitter", "RandomRotation", "RandomResizedCrop")},
}
SECTIONS = ("Global", "PreProcess", "PostProcess")
# Global keys with no effect here: (the value at which they would matter, why they do not).
NO_EFFECT = {
    "enable_benchmark": (True, "predict_cls.py itself never reads it; time the model with predict.py --benchmark"),
    "benchmark": (True, "PaddleClas's auto_log timing is not run here; use predict.py --benchmark"),
    "enable_profile": (True, "Paddle Inference's profiler is not switched on here"),
    "ir_optim": (False, "Paddle Inference's IR optimisation always runs here (it does not change predictions)"),
    "save_log_path": (None, "it is the log of PaddleClas's auto_log benchmark, which is not run here"),
    "model_name": (None, "it only names PaddleClas's auto_log benchmark, which is not run here"),
}
BOOL_KEYS = ("use_gpu", "enable_mkldnn", "use_fp16", "use_int8", "use_tensorrt", "use_onnx",
             "use_npu", "use_xpu", "use_mlu", "enable_benchmark", "benchmark", "enable_profile", "ir_optim")
INT_KEYS = ("batch_size", "cpu_num_threads", "gpu_mem")
PATH_KEYS = ("infer_imgs", "inference_model_dir", "save_log_path", "model_name")
GLOBAL_KEYS = BOOL_KEYS + INT_KEYS + PATH_KEYS


def has_paddleclas_export(model_dir):
    """True for a folder with a Paddle program but no inference.yml: an export made by PaddleClas."""
    return (not committed_file(model_dir, CONFIG_FILE).is_file()
            and any(committed_file(model_dir, name).is_file() for name in PROGRAM_FILES))


@dataclass
class PaddleClasInferenceConfig(InferenceConfig):
    """An ``InferenceConfig`` built from PaddleClas's files rather than our inference.yml."""
    origin: str = "PaddleClas's default preprocessing"  # where the preprocessing and label names came from
    labels_file: Optional[str] = None

    def remedy(self, model_dir):
        if self.labels_file:
            return (f"The class names come from PostProcess.Topk.class_id_map_file {self.labels_file}: give one "
                    f"'<class id> <name>' line per class of the model")
        return f"The model folder was read as a PaddleClas export ({self.origin}); export it again"


@dataclass
class DeployConfig:
    """What ``inference_cls.yaml`` asks for. ``None`` means "not given": the caller's default applies."""
    path: Path
    transform_ops: list  # ours (DecodeImage first), ready for build_transforms
    image_shape: tuple
    label_names: Optional[list] = None
    labels_file: Optional[str] = None
    top_k: Optional[int] = None
    model_dir: Optional[str] = None
    infer_imgs: Optional[str] = None
    batch_size: Optional[int] = None
    predictor_options: dict = field(default_factory=dict)  # Predictor keyword arguments from Global

    def inference_config(self):
        return PaddleClasInferenceConfig(transform_ops=self.transform_ops, image_shape=self.image_shape,
                                         softmax=None, label_list=self.label_names,
                                         origin=f"preprocessing from {self.path}", labels_file=self.labels_file)


def load_inference_config(model_dir, deploy_config=None):
    """The preprocessing and label names for ``model_dir``: from ``deploy_config`` (an inference_cls.yaml
    path or a ``DeployConfig``) when given, else from our inference.yml, else, for a PaddleClas export,
    PaddleClas's defaults (said in one log line)."""
    if deploy_config is not None:
        deploy = deploy_config if isinstance(deploy_config, DeployConfig) else read_deploy_config(deploy_config)
        logger.info("%s: preprocessing and class names from %s (PaddleClas deploy config; images resized with "
                    "PIL's bilinear where PaddleClas's default is cv2's)", model_dir, deploy.path)
        return deploy.inference_config()
    if not has_paddleclas_export(model_dir):
        return InferenceConfig.load(model_dir)  # ours, or the error naming what is missing
    logger.info("%s has no %s: read as a PaddleClas export, preprocessed as PaddleClas's predict_cls.py does "
                "(%s; resized with PIL's bilinear where PaddleClas's default is cv2's), no class names; "
                "-c inference_cls.yaml changes that", model_dir, CONFIG_FILE, DEFAULTS_SUMMARY)
    transform_ops = [DECODE] + PADDLECLAS_PREPROCESS
    return PaddleClasInferenceConfig(transform_ops=transform_ops,
                                     image_shape=_output_shape(transform_ops, "PaddleClas's default PreProcess"),
                                     softmax=None)


def read_deploy_config(path, overrides=()):
    """Reads and checks PaddleClas's ``inference_cls.yaml``; ``overrides`` are ``-o Section.key=value``."""
    from ..config_schema import apply_override
    path = Path(path)
    data = read_yaml_file(path, "deploy config", MAX_CONFIG_BYTES) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected the sections {', '.join(SECTIONS)}, got {type(data).__name__} "
                          f"{short_repr(data)}")
    for override in overrides:
        apply_override(data, override)
    return _DeployConfigReader(path, data).read()


class _DeployConfigReader:
    def __init__(self, path, data):
        self.path, self.data = path, data

    def error(self, key, message):
        return ConfigError(f"{self.path}: {key} {message}")

    def section(self, name):
        value = self.data.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(name, f"must be a mapping, got {type(value).__name__} {short_repr(value)}")
        return value

    def read(self):
        for name in self.data:
            if name not in SECTIONS:
                raise ConfigError(f"{self.path}: unknown section {short_repr(name)}; a PaddleClas classification "
                                  f"deploy config has {', '.join(SECTIONS)}{did_you_mean(name, SECTIONS)}")
        settings = self.read_global(self.section("Global"))
        transform_ops = self.read_preprocess(self.section("PreProcess"))
        top_k, names, labels_file = self.read_postprocess(self.section("PostProcess"))
        return DeployConfig(path=self.path, transform_ops=transform_ops,
                            image_shape=_output_shape(transform_ops, f"{self.path}: PreProcess.transform_ops"),
                            label_names=names, labels_file=labels_file, top_k=top_k, **settings)

    # ---- Global ----
    def read_global(self, section):
        for key, value in section.items():
            if key not in GLOBAL_KEYS:
                raise self.error(f"Global.{key}", f"is not a key of PaddleClas's deploy Global section; known keys: "
                                                  f"{', '.join(GLOBAL_KEYS)}{did_you_mean(key, GLOBAL_KEYS)}")
            self.check_global_type(key, value)
        get = section.get
        for key in ("use_npu", "use_xpu", "use_mlu"):
            if get(key):
                raise self.error(f"Global.{key}", "true is not supported: this predictor runs on CPUs and NVIDIA "
                                                  "GPUs (Global.use_gpu)")
        if get("use_fp16") and get("use_int8"):
            raise self.error("Global.use_fp16", "and Global.use_int8 are both true; choose one precision")
        for key, (matters_at, why) in NO_EFFECT.items():
            if key in section and (matters_at is None or get(key) == matters_at):
                logger.warning("%s: Global.%s=%r has no effect here: %s", self.path, key, get(key), why)
        options = {"device": self.device(get("use_gpu", False))}
        for key in ("use_tensorrt", "use_fp16", "use_int8"):
            if get(key) and options["device"] == "cpu":
                raise self.error(f"Global.{key}", "true needs a GPU (Global.use_gpu: true with a CUDA build of "
                                                  "PaddlePaddle); on the CPU set it to false")
        if options["device"] == "gpu":
            options["use_tensorrt"] = bool(get("use_tensorrt", False))
        if "gpu_mem" in section and options["device"] == "gpu":
            logger.warning("%s: Global.gpu_mem has no effect here: Paddle Inference's GPU memory pool starts at "
                           "256 MB and grows as needed", self.path)
        if "enable_mkldnn" in section:
            options["use_mkldnn"] = get("enable_mkldnn")
        if "cpu_num_threads" in section:
            options["cpu_threads"] = get("cpu_num_threads")
        if get("use_fp16") or get("use_int8"):
            options["precision"] = "fp16" if get("use_fp16") else "int8"
        if get("use_onnx"):
            options["backend"] = "onnxruntime"
        return dict(model_dir=get("inference_model_dir"), infer_imgs=get("infer_imgs"),
                    batch_size=get("batch_size"), predictor_options=options)

    def check_global_type(self, key, value):
        if key in BOOL_KEYS and not isinstance(value, bool):
            raise self.error(f"Global.{key}", f"must be true or false, got {short_repr(value)}")
        if key in INT_KEYS and not (is_int(value) and value >= 1):
            raise self.error(f"Global.{key}", f"must be an integer >= 1, got {short_repr(value)}")
        if key in PATH_KEYS and not (isinstance(value, str) and value):
            raise self.error(f"Global.{key}", f"must be a non-empty string, got {short_repr(value)}")

    def device(self, use_gpu):
        if not use_gpu:
            return "cpu"
        import paddle
        if paddle.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
            return "gpu"
        # What PaddleClas's predictor does too: Paddle Inference falls back to the CPU.
        logger.warning("%s: Global.use_gpu is true but %s; running on the CPU", self.path,
                       "this PaddlePaddle is a CPU-only build" if not paddle.is_compiled_with_cuda()
                       else "no GPU is visible")
        return "cpu"

    # ---- PreProcess ----
    def read_preprocess(self, section):
        for key in section:
            if key != "transform_ops":
                raise self.error(f"PreProcess.{key}", f"is not a key of PreProcess; it has transform_ops only"
                                                      f"{did_you_mean(key, ['transform_ops'])}")
        ops = section.get("transform_ops")
        if ops is None:
            raise self.error("PreProcess.transform_ops", "is missing: predict_cls.py would feed the decoded images "
                                                         "to the model as they are; list the ops")
        if not isinstance(ops, list):
            raise self.error("PreProcess.transform_ops", f"must be a list of ops, got {short_repr(ops)}")
        ours = [DECODE] + [self.translate_op(i, entry) for i, entry in enumerate(ops)]
        build_transforms(ours, where=f"{self.path}: PreProcess.transform_ops")  # our checks of every value
        return ours

    def translate_op(self, index, entry):
        where = f"PreProcess.transform_ops[{index}]"
        if not (isinstance(entry, dict) and len(entry) == 1):
            raise self.error(where, f"must be {{OpName: {{arguments}}}}, got {short_repr(entry)}")
        (name, args), = entry.items()
        if name in NOT_FOR_INFERENCE:
            raise ConfigError(f"{self.path}: {where}: {name} is not supported here: {NOT_FOR_INFERENCE[name]}")
        if name not in SUPPORTED_OPS:
            raise choice_error(f"{self.path}: {where}: op", name, SUPPORTED_OPS)
        args = {} if args is None else args
        if not isinstance(args, dict):
            raise self.error(f"{where}.{name}", f"takes {{argument: value}}, got {short_repr(args)}")
        return {name: getattr(self, f"translate_{name}")(f"{where}.{name}", dict(args))}

    def known_arguments(self, where, args, known):
        for key in args:
            if key not in known:
                raise self.error(where, f"has no argument {short_repr(key)}; its arguments are {', '.join(known)}"
                                        f"{did_you_mean(key, known)}")

    def translate_ResizeImage(self, where, args):
        self.known_arguments(where, args, ("size", "resize_short", "interpolation", "backend", "return_numpy"))
        if "backend" in args:
            backend = check_choice(f"{self.path}: {where}.backend", str(args.pop("backend")).lower(), ("cv2", "pil"))
            if backend == "cv2":
                logger.warning("%s: %s.backend 'cv2': images are resized with PIL here (cv2 is not a dependency); "
                               "scores can differ slightly from predict_cls.py's", self.path, where)
        return_numpy = args.pop("return_numpy", True)
        if not isinstance(return_numpy, bool):
            raise self.error(f"{where}.return_numpy", f"must be true or false, got {short_repr(return_numpy)}")
        if args.get("interpolation") == "random":
            raise self.error(f"{where}.interpolation", "'random' is random; an inference pipeline must be "
                                                       "deterministic")
        # PaddleClas takes resize_short when it is a positive number, else size.
        short = args.get("resize_short")
        if is_number(short) and short > 0:
            args.pop("size", None)
        elif args.get("size") is not None:
            args.pop("resize_short", None)
        return args

    def translate_CropImage(self, where, args):
        self.known_arguments(where, args, ("size",))
        return args

    def translate_NormalizeImage(self, where, args):
        self.known_arguments(where, args, ("scale", "mean", "std", "order", "output_fp16", "channel_num"))
        channel_num = args.pop("channel_num", 3)
        if channel_num != 3 or isinstance(channel_num, bool):
            raise self.error(f"{where}.channel_num", f"{short_repr(channel_num)} is not supported: the fourth, "
                                                     f"all-zero channel of channel_num 4 is for 4-channel "
                                                     f"models; use 3")
        output_fp16 = args.pop("output_fp16", False)
        if output_fp16 is not False:
            raise self.error(f"{where}.output_fp16", f"{short_repr(output_fp16)} is not supported: the predictor feeds "
                                                     f"float32 images (fp16 is Global.use_fp16); use false")
        return args

    def translate_ToCHWImage(self, where, args):
        self.known_arguments(where, args, ())
        return None

    # ---- PostProcess ----
    def read_postprocess(self, section):
        top_k, names, labels_file = None, None, None
        for key, args in section.items():
            if key == "main_indicator":
                if args not in (None, "Topk"):
                    raise choice_error(f"{self.path}: PostProcess.main_indicator", args, ("Topk",))
                continue
            if key == "SavePreLabel":
                logger.warning("%s: PostProcess.SavePreLabel is ignored: copying each image into a folder named "
                               "after its class is not done here; use predict.py --json", self.path)
                continue
            if key != "Topk":
                raise choice_error(f"{self.path}: PostProcess op", key, ("Topk", "SavePreLabel"))
            top_k, names, labels_file = self.read_topk({} if args is None else args)
        return top_k, names, labels_file

    def read_topk(self, args):
        where = "PostProcess.Topk"
        if not isinstance(args, dict):
            raise self.error(where, f"takes {{argument: value}}, got {short_repr(args)}")
        self.known_arguments(where, args, ("topk", "class_id_map_file", "delimiter", "label_list"))
        top_k = args.get("topk", 1)  # PaddleClas's Topk default
        if not (is_int(top_k) and top_k >= 1):
            raise self.error(f"{where}.topk", f"must be an integer >= 1, got {short_repr(top_k)}")
        delimiter = args.get("delimiter")
        if delimiter is not None and not (isinstance(delimiter, str) and delimiter and "\n" not in delimiter):
            raise self.error(f"{where}.delimiter", f"must be a non-empty string on one line, "
                                                   f"got {short_repr(delimiter)}")
        label_list = args.get("label_list")
        if label_list:  # PaddleClas: label_list wins over class_id_map_file
            if not (isinstance(label_list, list) and all(isinstance(n, (str, int)) for n in label_list)):
                raise self.error(f"{where}.label_list", f"must be a list of names, got {short_repr(label_list)}")
            return top_k, [str(n) for n in label_list], None
        file = args.get("class_id_map_file")
        if file is None:
            return top_k, None, None
        if not (isinstance(file, str) and file):
            raise self.error(f"{where}.class_id_map_file", f"must be a path, got {short_repr(file)}")
        if not os.path.isfile(file):
            # PaddleClas warns and goes on without names; so does this.
            logger.warning("%s: %s.class_id_map_file %s does not exist: predictions carry class ids, no names",
                           self.path, where, file)
            return top_k, None, None
        return top_k, read_class_id_map(file, delimiter or " "), file


def _output_shape(transform_ops, where):
    """The CHW shape every image gets; an error when the ops do not give one fixed CHW shape."""
    transforms = build_transforms(transform_ops, where=where)
    try:
        shapes = {tuple(transforms(np.full((h, w, 3), 128, np.uint8)).shape) for h, w in ((300, 400), (400, 300))}
    except InputError as error:  # e.g. a crop larger than the resize
        raise ConfigError(f"{where} cannot run: {error}") from None
    shape = shapes.pop()
    if shapes or len(shape) != 3 or shape[0] != 3:
        raise ConfigError(f"{where} must turn every image into one 3xHxW array (a fixed size from CropImage or "
                          f"ResizeImage size, then ToCHWImage); they turn a 400x300 image into {list(shape)}")
    return shape
