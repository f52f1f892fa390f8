"""Checkpoints: written as one unit, read without running code.

A checkpoint ``<prefix>`` is two files committed together (``fileio.commit_unit``): ``<prefix>.pdparams``
holds the model weights (what ``Global.pretrained_model``, eval and export read) and ``<prefix>.pdstates``
everything a resume needs: the weights again, optimizer, LR schedule, epoch, step, EMA, loss scaler, RNG
states, and what the run was (architecture, class count, optimizer) so that a resume with another
config is refused. Both hold only tensors and plain values, which the restricted loader reads.
"""
import os
import random

import numpy as np
import paddle

from ..errors import MissingFileError
from ..fileio import commit_unit, committed_path
from ..weights.safe_pickle import load_pickle

SUFFIXES = (".pdparams", ".pdstates")


def strip_suffix(prefix):
    for suffix in SUFFIXES:
        if prefix.endswith(suffix):
            return prefix[: -len(suffix)]
    return prefix


def save_checkpoint(prefix, weights, state):
    """Writes ``<prefix>.pdparams`` (``weights``) and ``<prefix>.pdstates`` (``state``) as one unit."""
    folder, unit = os.path.split(os.path.abspath(prefix))

    def write(staging):
        paddle.save(state, os.path.join(staging, unit + ".pdstates"))
        paddle.save(weights, os.path.join(staging, unit + ".pdparams"))
    commit_unit(folder, unit, write)


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
