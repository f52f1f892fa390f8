"""Export a dygraph model to a Paddle Inference directory (and optionally ONNX) with its ``inference.yml``."""
import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import paddle
import paddle.nn.functional as F

from .. import fileio
from ..data.pipeline import describe_eval_preprocess
from ..errors import ConfigError, UserError
from .input_size import size_completing_ops
from .model_dir import (ALL_MODEL_FILES, CONFIG_FILE, EXPORT_UNIT, ONNX_FILE, PARAMS_FILE, PROGRAM_FILES,
                        InferenceConfig)

logger = logging.getLogger(__name__)

ONNX_OPSET = 13


class Paddle2OnnxMissing(UserError, ImportError):
    """onnx=True without paddle2onnx installed."""


class InferenceHead(paddle.nn.Layer):
    """The model as deployed: optionally with softmax appended, so servers get probabilities."""

    def __init__(self, model, softmax=True):
        super().__init__()
        self.model, self.softmax = model, softmax

    def forward(self, x):
        logits = self.model(x)
        return F.softmax(logits, axis=-1) if self.softmax else logits


def export_inference(model, save_dir, *, image_shape=(3, 224, 224), eval_ops, label_list=None, softmax=True,
                     onnx=False, model_name=None, extra_files=None):
    """Save ``model`` for inference with a dynamic batch dimension; returns {role: path} of what was written.

    Roles: "program" (inference.json or .pdmodel), "params", "onnx" (when ``onnx=True``) and "config"
    (inference.yml). The files are written as one unit (``fileio.commit_unit``): a failed or killed export
    leaves the earlier one whole, and readers never see a mix of the two. Model files of an earlier export
    that this one does not write are removed with it, since they would no longer match.
    ``extra_files(staging_dir, written) -> {role: path}`` adds files made from the written ones to the unit
    (the int8 model of ``quantize.Int8Export``).
    """
    image_shape = tuple(int(d) for d in image_shape)
    _check_crop_matches(eval_ops, image_shape)
    eval_ops = _fix_input_size(eval_ops, image_shape)
    if onnx and getattr(model, "data_format", "NCHW") == "NHWC":
        raise ConfigError("paddle2onnx cannot convert NHWC convolutions (it aborts the process); "
                          "export the same weights built with data_format='NCHW' for ONNX")
    roles = {}

    def write_into_staging(staging):
        staging = Path(staging)
        written = _save_paddle_program(model, staging, image_shape, softmax)
        if onnx:
            written["onnx"] = _convert_to_onnx(staging, written)
        if extra_files is not None:
            written.update(extra_files(staging, written))
        config = InferenceConfig(transform_ops=list(eval_ops), image_shape=image_shape, softmax=softmax,
                                 label_list=list(label_list) if label_list is not None else None,
                                 model_name=model_name, data_format=getattr(model, "data_format", "NCHW"),
                                 model_files={k: p.name for k, p in written.items()})
        config.save(staging / CONFIG_FILE)
        written["config"] = staging / CONFIG_FILE
        roles.update((role, path.name) for role, path in written.items())

    save_dir = Path(save_dir)
    created = not os.path.lexists(save_dir)
    try:
        fileio.commit_unit(save_dir, EXPORT_UNIT, write_into_staging, remove=ALL_MODEL_FILES)
    except BaseException:
        if created:  # a failed export leaves no empty folder of its own behind
            with contextlib.suppress(OSError):
                os.rmdir(save_dir)  # only when still empty
        raise
    final = {role: save_dir / name for role, name in roles.items()}
    logger.info("exported %s to %s", ", ".join(path.name for path in final.values()), save_dir)
    return final


def _check_crop_matches(eval_ops, image_shape):
    crop = describe_eval_preprocess(eval_ops)["crop_size"]  # [width, height]
    if crop is not None and tuple(crop[::-1]) != image_shape[1:]:
        raise ConfigError(f"the eval crop {crop[0]}x{crop[1]} (width x height) does not match "
                          f"image_shape {list(image_shape)} (C, H, W); the exported input size must be the crop size")


def _fix_input_size(eval_ops, image_shape):
    """The Eval ops, completed so that an image of any size comes out at the input size (see input_size)."""
    eval_ops, added = size_completing_ops(eval_ops, image_shape)
    if added:
        logger.info("the Eval transform_ops leave the input size open: the export brings every image to "
                    "%dx%d (%s)", image_shape[2], image_shape[1], added)
    return eval_ops


def _save_paddle_program(model, directory, image_shape, softmax):
    was_training = model.training
    model.eval()
    try:
        spec = paddle.static.InputSpec([None, *image_shape], "float32", "x")
        static_head = paddle.jit.to_static(InferenceHead(model, softmax), input_spec=[spec], full_graph=True)
        paddle.jit.save(static_head, str(directory / "inference"))
    finally:
        if was_training:
            model.train()
    program = next((directory / name for name in PROGRAM_FILES if (directory / name).is_file()), None)
    if program is None or not (directory / PARAMS_FILE).is_file():
        raise RuntimeError(f"paddle.jit.save wrote {sorted(os.listdir(directory))}; expected one of "
                           f"{PROGRAM_FILES} and {PARAMS_FILE}")
    return {"program": program, "params": directory / PARAMS_FILE}


def paddle2onnx_installed():
    """Whether an export can write ONNX: the default when it can (ONNX Runtime is the faster CPU backend)."""
    import importlib.util
    return importlib.util.find_spec("paddle2onnx") is not None


def _convert_to_onnx(directory, written):
    """Runs the paddle2onnx command line in a child process: on ops it cannot convert, paddle2onnx
    aborts its whole process (SIGABRT), which must not take the caller down with it."""
    try:
        import paddle2onnx  # noqa: F401  (only checks that it is installed)
    except ImportError:
        raise Paddle2OnnxMissing("onnx=True needs paddle2onnx: pip install paddle2onnx onnxruntime "
                                 "(or pip install -e .[onnx])") from None
    save_file = directory / ONNX_FILE
    # "--optimize_tool None": the default (polygraphy) may try to pip-install its dependencies at run time.
    command = [sys.executable, "-m", "paddle2onnx.command", "--model_dir", str(directory),
               "--model_filename", written["program"].name, "--params_filename", written["params"].name,
               "--save_file", str(save_file), "--opset_version", str(ONNX_OPSET), "--optimize_tool", "None"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0 or not save_file.is_file():
        output = (result.stdout + result.stderr).strip()
        raise RuntimeError(f"paddle2onnx failed (exit code {result.returncode}):\n{output[-3000:]}")
    return save_file
