"""One process at a time per file: an ``fcntl.flock`` that the kernel drops when the process dies, even by
SIGKILL, so a stale lock never blocks; the pid written inside names the live holder. Used for a training run's
output folder (engine/run_dir.py) and ``predict.py --output``."""
import errno
import fcntl
import os
import socket
import stat
import time

from .errors import OutputError

# Never through a link, never blocking (a FIFO planted as the lock file).
_LOCK_OPEN_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


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
