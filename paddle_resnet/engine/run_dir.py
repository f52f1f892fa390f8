"""One live training run per output folder (its ``.lock``, locks.py), and a clean folder to start from."""
import os

from ..errors import InputError, OutputError, short_repr
from ..fileio import recover
from ..locks import acquire_lock

LOCK_FILE = ".lock"
LOG_FILE = "train.log"  # written by logger.setup_logging
_HELD = {}  # real path of a locked folder -> open lock file, for this process


class OutputDirInUse(InputError):
    pass


def lock_output_dir(output_dir):
    """Takes the folder for this process; raises OutputDirInUse naming the live run that holds it."""
    created = not os.path.exists(output_dir)
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as err:
        raise OutputError(f"Global.output_dir {short_repr(output_dir, 300)} cannot be created: {err.strerror}",
                          reason=err.strerror) from None
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
    return recover(output_dir)
