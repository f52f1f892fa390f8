"""The layout of an exported inference directory and its ``inference.yml``.

An export directory holds the Paddle program (``inference.json`` from Paddle 3, ``inference.pdmodel``
from Paddle 2), ``inference.pdiparams``, optionally ``inference.onnx``, and ``inference.yml`` that says
how to preprocess images and which of those files were written.
"""
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from ..data.datasets import CLASS_INDICES_FILE, read_class_indices
from ..data.transforms import describe_eval_preprocess

CONFIG_FILE = "inference.yml"
# Paddle 3 writes a PIR program as .json; Paddle 2 wrote .pdmodel. Whichever exists is used.
PROGRAM_FILES = ("inference.json", "inference.pdmodel")
PARAMS_FILE = "inference.pdiparams"
ONNX_FILE = "inference.onnx"
ALL_MODEL_FILES = PROGRAM_FILES + (PARAMS_FILE, ONNX_FILE)

_HEADER = ("# Written by paddle_resnet.deploy.export_inference.\n"
           "# Predictor rebuilds preprocessing from preprocess.transform_ops (the config's Eval transform_ops);\n"
           "# preprocess.summary is the same pipeline spelled out for people and other runtimes.\n")


def export_command(model_dir):
    return ("python tools/export_model.py -c configs/<model>.yaml "
            "-o Global.pretrained_model=<weights.pdparams> "
            f"-o Global.save_inference_dir={model_dir}")


def missing_file_error(model_dir, missing):
    return FileNotFoundError(
        f"{missing} is missing from the inference directory {model_dir}. "
        f"Export the model first: {export_command(model_dir)}")


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
        path = Path(model_dir) / CONFIG_FILE
        if not path.is_file():
            raise missing_file_error(model_dir, CONFIG_FILE)
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return cls(transform_ops=data.get("preprocess", {}).get("transform_ops") or [],
                   image_shape=tuple(data.get("image_shape", (3, 224, 224))),
                   softmax=bool(data.get("softmax", True)),
                   label_list=data.get("label_list"),
                   model_name=data.get("model_name"),
                   model_files=data.get("model_files") or {},
                   input_name=data.get("input", {}).get("name", "x"),
                   data_format=data.get("data_format", "NCHW"))


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


def locate_model_files(model_dir, config):
    """The files ``inference.yml`` lists (or, for directories without that list, the ones that exist).

    Raises FileNotFoundError naming the missing file and the export command.
    """
    model_dir = Path(model_dir)
    listed = config.model_files
    program = listed.get("program") or next((name for name in PROGRAM_FILES if (model_dir / name).is_file()),
                                            " or ".join(PROGRAM_FILES))
    params = listed.get("params", PARAMS_FILE)
    for name in (program, params):
        if not (model_dir / name).is_file():
            raise missing_file_error(model_dir, name)
    onnx = listed.get("onnx") if listed else (ONNX_FILE if (model_dir / ONNX_FILE).is_file() else None)
    if onnx and not (model_dir / onnx).is_file():
        raise missing_file_error(model_dir, onnx)
    return ModelFiles(model_dir / program, model_dir / params, model_dir / onnx if onnx else None)


def load_label_names(model_dir, config):
    """Class names by index: ``label_list`` from inference.yml, else ``class_indices.json``
    (``{"0": name, ...}``, as ImageFolder writes it) in the model directory, else None."""
    if config.label_list:
        return [str(name) for name in config.label_list]
    path = Path(model_dir) / CLASS_INDICES_FILE
    return read_class_indices(path) if path.is_file() else None


def stale_model_files(model_dir, written):
    """Model files of an earlier export that this one did not write (they would no longer match)."""
    return [Path(model_dir) / name for name in ALL_MODEL_FILES
            if name not in written and os.path.exists(Path(model_dir) / name)]
