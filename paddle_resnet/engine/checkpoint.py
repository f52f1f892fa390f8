"""Atomic checkpoints.

``<prefix>.pdparams`` holds the model weights (what ``Global.pretrained_model`` and export read);
``<prefix>.pdstates`` holds everything a resume needs (weights again, optimizer, LR schedule, epoch,
step, EMA, loss scaler, RNG states), so a resume never mixes two generations of files.
Each file is written to a temporary name in the same folder and renamed over the old one:
a kill during a save leaves the previous checkpoint intact.
"""
import os
import random
import tempfile

import numpy as np
import paddle


def atomic_save(obj, path):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        paddle.save(obj, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def strip_suffix(prefix):
    for suffix in (".pdparams", ".pdstates"):
        if prefix.endswith(suffix):
            return prefix[: -len(suffix)]
    return prefix


def save_checkpoint(prefix, weights, state):
    """``state`` must already contain the weights; they are written again alone for export/eval use."""
    atomic_save(state, prefix + ".pdstates")
    atomic_save(weights, prefix + ".pdparams")


def load_training_state(prefix):
    prefix = strip_suffix(prefix)
    path = prefix + ".pdstates"
    if not os.path.isfile(path):
        hint = (f" ({prefix}.pdparams holds weights only: use Global.pretrained_model for it)"
                if os.path.isfile(prefix + ".pdparams") else "")
        raise FileNotFoundError(f"cannot resume: {path} does not exist{hint}")
    return paddle.load(path)


def rng_state():
    return {"python": random.getstate(), "numpy": np.random.get_state(), "paddle": paddle.get_rng_state()}


def set_rng_state(state):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    paddle.set_rng_state(state["paddle"])
