"""The layout of an exported inference directory and its ``inference.yml``.

An export directory holds the Paddle program (``inference.json`` from Paddle 3, ``inference.pdmodel``
from Paddle 2), ``inference.pdiparams``, optionally ``inference.onnx``, and ``inference.yml`` that says
how to preprocess images and which of those files were written.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from ..labels import CLASS_INDICES_FILE, read_class_indices
from ..data.transforms import MAX_SIDE
from ..data.pipeline import describe_eval_preprocess
from ..errors import ConfigError, InputError, MissingFileError, short_repr
from ..fileio import committed_path
from ..yaml_io import read_yaml_file

CONFIG_FILE = "inference.yml"
# Paddle 3 writes a PIR program as .json; Paddle 2 wrote .pdmodel. Whichever exists is used.
PROGRAM_FILES = ("inference.json", "inference.pdmodel")
PARAMS_FILE = "inference.pdiparams"
ONNX_FILE = "inference.onnx"
INT8_ONNX_FILE = "inference_int8.onnx"  # export_model.py --quantize int8 (deploy/quantize.py)
ALL_MODEL_FILES = PROGRAM_FILES + (PARAMS_FILE, ONNX_FILE, INT8_ONNX_FILE)
MAX_CONFIG_BYTES = 16 << 20  # inference.yml is a few KB; label_list of 100,000 class names is ~2 MB
EXPORT_UNIT = "inference"  # fileio's unit name: the export's files are written and read as one unit

_HEADER = ("# Written by paddle_resnet.deploy.export_inference.\n"
           "# Predictor rebuilds preprocessing from preprocess.transform_ops (the config's Eval transform_ops);\n"
           "# preprocess.summary is the same pipeline spelled out for people and other runtimes.\n")


def export_command(model_dir):
    return ("python tools/export_model.py -c configs/<model>.yaml "
            "-o Global.pretrained_model=<weights.pdparams> "
            f"-o Global.save_inference_dir={model_dir}")


def missing_file_error(model_dir, missing):
    problem = (f"{missing} is missing from the inference directory {model_dir}" if Path(model_dir).exists()
               else f"the inference directory {model_dir} does not exist")
    return MissingFileError(f"{problem}. Export the model first: {export_command(model_dir)}")


def committed_file(model_dir, name):
    """``model_dir / name`` as the last finished export has it (see ``fileio.committed_path``)."""
    return Path(committed_path(Path(model_dir) / name))


@dataclass
class InferenceConfig:
    """The contents of ``inference.yml``."""
    transform_ops: list
    image_shape: tuple = (3, 224, 224)
    softmax: bool = True
    label_list: Optional[list] = None
    model_name: Optional[str] = None
    model_files: dict = field(default_factory=dict)  # role ("program", "params", "onnx") -> file name
    input_name: str = "x"
    data_format: str = "NCHW"  # the layout the model computes in; its input is NCHW either way

    def remedy(self, model_dir):
        """What to do about a damaged export (the end of its error messages)."""
        return f"Export the model again: {export_command(model_dir)}"

    def to_dict(self):
        return {
            "model_name": self.model_name,
            "image_shape": list(self.image_shape),
            "softmax": self.softmax,
            "data_format": self.data_format,
            "input": {"name": self.input_name, "shape": [None, *self.image_shape],
                      "dtype": "float32", "layout": "NCHW"},
            "model_files": dict(self.model_files),
            "preprocess": {"summary": _readable(describe_eval_preprocess(self.transform_ops)),
                           "transform_ops": self.transform_ops},
            "label_list": self.label_list,
        }

    def save(self, path):
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=None)
        Path(path).write_text(_HEADER + text, encoding="utf-8")

    @classmethod
    def load(cls, model_dir):
        """Raises MissingFileError when the file is missing, ConfigError (naming it) when it is corrupt."""
        path = committed_file(model_dir, CONFIG_FILE)
        if not path.exists():  # anything else there (a folder, a device) is refused by read_yaml_file
            raise missing_file_error(model_dir, CONFIG_FILE)
        try:
            data = read_yaml_file(path, CONFIG_FILE, MAX_CONFIG_BYTES, shown_as=Path(model_dir) / CONFIG_FILE)
            if not data:
                raise _Invalid("the file is empty")
            return cls._from_dict(data)
        except _Invalid as error:
            raise ConfigError(f"{Path(model_dir) / CONFIG_FILE} is not a valid {CONFIG_FILE} ({error}). "
                              f"Export the model again: {export_command(model_dir)}") from None
        except (ConfigError, InputError) as error:  # not YAML, or YAML no inference.yml holds
            raise ConfigError(f"{error}. Export the model again: {export_command(model_dir)}") from None

    @classmethod
    def _from_dict(cls, data):
        data = _expect(data, dict, "the file")
        preprocess = _expect(data.get("preprocess", {}), dict, "preprocess")
        image_shape = _expect(data.get("image_shape", [3, 224, 224]), list, "image_shape")
        if (len(image_shape) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                             for d in image_shape)
                or image_shape[0] not in (1, 3) or max(image_shape[1:]) > MAX_SIDE):
            raise _Invalid(f"image_shape must be [C, H, W] with 1 or 3 channels and sides from 1 to {MAX_SIDE}, "
                           f"got {short_repr(image_shape)}")
        model_files = _expect(data.get("model_files") or {}, dict, "model_files")
        for role, name in model_files.items():
            _expect(name, str, f"model_files.{role}")
            if Path(name).name != name or name in (".", ".."):  # never a path out of the model folder
                raise _Invalid(f"model_files.{role} must be a file name inside the folder, got {short_repr(name)}")
        label_list = data.get("label_list")
        if label_list is not None:
            for index, name in enumerate(_expect(label_list, list, "label_list")):
                if not isinstance(name, (str, int)) or isinstance(name, bool):
                    raise _Invalid(f"label_list[{index}] must be a class name, got {type(name).__name__} "
                                   f"{short_repr(name)}")
        model_input = _expect(data.get("input", {}), dict, "input")
        for key, fed in (("dtype", "float32"), ("layout", "NCHW")):  # what Predictor feeds, whatever the model
            if model_input.get(key, fed) != fed:
                raise _Invalid(f"input.{key} {short_repr(model_input[key])} is not supported; the Predictor feeds "
                               f"{fed}")
        data_format = data.get("data_format", "NCHW")
        if data_format not in ("NCHW", "NHWC"):
            raise _Invalid(f"data_format must be NCHW or NHWC, got {short_repr(data_format)}")
        return cls(transform_ops=_expect(preprocess.get("transform_ops") or [], list, "preprocess.transform_ops"),
                   image_shape=tuple(image_shape),
                   softmax=_expect(data.get("softmax", True), bool, "softmax"),
                   label_list=label_list,
                   model_name=data.get("model_name"),
                   model_files=model_files,
                   input_name=str(model_input.get("name", "x")),
                   data_format=data_format)


class _Invalid(ValueError):
    """A value of inference.yml of the wrong kind (turned into a ConfigError naming the file)."""


def _expect(value, kind, what):
    if not isinstance(value, kind):
        raise _Invalid(f"{what} must be a {kind.__name__}, got {type(value).__name__} {short_repr(value)}")
    return value


def _readable(summary):
    """The summary without float32 round-off (0.485, not 0.48500001430511475)."""
    def short(value):
        return float(f"{value:.7g}")
    summary = dict(summary)
    for key in ("mean", "std"):
        if summary.get(key) is not None:
            summary[key] = [short(v) for v in summary[key]]
    if summary.get("scale") is not None:
        summary["scale"] = short(summary["scale"])
    return summary


@dataclass
class ModelFiles:
    program: Path
    params: Path
    onnx: Optional[Path]
    directory: Optional[Path] = None  # the inference directory (the files may still be in its commit folder)
    int8_onnx: Optional[Path] = None  # the int8 ONNX model (export_model.py --quantize int8)


def locate_model_files(model_dir, config):
    """The files ``inference.yml`` lists (or, for directories without that list, the ones that exist),
    each read where the last finished export put it.

    Raises MissingFileError naming the missing file and the export command.
    """
    def exists(name):
        return committed_file(model_dir, name).is_file()

    listed = config.model_files
    program = listed.get("program") or next((name for name in PROGRAM_FILES if exists(name)),
                                            " or ".join(PROGRAM_FILES))
    params = listed.get("params", PARAMS_FILE)
    onnx = listed.get("onnx") if listed else (ONNX_FILE if exists(ONNX_FILE) else None)
    int8_onnx = listed.get("int8_onnx")
    for name in filter(None, (program, params, onnx, int8_onnx)):
        if not exists(name):
            raise missing_file_error(model_dir, name)
    return ModelFiles(committed_file(model_dir, program), committed_file(model_dir, params),
                      committed_file(model_dir, onnx) if onnx else None, Path(model_dir),
                      committed_file(model_dir, int8_onnx) if int8_onnx else None)


def load_label_names(model_dir, config):
    """Class names by index: ``label_list`` from inference.yml, else ``class_indices.json``
    (``{"0": name, ...}``, as ImageFolder writes it) in the model directory, else None."""
    if config.label_list:
        return [str(name) for name in config.label_list]
    path = Path(model_dir) / CLASS_INDICES_FILE
    return read_class_indices(path) if path.is_file() else None
