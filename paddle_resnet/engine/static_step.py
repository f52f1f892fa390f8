"""``Global.to_static``: the model's forward and backward run as one static program (``paddle.jit.to_static``).

On the CPU the program's convolutions (forward and backward) run on oneDNN kernels, which dygraph
never uses: resnet18 trained 2-3.6x faster than dygraph on a 2-core AVX2 AMD EPYC, while dygraph's MKL kernels
win at resnet50 224 px on an AVX-512 Intel Xeon (benchmarks/bench_train.py --paths); ``step_choice.py`` measures
which for auto. Everything else stays dygraph: the parameters are the model's own tensors,
so the optimizer, EMA, gradient accumulation, DataParallel, AMP, checkpoints and resume work unchanged.

Paddle 3.3.1 places oneDNN kernels per op only in its legacy program IR (the ``use_mkldnn`` attribute of
an op); its PIR placement (``FLAGS_use_onednn``) puts every op on oneDNN, and oneDNN's backward of the
global average pool (``pool2d_grad`` adaptive) and of ``reduce_mean`` fail there ("could not create a
descriptor for a pooling backward propagation primitive", "could not reshape a memory descriptor"). So the
program is traced in the legacy IR (``DygraphOldIrGuard``; Paddle translates it for its PIR executor) and
the convolutions are placed one by one.
"""
import paddle
from paddle.jit.dy2static.partial_program import PartialProgramLayerHook
from paddle.pir_utils import DygraphOldIrGuard
from paddle.static import InputSpec

from ..errors import ConfigError, did_you_mean
from .logger import LOGGER

# Ops (and their _grad ops) given oneDNN kernels: the convolutions, where the time goes. Also placing
# batch_norm, relu and the max-pool made resnet18 slower (measured side by side at 96x96: 3.6x dygraph with
# conv2d alone, 3.0x with batch_norm, 2.0x with relu and pool2d too; benchmarks/bench_train.py --paths keeps
# that row): every switch between oneDNN's blocked layout and Paddle's plain one costs a reorder.
ONEDNN_OPS = frozenset({"conv2d", "depthwise_conv2d"})


def check_to_static(key, value):
    """A config rule: ``value`` must be true, false, auto or null (auto)."""
    if value is None or value is True or value is False or value == "auto":
        return
    hint = did_you_mean(value, ["true", "false", "auto"]) if isinstance(value, str) else ""
    raise ConfigError(f"{key} must be true, false or auto, got {value!r}{hint}")


def use_static(requested, device, channels_last=False):
    """What ``Global.to_static`` (true | false | auto/null) means on ``device``: True or False, or None where
    auto measures which is faster (``step_choice.py``: the CPU, with an NCHW model).

    auto: dygraph on a GPU, whose kernels are the same either way (Paddle's default there), and for an NHWC model
    (in Paddle 3.3.1 oneDNN's conv2d_grad gives an NHWC model's filter gradients in the wrong shape, e.g.
    [64, 7, 7, 3] for [64, 3, 7, 7], so the program would get Paddle's kernels and no gain).
    """
    if requested in (None, "auto"):
        return None if device == "cpu" and not channels_last else False
    return bool(requested)


def is_channels_last(model):
    return getattr(model, "data_format", "NCHW") == "NHWC"


class OneDNNPlacement(PartialProgramLayerHook):
    """Sets ``use_mkldnn`` on the ops of ``ONEDNN_OPS`` in the programs ``paddle.jit.to_static`` builds."""

    def __init__(self, op_types=ONEDNN_OPS):
        self.op_types = frozenset(op_types)
        self.placed = 0

    def _place(self, program):
        for block in program.blocks:
            for op in block.ops:
                base = op.type[:-len("_grad")] if op.type.endswith("_grad") else op.type
                if base == "pool2d" and op.attr("adaptive"):
                    continue  # the global average pool: oneDNN's backward of it fails (module docstring)
                if base in self.op_types and op.has_attr("use_mkldnn"):
                    op._set_attr("use_mkldnn", True)
                    self.placed += 1
        return program

    def before_append_backward(self, forward_program):
        return self._place(forward_program)

    def after_append_backward(self, whole_program, backward_start_idx):
        return self._place(whole_program), backward_start_idx

    def after_infer(self, infer_program):
        return self._place(infer_program)


class StaticForward(paddle.nn.Layer):
    """``model``'s forward as a static program: called like the model, trained through ``backward()``.

    ``model`` stays a dygraph layer (eval, EMA, checkpoints use it directly); this layer only owns it
    as a sublayer so that ``paddle.DataParallel`` sees its parameters. One program serves every batch
    size and image size (the input spec leaves those dimensions open).
    """

    def __init__(self, model, in_channels, onednn=True):
        super().__init__()
        self.model = model
        spec = [InputSpec([None, in_channels, None, None], "float32", "images")]  # NHWC models take NCHW too
        self.placement = OneDNNPlacement() if onednn else None
        with DygraphOldIrGuard():
            self.program = paddle.jit.to_static(model.forward, input_spec=spec, full_graph=True)

    def forward(self, images):
        with DygraphOldIrGuard():
            if self.placement is not None:
                # The program of this call (traced now if new); placed before its first run builds it.
                _concrete, partial = self.program.get_concrete_program(images, is_train=self.model.training)
                if partial._hooker is None:
                    partial.set_hooker(self.placement)
            return self.program(images)


def static_forward(model, requested, channels, device, log=True):
    """``model`` wrapped in ``StaticForward`` when ``requested`` (``Global.to_static``: true, or auto where auto
    needs no measuring) asks for it on ``device``, else ``model``; ``channels``: of its input images."""
    channels_last = is_channels_last(model)
    if not use_static(requested, device, channels_last):
        return model
    onednn = device == "cpu" and not channels_last
    if log and device == "cpu" and not onednn:
        LOGGER.warning("Global.to_static=true with Arch.data_format NHWC: Paddle's oneDNN convolutions cannot "
                       "train NHWC models, so the static program uses Paddle's kernels and is no faster than "
                       "dygraph on the CPU")
    elif log:
        LOGGER.info(f"Global.to_static={requested}: training step as a static program"
                    f"{' with oneDNN convolutions' if onednn else ''} (paddle.jit.to_static)")
    return StaticForward(model, channels, onednn=onednn)
