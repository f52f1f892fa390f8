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
import shutil

import numpy as np
import paddle

from ..errors import InputError, MissingFileError, UnsafeFileError, is_int, is_number, short_repr
from ..fileio import commit_unit, committed_path, read_regular_file
from ..weights.safe_pickle import load_pickle

SUFFIXES = (".pdparams", ".pdstates")
RUN_INFO_SUFFIX = ".run.json"  # architecture, class count and class names: eval/export need only the checkpoint
MAX_RUN_INFO_BYTES = 16 << 20
# A .pdstates holds a few thousand values (a ResNet-152's weights, EMA and optimizer state: ~3,000 tensors;
# each RNG state ~7,000 numbers): far below these bounds, which stop a crafted file whose shared dicts
# expand to 2^40 paths.
MAX_STATE_VALUES = 250_000
MAX_STATE_DEPTH = 64
MAX_EPOCH = 1_000_000
MAX_STEP = 1 << 53


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


def copy_checkpoint(source_prefix, prefix):
    """Commits ``prefix`` as a copy of the checkpoint ``source_prefix`` (``epoch_N`` of ``latest``, the same
    state) without serialising it again: its files hard-linked where the file system allows, else copied. A
    link stays a copy: commits replace files by rename, never rewrite them in place."""
    folder, unit = os.path.split(os.path.abspath(prefix))

    def write(staging):
        for suffix in SUFFIXES + (RUN_INFO_SUFFIX,):
            source = committed_path(source_prefix + suffix)
            if not os.path.lexists(source):
                continue
            target = os.path.join(staging, unit + suffix)
            try:
                os.link(source, target)
            except OSError:  # a file system without hard links
                shutil.copyfile(source, target)
    commit_unit(folder, unit, write)


def read_run_info(weights_path):
    """What the run that wrote a checkpoint was, from ``<prefix>.run.json`` beside its weights:
    ``{"arch", "class_num", "class_names" (a list of str, or None), ...}``; None when there is no such
    file (weights from elsewhere, or saved before checkpoints recorded it). Raises InputError naming the
    file when it is damaged."""
    path = committed_path(strip_suffix(os.fspath(weights_path)) + RUN_INFO_SUFFIX)
    if not os.path.lexists(path):
        return None
    data = read_regular_file(path, MAX_RUN_INFO_BYTES, "checkpoint run record")
    try:
        try:
            info = json.loads(data.decode("utf-8"))
        except RecursionError:
            raise ValueError("nested too deeply") from None
        if not isinstance(info, dict):
            raise ValueError("not a JSON object")
        count, names = info.get("class_num"), info.get("class_names")
        if count is not None and (not is_int(count) or count < 1):
            raise ValueError(f"class_num must be an integer >= 1, got {short_repr(count)}")
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)
                                      and len(names) == count):
            raise ValueError(f"class_names must be a list of {count} strings")
        for key, kind in (("arch", str), ("model_options", dict), ("optimizer", str)):
            if info.get(key) is not None and not isinstance(info[key], kind):
                raise ValueError(f"{key} must be a {kind.__name__}, got {short_repr(info[key])}")
    except ValueError as error:  # json's errors (and UnicodeDecodeError) are ValueErrors
        raise InputError(f"{path}: not a valid checkpoint run record ({error}); delete it to use the "
                         f"weights without it") from None
    return info


def load_training_state(prefix):
    """The ``.pdstates`` of ``prefix``, with every array as a paddle Tensor (as ``paddle.load`` gives them)."""
    prefix = strip_suffix(prefix)
    path = committed_path(prefix + ".pdstates")
    if not os.path.exists(path):  # a FIFO or a device is refused by name when it is read
        hint = (f" ({prefix}.pdparams holds weights only: use Global.pretrained_model for it)"
                if os.path.isfile(committed_path(prefix + ".pdparams")) else "")
        raise MissingFileError(f"cannot resume: {prefix}.pdstates does not exist{hint}")
    return _to_tensors(load_pickle(path), path)


def _to_tensors(obj, path):
    """``obj`` with the arrays in its (nested) dicts as Tensors; those in lists and tuples (an RNG state's)
    stay numpy. Counts every value it reaches, shared or not, so that a crafted file of shared dicts (a tiny
    file, 2^40 paths) is refused instead of expanded."""
    visited = 0

    def convert(value, depth, in_sequence):
        nonlocal visited
        visited += len(value) if isinstance(value, (dict, list, tuple)) else 0
        if visited > MAX_STATE_VALUES or depth > MAX_STATE_DEPTH:
            raise UnsafeFileError(f"{path}: not a training state: its values nest deeper than {MAX_STATE_DEPTH} "
                                  f"levels or expand to more than {MAX_STATE_VALUES:,} (shared containers)")
        if isinstance(value, np.ndarray) and not in_sequence:
            return paddle.to_tensor(value)
        if isinstance(value, dict):
            return {key: convert(item, depth + 1, False) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            for item in value:
                if isinstance(item, (dict, list, tuple)):
                    convert(item, depth + 1, True)
        return value
    return convert(obj, 0, False)


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


def nonfinite_tensors(tensors):
    """The names of the tensors in ``tensors`` (name -> Tensor) that hold a NaN or inf: one reduction per
    tensor and a single read back (once per save, which itself takes far longer)."""
    names = [name for name, tensor in tensors.items() if isinstance(tensor, paddle.Tensor)
             and tensor.is_floating_point() and tensor.size > 0]
    if not names:
        return []
    finite = paddle.stack([paddle.isfinite(tensors[name]).all() for name in names]).numpy()
    return [name for name, ok in zip(names, finite) if not ok]


def check_training_state(state, path):
    """Refuses (one InputError naming ``path`` and the key) a ``.pdstates`` whose values are not of the kind
    and range ``Trainer`` saves, before any of it is applied."""
    def refuse(key, expected, value):
        raise InputError(f"{path}: not a valid training state: {key} must be {expected}, got {short_repr(value)}")
    if not isinstance(state, dict):
        refuse("the file", "a dict", state)
    for key in ("model", "optimizer", "lr", "rng"):
        if not isinstance(state.get(key), dict):
            refuse(key, "a dict", state.get(key))
    for key in ("model", "ema"):
        for name, value in (state.get(key) or {}).items():
            if not (isinstance(name, str) and isinstance(value, paddle.Tensor)):
                refuse(f"{key}[{short_repr(name)}]", "a tensor", value)
    for key in ("ema", "scaler", "run", "partial", "early_stop"):
        if state.get(key) is not None and not isinstance(state[key], dict):
            refuse(key, "a dict or None", state[key])
    epoch, step = state.get("epoch"), state.get("global_step")
    if not (is_int(epoch) and -1 <= epoch < MAX_EPOCH):  # -1: preempted during the first epoch
        refuse("epoch", f"an integer from -1 to {MAX_EPOCH - 1}", epoch)
    if not (is_int(step) and 0 <= step <= MAX_STEP):
        refuse("global_step", f"an integer from 0 to {MAX_STEP}", step)
    best = state.get("best")
    if not (isinstance(best, dict) and is_number(best.get("top1"), finite=True) and is_int(best.get("epoch"))
            and -1 <= best["epoch"] < MAX_EPOCH):
        refuse("best", "{'top1': a number, 'epoch': an epoch}", best)
    for key in ("value", "loss"):
        if best.get(key) is not None and not is_number(best[key], finite=True):
            refuse(f"best.{key}", "a number or None", best[key])
    stop = state.get("early_stop")
    if stop is not None and not (isinstance(stop, dict) and (stop.get("value") is None or is_number(stop["value"], finite=True))
                                 and is_int(stop.get("epoch")) and is_int(stop.get("evals_without_gain"))
                                 and stop["evals_without_gain"] >= 0):
        refuse("early_stop", "{'metric', 'value': a number, 'epoch', 'evals_without_gain'} or None", stop)
    for key, value in state["lr"].items():
        if value is not None and not is_number(value, finite=True):
            refuse(f"lr.{key}", "a number", value)
    if not (is_int(state["lr"].get("last_epoch", 0)) and -1 <= state["lr"].get("last_epoch", 0) <= MAX_STEP):
        refuse("lr.last_epoch", f"an integer from -1 to {MAX_STEP}", state["lr"]["last_epoch"])
    for key in ("model", "ema"):
        bad = nonfinite_tensors(state.get(key) or {})
        if bad:
            raise InputError(f"{path}: {key} holds non-finite values in {len(bad)} tensors "
                             f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); refusing to resume from it")
    _rng_objects(state["rng"], path)


def rng_state():
    """Python, numpy and Paddle RNG states as plain values (Paddle's GeneratorState as its pickle tuple)."""
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "paddle": [state.__getstate__() for state in paddle.get_rng_state()]}


def set_rng_state(state, path="the checkpoint"):
    """Restores what ``rng_state`` saved; a value of another kind or shape is an InputError naming ``path``."""
    python, numpy_state, generators = _rng_objects(state, path)
    random.setstate(python.getstate())
    np.random.set_state(numpy_state.get_state())
    paddle.set_rng_state(generators)


def _rng_objects(state, path):
    """``rng_state()``'s values as a ``random.Random``, a ``RandomState`` and Paddle generator states, built
    apart from the global ones, so that a bad value is refused before anything is restored."""
    def refuse(key, value):
        return InputError(f"{path}: not a valid training state: rng.{key} is not the RNG state rng_state() saves "
                          f"(got {short_repr(value)})")
    python, numpy_state, generators = state.get("python"), state.get("numpy"), state.get("paddle")
    if not (isinstance(python, (list, tuple)) and len(python) == 3 and isinstance(python[1], (list, tuple))
            and len(python[1]) == 625 and all(is_int(v) for v in python[1])):
        raise refuse("python", python)
    restored_python = random.Random()
    try:
        restored_python.setstate(_as_tuples(python))
    except (TypeError, ValueError, OverflowError):
        raise refuse("python", python) from None
    if not (isinstance(numpy_state, (list, tuple)) and len(numpy_state) == 5 and numpy_state[0] == "MT19937"
            and isinstance(numpy_state[1], np.ndarray) and numpy_state[1].dtype == np.uint32
            and numpy_state[1].shape == (624,) and is_int(numpy_state[2]) and 0 <= numpy_state[2] <= 624
            and numpy_state[3] in (0, 1) and is_number(numpy_state[4], finite=True)):
        raise refuse("numpy", numpy_state)
    restored_numpy = np.random.RandomState()
    restored_numpy.set_state(tuple(numpy_state))
    expected = paddle.get_rng_state()
    if not (isinstance(generators, (list, tuple)) and len(generators) == len(expected)):
        raise refuse("paddle", generators)
    generator_state = type(expected[0])
    restored = []
    for values in generators:
        if not (isinstance(values, (list, tuple)) and len(values) == 4 and all(is_int(v) for v in values[:3])
                and isinstance(values[3], (list, tuple)) and all(is_int(v) and 0 <= v < 128 for v in values[3])):
            raise refuse("paddle", values)
        generator = generator_state.__new__(generator_state)  # pybind11's pickle path: no public constructor
        try:
            generator.__setstate__(tuple(values))
        except (TypeError, ValueError, OverflowError, RuntimeError):
            raise refuse("paddle", values) from None
        restored.append(generator)
    return restored_python, restored_numpy, restored


def _as_tuples(value):
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value
