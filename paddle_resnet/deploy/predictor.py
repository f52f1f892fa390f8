"""Classify images with an exported model: preprocessing from inference.yml, batching, top-k."""
import base64
import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from ..data.pipeline import build_transforms
from ..checks import check_int
from ..errors import ConfigError, InputError, UserError, short_repr
from ..fileio import open_regular_file
from .backends import RuntimeOptions, create_backend
from .model_dir import CONFIG_FILE, export_command, load_label_names, locate_model_files
from .paddleclas import load_inference_config

logger = logging.getLogger(__name__)

NON_FINITE = "model produced non-finite scores"


def printable(text):
    """``text`` as valid UTF-8 that any terminal, JSON reader or ``PYTHONIOENCODING=utf-8`` stream accepts: a
    file name's undecodable bytes (Python's lone surrogates ``\\udcXX``) become ``\\xXX``."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no file name decodes to
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def path_bytes(path):
    """base64 of the file name's bytes when they are not valid UTF-8 (``printable`` cannot be reversed), else None."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return base64.b64encode(os.fsencode(path)).decode("ascii")
    return None


@dataclass
class Prediction:
    """One input's top-k; a skipped (unreadable) input has ``error`` set and empty lists."""
    input: str
    class_ids: list = field(default_factory=list)
    scores: list = field(default_factory=list)
    label_names: list = field(default_factory=list)
    error: Optional[str] = None

    @property
    def skipped(self):
        return self.error is not None

    def to_dict(self):
        """For JSON: ``input`` printable, plus ``input_bytes`` (base64) for a name that is not valid UTF-8."""
        record = {**asdict(self), "input": printable(self.input)}
        if self.error is not None:
            record["error"] = printable(self.error)
        if (raw := path_bytes(self.input)) is not None:
            record["input_bytes"] = raw
        return record


def _describe(item, index):
    """A name for an input in results and warnings: its path, a PIL image's file name, or its position."""
    if isinstance(item, (str, os.PathLike)):
        return str(item)
    if isinstance(item, Image.Image) and getattr(item, "filename", ""):
        return item.filename
    return f"<{type(item).__name__} #{index}>"


def skip_reason(name, error):
    """Why an input was skipped, on one line that names the input (whatever the decoder's message says)."""
    reason = " ".join((str(error) or type(error).__name__).split())  # DecodeImage names the path itself
    return reason if name in reason else f"{name}: {reason}"


def _hash_file(digest, path):
    with open_regular_file(path) as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest


def _check_positive(what, value):
    return check_int(what, value, 1, error=InputError)


def _as_list(inputs):
    single = isinstance(inputs, (str, os.PathLike, Image.Image)) or (isinstance(inputs, np.ndarray)
                                                                      and inputs.ndim in (2, 3))
    return [inputs] if single else list(inputs)


def _looks_like_probabilities(outputs):
    return bool((outputs >= 0).all() and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3))


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class InputTransform:
    """An image -> the model's input array: the export's preprocessing, then a check of the shape it gave (a
    model is never run on another size). Folder prediction's decoding workers run this same object."""

    def __init__(self, transforms, image_shape):
        self.transforms, self.image_shape = transforms, tuple(image_shape)

    def __call__(self, item):
        image = self.transforms(item)
        if tuple(image.shape) != self.image_shape:
            raise InputError(f"preprocessing gave {list(image.shape)}, not the model's input {list(self.image_shape)}")
        return image


class Predictor:
    """An exported model ready to serve.

    Args:
        model_dir: a directory written by ``export_inference`` (inference.yml + model files), or an inference
            model exported by PaddleClas (no inference.yml: PaddleClas's default preprocessing, see
            ``deploy.paddleclas``).
        backend: "paddle" (Paddle Inference), "onnxruntime" (needs inference.onnx), or "auto": ONNX Runtime
            on CPU when the export has inference.onnx (it measured faster here), else Paddle Inference.
        device: "cpu" or "gpu".
        cpu_threads: math-library threads on CPU; None uses every core this process may run on.
        use_mkldnn: oneDNN kernels for Paddle Inference on CPU.
        precision: "fp32"; "int8" on CPU runs the export's int8 model (``export_model.py --quantize int8``)
            with ONNX Runtime; "bf16" runs the fp32 model with Paddle Inference's oneDNN bfloat16 kernels on a
            CPU that has them (avx512_bf16 / AMX); on GPU, fp16, and int8 with use_tensorrt=True (Paddle
            Inference).
        use_tensorrt: Paddle Inference on GPU.
        max_batch_size: largest batch handed to the runtime (TensorRT's dynamic-shape maximum);
            larger batches given to ``run`` are split.
        warmup: runs on a zero batch before serving, so the first request does not pay for setup.
        paddleclas_config: PaddleClas's deploy config (``deploy/configs/inference_cls.yaml``, a path or a
            ``paddleclas.DeployConfig``): its PreProcess and Topk class names replace the model folder's.
    """

    def __init__(self, model_dir, *, backend="auto", device="cpu", cpu_threads=None, use_mkldnn=True,
                 use_tensorrt=False, precision="fp32", max_batch_size=16, warmup=1, paddleclas_config=None):
        self.model_dir = Path(model_dir)
        self.config = load_inference_config(self.model_dir, paddleclas_config)
        self.files = locate_model_files(self.model_dir, self.config)
        self.label_names = load_label_names(self.model_dir, self.config)
        self.to_input = InputTransform(self._build_preprocess(), self.config.image_shape)
        self.options = RuntimeOptions(device=device, cpu_threads=cpu_threads, use_mkldnn=use_mkldnn,
                                      use_tensorrt=use_tensorrt, precision=precision,
                                      max_batch_size=max_batch_size, image_shape=self.config.image_shape,
                                      input_name=self.config.input_name, data_format=self.config.data_format)
        self.backend = self._load_backend(backend)
        for _ in range(warmup):
            outputs = self.run(np.zeros((1, *self.config.image_shape), np.float32))
            self._check_label_count(outputs)
            if not np.isfinite(outputs).all():
                raise self._damaged("the model gives non-finite scores (NaN or inf) for a blank image: its "
                                    "weights are damaged")

    def _damaged(self, what):
        return ConfigError(f"{self.model_dir}: {what}. {self.config.remedy(self.model_dir)}")

    def _load_backend(self, backend):
        try:
            return create_backend(backend, self.files, self.options)
        except UserError:
            raise
        except Exception as error:  # noqa: BLE001  the runtimes' own types for a file they cannot parse
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise self._damaged(f"the runtime cannot load the model files ({first_line[:300]})") from error

    def _check_label_count(self, outputs):
        if self.label_names and len(self.label_names) != outputs.shape[1]:
            raise self._damaged(f"the model has {outputs.shape[1]} classes but the label list has "
                                f"{len(self.label_names)} names")

    def _build_preprocess(self):
        """The Eval transforms, checked on an image of another size than the model's (wider than tall, as photos
        are): they must bring it to the model's input shape."""
        _, model_height, model_width = self.config.image_shape
        height, width = 2 * model_height + 3, 3 * model_width + 5
        ops = self.config.transform_ops
        first = next(iter(ops[0]), None) if ops and isinstance(ops[0], dict) else (ops[0] if ops else None)
        if first != "DecodeImage":  # every file is fed to the ops as its bytes
            raise ConfigError(f"{self.model_dir / CONFIG_FILE}: preprocess.transform_ops must start with DecodeImage, "
                              f"got {short_repr(first) if ops else 'no ops'}. "
                              f"Export the model again: {export_command(self.model_dir)}")
        try:
            transforms = build_transforms(self.config.transform_ops, chw=True)
            blank = transforms(np.full((height, width, 3), 128, np.uint8))
        except (ValueError, TypeError) as error:  # an unknown op or argument, or ops in an order that cannot run
            raise ConfigError(f"{self.model_dir / CONFIG_FILE}: preprocess.transform_ops cannot be built ({error}). "
                              f"Export the model again: {export_command(self.model_dir)}") from None
        shape = blank.shape
        if tuple(shape) != tuple(self.config.image_shape):
            raise ConfigError(f"{self.model_dir / CONFIG_FILE}: preprocess.transform_ops turn a {width}x{height} "
                              f"image into {list(shape)}, not the model's input {list(self.config.image_shape)}. "
                              f"Export the model again: {export_command(self.model_dir)}")
        return transforms

    @property
    def backend_name(self):
        return self.backend.name

    def fingerprint(self):
        """sha256 of what decides the scores: the model files and the preprocessing, label names and softmax."""
        digest = hashlib.sha256(json.dumps([self.config.transform_ops, list(self.config.image_shape),
                                            self.config.softmax, self.label_names], default=str).encode())
        for path in self._model_paths():
            _hash_file(digest, path)
        return digest.hexdigest()

    def file_hashes(self):
        """{file name: sha256} of the model files this predictor runs from."""
        return {path.name: _hash_file(hashlib.sha256(), path).hexdigest() for path in self._model_paths()}

    def _model_paths(self):
        return [path for path in (self.files.program, self.files.params, self.files.onnx, self.files.int8_onnx)
                if path is not None]

    def run(self, batch_nchw):
        """Raw model output (probabilities if exported with softmax, else logits) for a float32 NCHW batch."""
        batch_nchw = np.asarray(batch_nchw, dtype=np.float32)
        step = self.options.max_batch_size
        if len(batch_nchw) <= step:
            return self.backend.run(batch_nchw)
        return np.concatenate([self.backend.run(batch_nchw[i:i + step]) for i in range(0, len(batch_nchw), step)])

    def preprocess(self, items):
        """Images (paths, PIL images or uint8 HWC arrays) -> float32 NCHW batch; raises on an unreadable one."""
        return np.stack([self.to_input(item) for item in _as_list(items)])

    def predict(self, inputs, top_k=5, batch_size=8):
        """Top-k classes for each input, in input order. Unreadable images are logged, skipped, and
        returned as a Prediction with ``error`` set (naming the input); the rest are still predicted.
        ``top_k`` and ``batch_size`` must be >= 1 (InputError)."""
        top_k = _check_positive("top_k", top_k)
        batch_size = min(_check_positive("batch_size", batch_size), self.options.max_batch_size)
        items = _as_list(inputs)
        results = []
        for start in range(0, len(items), batch_size):
            results.extend(self._predict_chunk(items[start:start + batch_size], start, top_k))
        return results

    def _predict_chunk(self, items, first_index, top_k):
        results, images, loaded = [], [], []
        for index, item in enumerate(items, first_index):
            name = _describe(item, index)
            try:
                images.append(self.to_input(item))
            except (OSError, InputError) as error:  # unreadable, or an op cannot handle it (TransformError)
                reason = skip_reason(name, error)
                logger.warning("skipping an unreadable input: %s", reason)
                results.append(Prediction(name, error=reason))
                continue
            results.append(Prediction(name))
            loaded.append(results[-1])
        if images:
            self._fill_top_k(loaded, self.run(np.stack(images)), top_k)
        return results

    def predict_preprocessed(self, batch_nchw, names, top_k=5):
        """Top-k for a batch that ``preprocess`` (or a worker running ``transforms``) already made: one
        Prediction per row, named by ``names``."""
        predictions = [Prediction(str(name)) for name in names]
        self._fill_top_k(predictions, self.run(batch_nchw), _check_positive("top_k", top_k))
        return predictions

    def _fill_top_k(self, predictions, outputs, top_k):
        # softmax None: a model exported elsewhere, which may or may not end in a softmax.
        as_is = self.config.softmax if self.config.softmax is not None else _looks_like_probabilities(outputs)
        probabilities = outputs if as_is else _softmax(outputs)
        k = min(top_k, probabilities.shape[1])
        top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        for prediction, ids, row in zip(predictions, top, probabilities):
            if not np.isfinite(row).all():  # never NaN in a result: JSON has no NaN
                prediction.error = skip_reason(prediction.input, NON_FINITE)
                continue
            prediction.class_ids = [int(i) for i in ids]
            prediction.scores = [float(row[i]) for i in ids]
            prediction.label_names = [self.label_name(int(i)) for i in ids]

    def label_name(self, class_id):
        if self.label_names and class_id < len(self.label_names):
            return str(self.label_names[class_id])
        return str(class_id)

