"""Checkpoints: written as one unit, read without running code.

A checkpoint ``<prefix>`` is two files committed together (``fileio.commit_unit``): ``<prefix>.pdparams``
holds the model weights (what ``Global.pretrained_model``, eval and export read) and ``<prefix>.pdstates``
everything a resume needs: the weights again, optimizer, LR schedule, epoch, step, EMA, loss scaler, RNG
states, and what the run was (architecture, class count, optimizer) so that a resume with another
config is refused. Both hold only tensors and plain values, which the restricted loader reads.
``<prefix>.run.json`` (in the same unit, also beside ``best.pdparams``) records the architecture, class
count and class names, so that eval, export and predict need nothing but the checkpoint.
"""
import json
import os
import random

import numpy as np
import paddle

from ..errors import InputError, MissingFileError
from ..fileio import commit_unit, committed_path
from ..weights.safe_pickle import load_pickle

SUFFIXES = (".pdparams", ".pdstates")
RUN_INFO_SUFFIX = ".run.json"  # architecture, class count and class names: eval/export need only the checkpoint
MAX_RUN_INFO_BYTES = 16 << 20


def strip_suffix(prefix):
    for suffix in SUFFIXES:
        if prefix.endswith(suffix):
            return prefix[: -len(suffix)]
    return prefix


def save_checkpoint(prefix, weights, state=None, run_info=None):
    """Writes ``<prefix>.pdparams`` (``weights``), ``<prefix>.pdstates`` (``state``, when given) and
    ``<prefix>.run.json`` (``run_info``, when given: see ``read_run_info``) as one unit."""
    folder, unit = os.path.split(os.path.abspath(prefix))

    def write(staging):
        if state is not None:
            paddle.save(state, os.path.join(staging, unit + ".pdstates"))
        if run_info is not None:
            with open(os.path.join(staging, unit + RUN_INFO_SUFFIX), "w", encoding="utf-8") as f:
                json.dump(run_info, f, indent=1, ensure_ascii=False)
        paddle.save(weights, os.path.join(staging, unit + ".pdparams"))
    commit_unit(folder, unit, write)


def read_run_info(weights_path):
    """What the run that wrote a checkpoint was, from ``<prefix>.run.json`` beside its weights:
    ``{"arch", "class_num", "class_names" (a list of str, or None), ...}``; None when there is no such
    file (weights from elsewhere, or saved before checkpoints recorded it). Raises InputError naming the
    file when it is damaged."""
    path = committed_path(strip_suffix(os.fspath(weights_path)) + RUN_INFO_SUFFIX)
    if not os.path.isfile(path):
        return None
    try:
        if os.path.getsize(path) > MAX_RUN_INFO_BYTES:
            raise ValueError(f"larger than {MAX_RUN_INFO_BYTES} bytes")
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
        if not isinstance(info, dict):
            raise ValueError("not a JSON object")
        count, names = info.get("class_num"), info.get("class_names")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            raise ValueError(f"class_num must be an integer >= 1, got {count!r}")
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)
                                      and len(names) == count):
            raise ValueError(f"class_names must be a list of {count} strings")
    except (OSError, ValueError) as error:  # json's errors are ValueErrors
        raise InputError(f"{path}: not a valid checkpoint run record ({error}); delete it to use the "
                         f"weights without it") from None
    return info


def load_training_state(prefix):
    """The ``.pdstates`` of ``prefix``, with every array as a paddle Tensor (as ``paddle.load`` gives them)."""
    prefix = strip_suffix(prefix)
    path = committed_path(prefix + ".pdstates")
    if not os.path.isfile(path):
        hint = (f" ({prefix}.pdparams holds weights only: use Global.pretrained_model for it)"
                if os.path.isfile(committed_path(prefix + ".pdparams")) else "")
        raise MissingFileError(f"cannot resume: {prefix}.pdstates does not exist{hint}")
    return _to_tensors(load_pickle(path))


def _to_tensors(obj):
    if isinstance(obj, np.ndarray):
        return paddle.to_tensor(obj)
    if isinstance(obj, dict):
        return {key: _to_tensors(value) for key, value in obj.items()}
    return obj


def _renamed_optimizer_state(state, renames):
    """Optimizer state keys (``<param name>_<accumulator>_0``, and master_weights by param name) with each
    parameter name replaced through ``renames``; keys of no listed parameter are kept."""
    by_length = sorted(renames, key=len, reverse=True)

    def rename(key):
        for old in by_length:
            if key == old or key.startswith(old + "_"):
                return renames[old] + key[len(old):]
        return key
    out = {}
    for key, value in state.items():
        if key == "master_weights" and isinstance(value, dict):
            out[key] = {rename(k): v for k, v in value.items()}
        elif key == "LR_Scheduler":
            out[key] = value
        else:
            out[rename(key)] = value
    return out


def optimizer_state_for_saving(optimizer, model):
    """The optimizer's state keyed by the model's structured names (``layer1.0.conv1.weight_velocity_0``):
    Paddle keys it by generated names (``conv2d_20.w_0``), which differ in the next process or model build."""
    return _renamed_optimizer_state(optimizer.state_dict(), {p.name: n for n, p in model.named_parameters()})


def optimizer_state_for_loading(state, model):
    """The inverse of ``optimizer_state_for_saving`` for this process's ``model``."""
    return _renamed_optimizer_state(state, {n: p.name for n, p in model.named_parameters()})


def rng_state():
    """Python, numpy and Paddle RNG states as plain values (Paddle's GeneratorState as its pickle tuple)."""
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "paddle": [state.__getstate__() for state in paddle.get_rng_state()]}


def set_rng_state(state):
    random.setstate(_as_tuples(state["python"]))
    np.random.set_state(tuple(state["numpy"]))
    generator_state = type(paddle.get_rng_state()[0])
    restored = []
    for values in state["paddle"]:
        generator = generator_state.__new__(generator_state)  # pybind11's pickle path: no public constructor
        generator.__setstate__(tuple(values))
        restored.append(generator)
    paddle.set_rng_state(restored)


def _as_tuples(value):
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value
