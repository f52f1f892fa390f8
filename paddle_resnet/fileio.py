"""Writing files so that a kill at any moment leaves the last good version whole and loadable.

* ``write_atomically(path, write)``: one file. ``write(tmp)`` writes a temporary file beside ``path``;
  it is flushed to disk and renamed over ``path``. Files are created with ``open()``, so their mode
  follows the umask (unlike ``mkstemp``'s 0600).
* ``commit_unit(folder, unit, write)``: several files that belong together (a checkpoint's weights and
  training state, an export's program, parameters and ``inference.yml``). ``write(staging_dir)``
  writes them into a staging folder, which is renamed to ``.<unit>.commit`` in one step: that rename
  is the commit. The files are then moved into ``folder`` one by one. A kill before the rename leaves
  the old unit; a kill after it leaves a commit folder that ``recover`` (and ``committed_path`` for
  readers) completes, so the unit is never seen half old, half new.
* ``recover(folder)``: finishes interrupted commits and deletes what interrupted writes left behind.
"""
import os
import shutil
import stat
import uuid

TEMP_MARK = ".tmp-"
STAGING_MARK = ".staging-"
COMMIT_SUFFIX = ".commit"
REMOVE_LIST = ".remove"  # inside a commit folder: names of files the unit no longer has


def read_regular_file(path, max_bytes, what="file"):
    """The bytes of ``path`` if it is a regular file of at most ``max_bytes``; raises ``InputError`` (one
    line naming the path) for anything else: a FIFO or device (opened non-blocking, so a FIFO with no writer
    never blocks; ``/dev/zero`` behind a symlink is refused before any read), a folder, or a larger file.
    A file that grows while it is read is still cut at ``max_bytes + 1`` and refused."""
    from .errors import InputError, MissingFileError
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise MissingFileError(f"{what} {path} does not exist") from None
    except OSError as error:
        raise InputError(f"cannot open {what} {path}: {error.strerror or error}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{what} {path} is not a regular file")
        if info.st_size > max_bytes:
            raise InputError(f"{what} {path} has {info.st_size:,} bytes, more than the {max_bytes:,} allowed")
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as error:
        raise InputError(f"cannot read {what} {path}: {error.strerror or error}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise InputError(f"{what} {path} has more than the {max_bytes:,} bytes allowed")
    return data


def _hidden_temp_name(name, mark):
    return f".{name}{mark}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path, write):
    """Runs ``write(tmp_path)``, then renames the finished file over ``path``; returns ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, _hidden_temp_name(os.path.basename(path), TEMP_MARK))
    try:
        write(tmp)
        fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    fsync_path(folder)
    return path


def save_atomically(obj, path):
    """``paddle.save(obj, path)`` through :func:`write_atomically`."""
    import paddle
    return write_atomically(path, lambda tmp: paddle.save(obj, tmp))


def _commit_dir(folder, unit):
    return os.path.join(folder, f".{unit}{COMMIT_SUFFIX}")


def commit_unit(folder, unit, write, remove=()):
    """Writes a group of files as one unit (see the module docstring); returns their final paths.

    ``write(staging_dir)`` creates the files; ``remove`` names files in ``folder`` that the new unit
    replaces without a file of its own (an export without ONNX removes the last export's ONNX file).
    """
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    _finish_commit(folder, _commit_dir(folder, unit))  # an earlier commit of this unit, interrupted
    staging = os.path.join(folder, _hidden_temp_name(unit, STAGING_MARK))
    os.mkdir(staging)
    try:
        write(staging)
        names = sorted(os.listdir(staging))
        stale = sorted(set(remove) - set(names))
        if stale:
            with open(os.path.join(staging, REMOVE_LIST), "w", encoding="utf-8") as f:
                f.write("\n".join(stale) + "\n")
        for name in os.listdir(staging):
            fsync_path(os.path.join(staging, name))
        fsync_path(staging)
        os.rename(staging, _commit_dir(folder, unit))  # the commit point
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_path(folder)
    _finish_commit(folder, _commit_dir(folder, unit))
    return [os.path.join(folder, name) for name in names]


def _finish_commit(folder, commit):
    if not os.path.isdir(commit):
        return
    names = sorted(os.listdir(commit))
    if REMOVE_LIST in names:
        names.remove(REMOVE_LIST)
        with open(os.path.join(commit, REMOVE_LIST), encoding="utf-8") as f:
            for stale in filter(None, (line.strip() for line in f)):
                if os.path.isfile(os.path.join(folder, stale)):
                    os.remove(os.path.join(folder, stale))
        os.remove(os.path.join(commit, REMOVE_LIST))
    for name in names:
        os.replace(os.path.join(commit, name), os.path.join(folder, name))
    os.rmdir(commit)
    fsync_path(folder)


def committed_path(path):
    """Where to read ``path`` from: inside a commit folder that a killed writer did not finish moving,
    or ``path`` itself. Readers use it so that they never mix an old and a new file of one unit."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    unit = name.split(".", 1)[0]
    pending = os.path.join(_commit_dir(folder, unit), name)
    return pending if os.path.isfile(pending) else path


def recover(folder):
    """Completes interrupted commits in ``folder`` and removes temporary files and staging folders that
    interrupted writes left; returns the names removed. Call it only while no other process writes there."""
    if not os.path.isdir(folder):
        return []
    removed = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith(".") and entry.name.endswith(COMMIT_SUFFIX) and entry.is_dir():
            _finish_commit(folder, entry.path)
        elif entry.name.startswith(".") and STAGING_MARK in entry.name and entry.is_dir():
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.name)
        elif entry.name.startswith(".") and TEMP_MARK in entry.name and entry.is_file():
            os.remove(entry.path)
            removed.append(entry.name)
    return removed
