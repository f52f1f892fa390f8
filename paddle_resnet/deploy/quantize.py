"""int8 post-training static quantization of an export, with its accuracy checked before it is kept.

The fp32 ONNX model of an export is quantized by ONNX Runtime's own tool (``quantize_static``): QDQ format,
uint8 activations and int8 weights (U8S8) per output channel, activation ranges calibrated (MinMax) on images
of the config's Eval set through its Eval preprocessing. Weights use 7 bits (``reduce_range``): on x86 CPUs
without VNNI, ORT's U8S8 kernels add products pairwise in int16 (``vpmaddubsw``), which can saturate with
8-bit weights; ORT's quantization guide recommends ``reduce_range`` there. Only convolutions are quantized
(nearly all the work): the residual additions, the classifier and the softmax stay fp32. Quantizing the
additions too (ORT's default) rounds the residual stream at every block; on imgsim's trained ResNet-50 that
cut the int8 outputs' cosine similarity to fp32 from 0.97 to 0.70 on scikit-image's photos, at the same speed.

Then fp32 and int8 top-1 are measured on the Eval images that were not used for calibration (all of them
when the Eval set is no larger than the calibration set, and the message says so); an int8 model whose top-1
is more than ``max_drop`` points below fp32 is refused and not written. Why ONNX Runtime and not Paddle's
PTQ with oneDNN int8: docs/int8.md.
"""
import contextlib
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..checks import check_int
from ..errors import ConfigError, MissingFileError, UserError
from .model_dir import INT8_ONNX_FILE, export_command

logger = logging.getLogger(__name__)

INT8_ROLE = "int8_onnx"  # the role of the int8 model in inference.yml's model_files
QUANTIZE_CHOICES = ("int8",)
DEFAULT_CALIB_IMAGES = 256
DEFAULT_MAX_DROP = 1.0  # points of top-1
EXPORT_FLAG = "--quantize int8"


class QuantizationUnavailable(UserError, ImportError):
    """--quantize int8 without onnxruntime's quantization tool (or paddle2onnx) installed."""


class Int8Refused(UserError):
    """The int8 model lost more top-1 than allowed; the fp32 export was written, the int8 model was not."""


@dataclass
class Int8Check:
    """fp32 and int8 top-1 on the same images."""
    fp32_top1: float
    int8_top1: float
    images: int
    calib_images: int
    held_out: bool  # False: the Eval set was no larger than the calibration set, so it overlaps it

    @property
    def drop(self):
        """Points of top-1 lost (negative: int8 was better)."""
        return 100.0 * (self.fp32_top1 - self.int8_top1)

    def describe(self):
        where = (f"{self.images:,} held-out Eval images (the first {self.calib_images:,} calibrated)" if self.held_out
                 else f"all {self.images:,} Eval images (also the {self.calib_images:,} calibration images)")
        return (f"fp32 top-1 {100 * self.fp32_top1:.2f}%, int8 top-1 {100 * self.int8_top1:.2f}% "
                f"(drop {self.drop:.2f} points) on {where}")


def require_quantization_tools():
    try:
        import onnxruntime.quantization  # noqa: F401  (needs onnx and ml_dtypes too)
        import paddle2onnx  # noqa: F401
    except ImportError as error:
        raise QuantizationUnavailable(f"{EXPORT_FLAG} needs ONNX Runtime's quantization tool ({error}): "
                                      "pip install -e .[onnx]") from None


def check_quantize_options(calib_images, max_drop):
    check_int("--calib-images", calib_images, 1)
    if not isinstance(max_drop, (int, float)) or isinstance(max_drop, bool) or not 0 <= max_drop <= 100:
        raise ConfigError(f"--max-drop must be a number of top-1 points from 0 to 100, got {max_drop!r}")


def quantize_onnx(fp32_file, int8_file, calib_batches, **changes):
    """Writes the int8 QDQ model of ``fp32_file`` to ``int8_file``, calibrated on ``calib_batches``
    (float32 NCHW arrays). ``changes``: ``quantize_static`` arguments that replace this module's choices
    (benchmarks/bench_int8_calibration.py compares them)."""
    import onnx
    import onnxruntime
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quant_pre_process,
                                          quantize_static)

    class Batches(CalibrationDataReader):
        def __init__(self, input_name):
            self._feeds = iter({input_name: batch} for batch in calib_batches)

        def get_next(self):
            return next(self._feeds, None)

    onnxruntime.set_default_logger_severity(3)  # its sessions warn about each unused initializer paddle2onnx left
    with tempfile.TemporaryDirectory(prefix="quantize-", dir=os.path.dirname(os.fspath(int8_file))) as workdir:
        # Folds BatchNorm into the convolutions and infers shapes: what quantize_static expects.
        prepared = os.path.join(workdir, "prepared.onnx")
        quant_pre_process(os.fspath(fp32_file), prepared, skip_symbolic_shape=True)
        input_name = onnx.load(prepared).graph.input[0].name
        options = dict(quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"], activation_type=QuantType.QUInt8,
                       weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)
        with contextlib.redirect_stdout(sys.stderr):  # ORT's histogram calibrators print their progress
            quantize_static(prepared, os.fspath(int8_file), Batches(input_name), **{**options, **changes})
    return Path(int8_file)


def _session(onnx_file):
    import onnxruntime as ort

    from ..cpu import available_cores
    options = ort.SessionOptions()
    options.intra_op_num_threads = available_cores()
    options.log_severity_level = 3
    return ort.InferenceSession(os.fspath(onnx_file), options, providers=["CPUExecutionProvider"])


def split_images(batches, count):
    """(the first ``count`` images as float32 batches, the rest as (images, labels) batches) from an iterable
    of (images, labels) batches; the second part is a generator, so the rest is read only when asked."""
    first, taken, source = [], 0, iter(batches)
    for images, labels in source:
        need = count - taken
        first.append(images[:need])
        taken += len(first[-1])
        if taken >= count:
            rest = [(images[need:], labels[need:])] if len(images) > need else []
            return first, _chain(rest, source)
    return first, iter(())


def _chain(head, tail):
    yield from head
    yield from tail


def top1_of_both(fp32_file, int8_file, batches):
    """(fp32 hits, int8 hits, images) over (images, labels) batches, both models on each batch."""
    sessions = [_session(fp32_file), _session(int8_file)]
    names = [session.get_inputs()[0].name for session in sessions]
    hits, seen = [0, 0], 0
    for images, labels in batches:
        for i, (session, name) in enumerate(zip(sessions, names)):
            hits[i] += int((session.run(None, {name: images})[0].argmax(axis=1) == labels).sum())
        seen += len(labels)
    return hits[0], hits[1], seen


class Int8Export:
    """The ``extra_files`` step of ``export_inference`` that adds the int8 model to an export.

    ``eval_batches()`` gives (float32 NCHW images, int labels) batches of the Eval set, in a fixed order, each
    time it is called. When the int8 model loses more than ``max_drop`` points, nothing is added to the export
    (which is then committed with the fp32 model alone) and ``raise_if_refused`` raises Int8Refused.
    """

    def __init__(self, eval_batches, calib_images=DEFAULT_CALIB_IMAGES, max_drop=DEFAULT_MAX_DROP):
        check_quantize_options(calib_images, max_drop)
        require_quantization_tools()
        self.eval_batches, self.calib_images, self.max_drop = eval_batches, calib_images, max_drop
        self.check, self.save_dir = None, None

    def __call__(self, staging, written):
        if "onnx" not in written:
            raise QuantizationUnavailable(f"{EXPORT_FLAG} quantizes the ONNX model: export with ONNX too")
        staging = Path(staging)
        calib, rest = split_images(self.eval_batches(), self.calib_images)
        calib_count = sum(len(batch) for batch in calib)
        if calib_count == 0:
            raise UserError("the Eval set gave no image to calibrate the int8 model with; "
                            "check DataLoader.Eval.dataset")
        int8_file = staging / INT8_ONNX_FILE
        logger.info("calibrating int8 on %d Eval images", calib_count)
        quantize_onnx(written["onnx"], int8_file, calib)
        held_out = calib_count == self.calib_images
        if held_out:
            fp32_hits, int8_hits, seen = top1_of_both(written["onnx"], int8_file, rest)
            held_out = seen > 0
        if not held_out:  # the whole Eval set went into calibration
            fp32_hits, int8_hits, seen = top1_of_both(written["onnx"], int8_file, self.eval_batches())
        self.check = Int8Check(fp32_hits / seen, int8_hits / seen, seen, calib_count, held_out)
        logger.info("int8 check: %s", self.check.describe())
        if self.check.drop > self.max_drop:
            os.remove(int8_file)
            return {}
        return {INT8_ROLE: int8_file}

    def raise_if_refused(self, save_dir):
        if self.check is not None and self.check.drop > self.max_drop:
            raise Int8Refused(f"int8 model refused: {self.check.describe()}, more than --max-drop "
                              f"{self.max_drop:g}; {save_dir} holds the fp32 export only")


def missing_int8_error(model_dir):
    return MissingFileError(f"precision='int8' needs the int8 model, which {model_dir} does not have; export it: "
                            f"{export_command(model_dir)} {EXPORT_FLAG}")
