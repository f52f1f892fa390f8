"""Checkpoint averaging: the mean of the weights of a run's last N epoch checkpoints (``epoch_<N>.pdparams``,
written every ``Global.save_interval`` epochs), read by the weights readers that run no code, written as a
checkpoint with the run record of the last one (so eval and export take its class count and names)."""
import os
import re

import numpy as np

from ..errors import InputError
from ..weights import read_state_dict
from .checkpoint import read_run_info, save_checkpoint

EPOCH_FILE = re.compile(r"epoch_(\d+)\.pdparams")


def epoch_checkpoints(folder):
    """[(epoch, prefix)] of the ``epoch_<N>.pdparams`` in ``folder``, by epoch."""
    try:
        names = os.listdir(folder)
    except OSError as error:
        raise InputError(f"cannot list the checkpoints of {folder}: {error.strerror or error}") from None
    found = [(int(m.group(1)), os.path.join(folder, f"epoch_{m.group(1)}")) for m in map(EPOCH_FILE.fullmatch, names) if m]
    return sorted(found)


def average_checkpoints(folder, last, out):
    """Writes the mean of the last ``last`` epoch checkpoints of ``folder`` as the checkpoint ``out``;
    -> the epochs averaged."""
    found = epoch_checkpoints(folder)
    if len(found) < last:
        listed = ", ".join(os.path.basename(prefix) for _, prefix in found) or "none"
        raise InputError(f"{folder} has {len(found)} epoch checkpoints ({listed}), fewer than the {last} to "
                         f"average; a run keeps one every Global.save_interval epochs")
    chosen = found[-last:]
    total, dtypes = None, None
    for _, prefix in chosen:
        file, state = read_state_dict(prefix + ".pdparams")
        if total is None:
            total = {key: value.astype(np.float64) for key, value in state.items()}
            dtypes, first = {key: value.dtype for key, value in state.items()}, file
            continue
        _check_same_tensors(total, state, first, file)
        for key, value in state.items():
            total[key] += value
    import paddle
    averaged = {key: paddle.to_tensor((value / len(chosen)).astype(dtypes[key])) for key, value in total.items()}
    save_checkpoint(out, averaged, None, read_run_info(chosen[-1][1] + ".pdparams"))
    return [epoch for epoch, _ in chosen]


def _check_same_tensors(total, state, first, file):
    if set(state) != set(total):
        differ = sorted(set(state) ^ set(total))[0]
        raise InputError(f"{file} and {first} hold different tensors (e.g. {differ}): not checkpoints of one run")
    for key, value in state.items():
        if value.shape != total[key].shape:
            raise InputError(f"{file}: {key} is {list(value.shape)}, {list(total[key].shape)} in {first}: not "
                             f"checkpoints of one run")
