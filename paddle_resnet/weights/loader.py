"""Strict loading of a renamed checkpoint into a model, and conversion to .pdparams."""
import logging
import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, check_choice
from ..fileio import save_atomically
from ..models.resnet import check_num_classes
from .files import read_state_dict
from .keymaps import HEAD_KEYS, paddleclas_layout_problem, to_our_names, to_paddleclas_names, with_identity_projection

logger = logging.getLogger("paddle_resnet")
MAX_LISTED = 20  # names listed per kind of problem before "... and N more"
MAX_NONFINITE_LISTED = 3


@dataclass(frozen=True)
class LoadReport:
    source: str
    file: str
    tensors_loaded: int
    head_reinitialized: bool  # False also when the model has no head and the checkpoint's was dropped
    checkpoint_classes: int  # 0 when the checkpoint has no classifier head
    model_classes: int  # 0 when the model has no classifier head
    prefix_stripped: str = ""
    entries_without_weights: int = 0  # e.g. torch's BN step counters (num_batches_tracked), left out

    def __str__(self):
        head = ("re-initialised" if self.head_reinitialized else "loaded" if self.model_classes
                else "dropped" if self.checkpoint_classes else "absent")
        prefix = f", prefix '{self.prefix_stripped}' stripped" if self.prefix_stripped else ""
        skipped = (f", {self.entries_without_weights} entries without weights left out"
                   if self.entries_without_weights else "")
        return (f"loaded {self.tensors_loaded} tensors from {self.file} (source: {self.source}{prefix}{skipped}); "
                f"classifier head {head} ({self.checkpoint_classes} -> {self.model_classes} classes)")


def _class_count(state):
    weight = state.get("fc.weight")
    return 0 if weight is None else int(weight.shape[-1])


def _classes(count):
    return f"{count} classes" if count else "no classifier head"


def _listing(title, items):
    shown = list(items)[:MAX_LISTED]
    more = f", ... and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return f"  {title} ({len(items)}): {', '.join(shown)}{more}"


# (which list, key prefix, advice) for the layout mix-ups seen most.
HINTS = (
    ("unexpected", "layer1.0.downsample.", "the checkpoint gives every stage's first block a projection "
                                           "shortcut (PaddleClas ResNet18/34 layout): build the model with "
                                           "project_stage1=True"),
    ("unexpected", "norm.", "the checkpoint is a pre-activation ResNet: build a *_v2 model"),
    ("missing", "norm.", "the model is pre-activation (*_v2) but the checkpoint is not"),
    ("unexpected", "conv1.0.", "the checkpoint has a deep ResNet-D stem: build a *_vd model"),
    ("missing", "conv1.0.", "the model has a deep ResNet-D stem but the checkpoint does not"),
)


def _hints(renamed, expected, problems):
    hints = [f"  hint: {advice}" for where, prefix, advice in HINTS
             if any(k.startswith(prefix) for k in problems[where])]
    if not set(renamed.state) & set(expected):
        hints.append(f"  hint: no checkpoint key matches the model's; is source={renamed.source!r} right?")
    return hints


def _check_fit(renamed, expected, file, exempt=()):
    missing = sorted(set(expected) - set(renamed.state) - set(exempt))
    unexpected = sorted(set(renamed.state) - set(expected))
    mismatched = sorted(k for k in set(expected) & set(renamed.state)
                        if tuple(renamed.state[k].shape) != tuple(expected[k].shape))
    if not (missing or unexpected or mismatched):
        return
    named = lambda k: k if renamed.origin[k] == k else f"{k} (from '{renamed.origin[k]}')"
    lines = [f"checkpoint {file} (source: {renamed.source}) does not fit the model:"]
    if missing:
        lines.append(_listing("missing from the checkpoint", missing))
    if unexpected:
        lines.append(_listing("unexpected in the checkpoint", [named(k) for k in unexpected]))
    if mismatched:
        lines.append(_listing("shape mismatch, checkpoint vs model", [
            f"{named(k)} {list(renamed.state[k].shape)} vs {list(expected[k].shape)}" for k in mismatched]))
    problems = {"missing": missing, "unexpected": unexpected}
    raise InputError("\n".join(lines + _hints(renamed, expected, problems)))


def _reinit_head(expected):
    import paddle.nn as nn
    weight, bias = expected["fc.weight"], expected["fc.bias"]
    bound = 1.0 / math.sqrt(weight.shape[0])  # the model's own Linear init: U(-1/sqrt(in), 1/sqrt(in))
    nn.initializer.Uniform(-bound, bound)(weight)
    nn.initializer.Constant(0.0)(bias)


def _settle_head(renamed, expected, file, reinit_head):
    """Drops from ``renamed`` a head whose class count differs from the model's; returns a note if it did."""
    ckpt_classes, model_classes = _class_count(renamed.state), _class_count(expected)
    if ckpt_classes == model_classes:
        return None
    counts = f"the checkpoint has {_classes(ckpt_classes)}, the model has {_classes(model_classes)}"
    if not reinit_head:
        raise InputError(f"classifier head of {file} does not fit: {counts}; build the model for the "
                         f"checkpoint's classes (-o Arch.class_num={ckpt_classes}), or give it a new head of "
                         f"{model_classes} classes first: tools/convert_weights.py --arch <model> --src {file} "
                         f"--dst <new.pdparams> --num-classes {model_classes}")
    for key in HEAD_KEYS:
        renamed.state.pop(key, None)
    return f"classifier head {'re-initialised' if model_classes else 'dropped'}: {counts}"


def _numpy_dtype(tensor):
    return np.dtype(str(tensor.dtype).rsplit(".", 1)[-1])


def _in_model_dtypes(renamed, expected):
    with np.errstate(over="ignore"):  # an overflow becomes inf, which check_finite then reports
        return {key: np.ascontiguousarray(array, dtype=_numpy_dtype(expected[key])) for key, array in renamed.state.items()}


def check_finite(state, file, origin=None):
    """Refuses a state dict with NaN or inf in a float tensor: such weights evaluate to ``loss nan`` without
    a word. ``origin`` maps a name to the checkpoint's own, which the message shows."""
    bad = [key for key, array in state.items() if array.dtype.kind in "fc" and not np.isfinite(array).all()]
    if bad:
        shown = [(origin or {}).get(key, key) for key in bad[:MAX_NONFINITE_LISTED]]
        more = ", ..." if len(bad) > MAX_NONFINITE_LISTED else ""
        raise InputError(f"weights file {file} holds non-finite values in {len(bad)} tensors "
                         f"({', '.join(shown)}{more}); refusing to load them")


def _load_renamed(model, file, renamed, reinit_head):
    expected = model.state_dict()
    checkpoint_classes = _class_count(renamed.state)
    head_note = _settle_head(renamed, expected, file, reinit_head)
    _check_fit(renamed, expected, file, exempt=HEAD_KEYS if head_note else ())
    arrays = _in_model_dtypes(renamed, expected)  # checked after the cast: 1e300 in float64 is inf in float32
    check_finite(arrays, file, renamed.origin)
    reinitialized = head_note is not None and "fc.weight" in expected
    if reinitialized:
        _reinit_head(expected)
    for key, array in arrays.items():
        expected[key].set_value(array)
    if head_note:
        logger.warning(head_note)
    return LoadReport(renamed.source, str(file), len(renamed.state), reinitialized,
                      checkpoint_classes, _class_count(expected), renamed.prefix, len(renamed.dropped))


def _renamed(file, state, source):
    try:
        return to_our_names(state, source)
    except InputError as err:
        raise InputError(f"{file}: {err}") from None


def load_pretrained(model, path, source="auto", reinit_head=True):
    """Loads pretrained weights into ``model``, accounting for every tensor.

    Args:
        model: a ``paddle_resnet`` ResNet.
        path: .pdparams, .pth/.pt/.bin (read without torch), .safetensors or .npz; a path with
            no weights suffix such as ``output/best`` means ``output/best.pdparams``.
        source: "auto" (told from the key names), "paddle" (paddle.vision and this package),
            "paddleclas", "torchvision" or "timm".
        reinit_head: when the checkpoint's class count differs from the model's, re-initialise the
            classifier (one log line says so); with False that raises InputError (a ValueError) instead.

    Returns:
        LoadReport. Raises MissingFileError (a FileNotFoundError) for a missing file, UnsafeFileError
        for a file that asks to run code, and InputError (a ValueError) for an unreadable file or when
        a tensor is missing, unexpected or of the wrong shape.
    """
    file, state = read_state_dict(path)
    return _load_renamed(model, file, _renamed(file, state, source), reinit_head)


TARGETS = ("paddle", "paddleclas")  # the names written: ours (paddle.vision's), or PaddleClas's


def convert_checkpoint(arch, src, dst, source="auto", num_classes=None, to="paddle", **model_kwargs):
    """Builds ``arch``, loads ``src`` into it and saves its state_dict to ``dst`` atomically.

    ``num_classes`` defaults to the checkpoint's own (no head re-initialised). A checkpoint whose
    first block has a projection shortcut (PaddleClas ResNet18/34) builds with project_stage1=True.
    ``to="paddleclas"`` writes PaddleClas's names instead of ours, for its ResNet / ResNet_vd classes (a
    ResNet18/34 without stage 1's projection gets one that computes the identity, as PaddleClas's layout
    has it); a model PaddleClas has no layout for is an InputError saying why.
    """
    from ..models import build_model
    from ..models.resnet import model_args
    check_choice("to", to, TARGETS, InputError)
    if num_classes is not None:
        check_num_classes(num_classes)
    file, state = read_state_dict(src)
    renamed = _renamed(file, state, source)
    if num_classes is None:
        num_classes = _class_count(renamed.state)
    model_kwargs.setdefault("project_stage1", any(k.startswith("layer1.0.downsample.") for k in renamed.state))
    args = {**model_args(arch), **model_kwargs}
    if to == "paddleclas":
        problem = paddleclas_layout_problem(num_classes=num_classes, **args)
        if problem:
            raise InputError(f"{arch} from {file} cannot be written in PaddleClas's layout: {problem}")
    model = build_model(arch, num_classes=num_classes, **model_kwargs)
    report = _load_renamed(model, file, renamed, reinit_head=True)
    state = model.state_dict()
    if to == "paddleclas":
        state = to_paddleclas_names(with_identity_projection({k: v.numpy() for k, v in state.items()}),
                                    resnext=args.get("groups", 1) != 1)
    save_atomically(state, dst)
    return report
