"""One live training run per output folder, and a clean folder to start from; ``acquire_lock`` also keeps
``predict.py --output`` to one writer per file.

The lock is ``fcntl.flock`` on ``<output_dir>/.lock``: the kernel drops it when the process dies, even by
SIGKILL, so a stale lock never blocks a new run, and the pid written inside names the live holder.
"""
import errno
import fcntl
import os
import re
import socket
import stat
import time

from ..errors import InputError, OutputError, short_repr
from ..fileio import recover

LOCK_FILE = ".lock"
LOG_FILE = "train.log"  # written by logger.setup_logging
# Temporary files of versions before fileio (mkstemp's "latest.pdstates.ab12cd.tmp", "x.pdparams.tmp1a2b").
_LEGACY_TEMP = re.compile(r".+\.(pdparams|pdstates)\.(.+\.tmp|tmp.+)$")
_HELD = {}  # real path of a locked folder -> open lock file, for this process
# Never through a link, never blocking (a FIFO planted as the lock file).
_LOCK_OPEN_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class OutputDirInUse(InputError):
    pass


def _describe_holder(fd):
    """The holder's line in the lock file, read from our own open file (at most 200 bytes, printable only)."""
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text if text and text.isprintable() else "another process"


def _open_lock_file(lock_path):
    folder = os.path.dirname(os.path.abspath(lock_path))
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | _LOCK_OPEN_FLAGS, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise OutputError(f"{lock_path} is a symbolic link, not a lock file of this program; "
                              f"remove it") from None
        raise OutputError(f"output folder {folder} is not writable: {error.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OutputError(f"{lock_path} is not a regular file (a FIFO, device or folder), not a lock file of this "
                          f"program; remove it")
    return os.fdopen(fd, "r+", encoding="utf-8")


def acquire_lock(lock_path, in_use):
    """An ``flock`` on ``lock_path`` for this process, which writes itself into the file; returns the open file
    (closing it releases the lock). When a live process holds it, raises ``in_use(holder)``, where ``holder``
    names that process ("pid 123 on host since ..."). A folder that cannot be written, or a lock file that is
    a link, FIFO or device (never followed or read), raises ``OutputError`` naming it."""
    handle = _open_lock_file(lock_path)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _describe_holder(handle.fileno())
        handle.close()
        raise in_use(holder) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        handle.flush()
    except OSError as error:  # a full disk, or ulimit -f
        handle.close()
        folder = os.path.dirname(os.path.abspath(lock_path))
        raise OutputError(f"output folder {folder} is not writable: {error.strerror}") from None
    return handle


def lock_is_held(lock_path):
    """Whether a live process holds the ``flock`` on ``lock_path`` (False when the file does not exist, or is
    a link, FIFO or device: no lock of this program)."""
    try:
        fd = os.open(lock_path, os.O_RDONLY | _LOCK_OPEN_FLAGS)
    except FileNotFoundError:
        return False
    except OSError as error:
        if error.errno == errno.ELOOP:
            return False
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


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
    removed = recover(output_dir)
    for name in sorted(os.listdir(output_dir)):
        path = os.path.join(output_dir, name)
        if _LEGACY_TEMP.match(name) and os.path.isfile(path) and not os.path.islink(path):
            os.remove(path)
            removed.append(name)
    return removed
