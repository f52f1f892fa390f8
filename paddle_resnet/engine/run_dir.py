"""One live training run per output folder, and a clean folder to start from; ``acquire_lock`` also keeps
``predict.py --output`` to one writer per file.

The lock is ``fcntl.flock`` on ``<output_dir>/.lock``: the kernel drops it when the process dies, even by
SIGKILL, so a stale lock never blocks a new run, and the pid written inside names the live holder.
"""
import fcntl
import os
import re
import socket
import time

from ..errors import InputError
from ..fileio import recover

LOCK_FILE = ".lock"
LOG_FILE = "train.log"  # written by logger.setup_logging
# Temporary files of versions before fileio (mkstemp's "latest.pdstates.ab12cd.tmp", "x.pdparams.tmp1a2b").
_LEGACY_TEMP = re.compile(r".+\.(pdparams|pdstates)\.(.+\.tmp|tmp.+)$")
_HELD = {}  # real path of a locked folder -> open lock file, for this process


class OutputDirInUse(InputError):
    pass


def _describe_holder(lock_path):
    try:
        with open(lock_path, encoding="utf-8") as f:
            return f.read().strip() or "another process"
    except OSError:
        return "another process"


def acquire_lock(lock_path, in_use):
    """An ``flock`` on ``lock_path`` for this process, which writes itself into the file; returns the open file
    (closing it releases the lock). When a live process holds it, raises ``in_use(holder)``, where ``holder``
    names that process ("pid 123 on host since ...")."""
    handle = open(lock_path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise in_use(_describe_holder(lock_path)) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    return handle


def lock_is_held(lock_path):
    """Whether a live process holds the ``flock`` on ``lock_path`` (False when the file does not exist)."""
    try:
        handle = open(lock_path, encoding="utf-8")
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False


def lock_output_dir(output_dir):
    """Takes the folder for this process; raises OutputDirInUse naming the live run that holds it."""
    created = not os.path.exists(output_dir)
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as err:
        raise InputError(f"Global.output_dir {output_dir!r} cannot be created: {err.strerror}") from None
    key = os.path.realpath(output_dir)
    if key in _HELD:  # an earlier Engine of this process (e.g. a notebook re-running a cell)
        return
    handle = acquire_lock(os.path.join(output_dir, LOCK_FILE), lambda holder: OutputDirInUse(
        f"Global.output_dir {output_dir!r} is in use by a live training run ({holder}); choose another "
        f"Global.output_dir or stop that run first"))
    _HELD[key] = handle, created


def unlock_output_dir(output_dir, refused=False):
    """Releases the folder. After a refused run (a UserError before anything was saved), a folder this run
    created holds only its lock and log, and is removed: a refusal leaves nothing behind."""
    handle, created = _HELD.pop(os.path.realpath(output_dir), (None, False))
    if handle is None:
        return
    handle.close()  # closing the file releases the flock
    if refused and created and set(os.listdir(output_dir)) <= {LOCK_FILE, LOG_FILE}:
        for name in os.listdir(output_dir):
            os.remove(os.path.join(output_dir, name))
        os.rmdir(output_dir)


def clean_output_dir(output_dir):
    """Finishes checkpoints a killed run was committing and removes its temporary files; returns their
    names. Only for the holder of the folder's lock."""
    removed = recover(output_dir)
    for name in sorted(os.listdir(output_dir)):
        if _LEGACY_TEMP.match(name) and os.path.isfile(os.path.join(output_dir, name)):
            os.remove(os.path.join(output_dir, name))
            removed.append(name)
    return removed
