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

A folder may have been handed over by someone else, so recovery trusts nothing in it: it acts only on a
commit folder that is a real folder (never a link), moves or deletes only regular files whose plain names
the unit could have written (``<unit>.*`` or ``<unit>_*``), removes only temporary files and staging folders
named exactly as this module names them (never through a link), and leaves anything else where it is
(a commit folder it cannot finish is renamed aside, ``.<unit>.refused-...``), with one warning.
A write that fails for want of room or permission raises ``OutputError`` naming the file.
"""
import contextlib
import errno
import logging
import os
import re
import shutil
import stat
import uuid

from .errors import InputError, MissingFileError, OutputError, UserError, short_repr

logger = logging.getLogger(__name__)

TEMP_MARK = ".tmp-"
STAGING_MARK = ".staging-"
COMMIT_SUFFIX = ".commit"
REFUSED_MARK = ".refused-"  # a commit folder recovery could not finish, set aside
REMOVE_LIST = ".remove"  # inside a commit folder: names of files the unit no longer has
MAX_REMOVE_LIST_BYTES = 64 << 10  # a unit drops a handful of names
NAME_MAX = 255
_TEMP_FILE = re.compile(r"\..+\.tmp-\d+-[0-9a-f]{8}")
_STAGING_DIR = re.compile(r"\..+\.staging-\d+-[0-9a-f]{8}")
# What a failed write of ours means the output cannot be written (anything else is a bug: it keeps its traceback).
_OUTPUT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO,
                  errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.EMLINK}


def open_regular_file(path, what=None):
    """``path`` opened for binary reading if it is a regular file (its links followed); ``InputError`` naming it
    otherwise: a FIFO (opened non-blocking, so one with no writer never blocks), a device (``/dev/zero``), a
    folder. A missing file is ``MissingFileError`` (a ``FileNotFoundError``). ``what`` ("image") prefixes the
    path in messages."""
    name = f"{what} {path}" if what else f"{path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise MissingFileError(f"{name} does not exist") from None
    except OSError as error:
        raise InputError(f"cannot open {name}: {error.strerror or error}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise InputError(f"{name} is not a regular file ({_file_kind(mode)})")
    return os.fdopen(fd, "rb")


def _file_kind(mode):
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))
    return next((name for is_kind, name in kinds if is_kind(mode)), "not a file")


def read_regular_file(path, max_bytes, what="file"):
    """The bytes of ``path`` if it is a regular file (:func:`open_regular_file`) of at most ``max_bytes``;
    ``InputError`` naming it otherwise. A file that grows while it is read is cut at ``max_bytes + 1`` and
    refused."""
    with open_regular_file(path, what) as f:
        try:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise InputError(f"{what} {path} has {size:,} bytes, more than the {max_bytes:,} allowed")
            chunks, left = [], max_bytes + 1
            while left > 0:
                # the whole file in one read where it can (b"".join of one chunk is that chunk: no second copy)
                chunk = os.read(f.fileno(), min(left, max(size + 1, 1 << 20), 1 << 30))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        except OSError as error:
            raise InputError(f"cannot read {what} {path}: {error.strerror or error}") from None
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


@contextlib.contextmanager
def reported_as_output_error(path, rename=lambda filename: filename):
    """Turns an OSError that means "cannot be written here" (permission, room, file-size limit, a file where a
    folder should be) into ``OutputError("cannot write <file>: <reason>")``; the file is the one the error
    names (through ``rename``), else ``path``."""
    try:
        yield
    except OSError as error:
        if isinstance(error, UserError) or error.errno not in _OUTPUT_ERRNOS:
            raise
        filename = rename(os.fsdecode(error.filename)) if error.filename else path
        raise OutputError(f"cannot write {short_repr(filename, 300)[1:-1]}: {error.strerror}",
                          reason=error.strerror) from None


def _make_folder(folder):
    try:
        os.makedirs(folder, exist_ok=True)
    except FileExistsError:  # a file, or a link to nowhere, where the folder should be
        if os.path.islink(folder) and not os.path.exists(folder):
            reason = f"it is a link to {short_repr(os.readlink(folder), 200)}, which does not exist"
            raise OutputError(f"cannot write {short_repr(folder, 300)[1:-1]}: {reason}", reason=reason) from None
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), folder) from None


def write_atomically(path, write):
    """Runs ``write(tmp_path)``, then renames the finished file over ``path``; returns ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, _hidden_temp_name(os.path.basename(path), TEMP_MARK))
    with reported_as_output_error(path, rename=lambda filename: path if filename == tmp else filename):
        _make_folder(folder)
        check_replaceable(path)
        try:
            write(tmp)
            fsync_path(tmp)
            os.replace(tmp, path)
        except BaseException:
            if os.path.lexists(tmp):
                os.remove(tmp)
            raise
        fsync_path(folder)
    return path


def check_replaceable(path):
    """A rename over a FIFO, a device or a socket would replace that node by a regular file (``--json
    /dev/stdout`` would destroy the device): refuse those and folders. A link is replaced, not followed."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        reason = f"it is {_file_kind(mode)}, not a regular file"
        raise OutputError(f"cannot write {short_repr(path, 300)[1:-1]}: {reason}", reason=reason)


def save_atomically(obj, path):
    """``paddle.save(obj, path)`` through :func:`write_atomically`."""
    import paddle
    return write_atomically(path, lambda tmp: paddle.save(obj, tmp))


def _commit_dir(folder, unit):
    return os.path.join(folder, f".{unit}{COMMIT_SUFFIX}")


def _is_plain_name(name):
    return name not in ("", ".", "..") and not name.startswith(".") and "/" not in name and "\0" not in name


def unit_owns(unit, name):
    """Whether ``name`` is a file the unit ``unit`` may write: ``<unit>.<...>`` or ``<unit>_<...>`` (the
    export unit ``inference`` has ``inference_int8.onnx``), a plain name in the unit's folder."""
    return (_is_plain_name(name) and _is_plain_name(unit) and len(name) > len(unit) and name.startswith(unit)
            and name[len(unit)] in "._")


def _lstat_is(path, kind):
    try:
        return kind(os.lstat(path).st_mode)
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return False


def commit_unit(folder, unit, write, remove=()):
    """Writes a group of files as one unit (see the module docstring); returns their final paths.

    ``write(staging_dir)`` creates the files, regular files named like the unit (``unit_owns``); ``remove``
    names files in ``folder`` that the new unit replaces without a file of its own (an export without ONNX
    removes the last export's ONNX file). Raises ``OutputError`` naming the file when it cannot be written.
    """
    folder = os.fspath(folder)
    _check_owned(unit, remove)
    staging = os.path.join(folder, _hidden_temp_name(unit, STAGING_MARK))

    def final_name(filename):  # the file being written, by the name it was to have
        inside = os.path.relpath(filename, staging)
        return os.path.join(folder, inside) if not inside.startswith("..") else filename
    with reported_as_output_error(os.path.join(folder, unit + ".*"), rename=final_name):
        _make_folder(folder)
        _warn_refused(folder, _finish_commit(folder, unit))  # an earlier commit of this unit, interrupted
        _remove_dead_stagings(folder, unit)
        os.mkdir(staging)
        try:
            write(staging)
            names = sorted(os.listdir(staging))
            _check_owned(unit, names)
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
        _finish_commit(folder, unit)
    return [os.path.join(folder, name) for name in names]


def _remove_dead_stagings(folder, unit):
    """Removes the staging folders of ``unit`` that a killed writer left (its pid, in the name, is gone); a
    live writer's (another export into the same folder) is left alone. Only real folders, never a link."""
    pattern = re.compile(re.escape(f".{unit}{STAGING_MARK}") + r"(\d+)-[0-9a-f]{8}")
    for entry in os.scandir(folder):
        match = pattern.fullmatch(entry.name)
        if match and entry.is_dir(follow_symlinks=False) and not _process_alive(int(match.group(1))):
            shutil.rmtree(entry.path)


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    except OverflowError:
        return False
    return True


def _check_owned(unit, names):
    if not _is_plain_name(unit):
        raise ValueError(f"commit_unit: the unit name {unit!r} is not a plain file name")
    strays = [name for name in names if not unit_owns(unit, name)]
    if strays:
        raise ValueError(f"commit_unit: {strays} not named like the unit {unit!r} ({unit}.* or {unit}_*)")


def _finish_commit(folder, unit):
    """Moves the files of an interrupted commit of ``unit`` into place; returns what it refused to act on."""
    commit = _commit_dir(folder, unit)
    if not os.path.lexists(commit):
        return []
    if _lstat_is(commit, stat.S_ISDIR):
        refused = _remove_stale(folder, unit, commit) + _move_out(folder, unit, commit)
        with contextlib.suppress(OSError):
            os.rmdir(commit)
    else:
        refused = [f"{os.path.basename(commit)} (a link or file, not a folder)"]
    if os.path.lexists(commit):  # set aside, so that the next commit of the unit works
        aside = os.path.join(folder, _hidden_temp_name(unit, REFUSED_MARK))
        os.rename(commit, aside)
        refused.append(f"{os.path.basename(commit)} set aside as {os.path.basename(aside)}")
    fsync_path(folder)
    return refused


def _remove_stale(folder, unit, commit):
    """Deletes the regular files, named like the unit, that the commit's ``.remove`` list names."""
    listing = os.path.join(commit, REMOVE_LIST)
    if not os.path.lexists(listing):
        return []
    try:
        if not _lstat_is(listing, stat.S_ISREG):
            raise InputError(f"{listing} is not a regular file")
        lines = read_regular_file(listing, MAX_REMOVE_LIST_BYTES, "commit list").decode("utf-8").splitlines()
    except (InputError, UnicodeDecodeError):
        return [f"{unit}'s {REMOVE_LIST} (not a short UTF-8 list of names)"]
    refused = []
    for stale in filter(None, (line.strip() for line in lines)):
        path = os.path.join(folder, stale)
        if unit_owns(unit, stale) and _lstat_is(path, stat.S_ISREG):
            os.remove(path)
        elif not unit_owns(unit, stale) or os.path.lexists(path):
            refused.append(f"{unit}'s {REMOVE_LIST} line {short_repr(stale)}")
    os.remove(listing)
    return refused


def _move_out(folder, unit, commit):
    refused = []
    for name in sorted(os.listdir(commit)):
        if name == REMOVE_LIST:  # one that _remove_stale refused
            continue
        if unit_owns(unit, name) and _lstat_is(os.path.join(commit, name), stat.S_ISREG) \
                and not _lstat_is(os.path.join(folder, name), stat.S_ISDIR):
            os.replace(os.path.join(commit, name), os.path.join(folder, name))
        else:
            refused.append(f"{os.path.basename(commit)}/{short_repr(name)}")
    return refused


def committed_path(path):
    """Where to read ``path`` from: inside a commit folder that a killed writer did not finish moving,
    or ``path`` itself. Readers use it so that they never mix an old and a new file of one unit.
    Never through a link: a commit folder or file that is one is not what a writer left."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    if len(name) > NAME_MAX:
        return path
    for unit in (name[:i] for i in range(1, len(name)) if name[i] in "._"):  # the units that may own it
        commit = _commit_dir(folder, unit)
        pending = os.path.join(commit, name)
        if _lstat_is(commit, stat.S_ISDIR) and _lstat_is(pending, stat.S_ISREG):
            return pending
    return path


def recover(folder):
    """Completes interrupted commits in ``folder`` and removes temporary files and staging folders that
    interrupted writes left; returns the names removed. Call it only while no other process writes there.
    What it refuses (see the module docstring) is left in the folder and named in one warning."""
    if not os.path.isdir(folder):
        return []
    removed, refused = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        name = entry.name
        if name.startswith(".") and name.endswith(COMMIT_SUFFIX):
            refused += _finish_commit(folder, name[1:-len(COMMIT_SUFFIX)])
        elif _STAGING_DIR.fullmatch(name) or _TEMP_FILE.fullmatch(name):
            if _STAGING_DIR.fullmatch(name) and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)  # never follows a link inside
            elif _TEMP_FILE.fullmatch(name) and entry.is_file(follow_symlinks=False):
                os.remove(entry.path)
            else:
                refused.append(f"{name} (a link or not what this program writes)")
                continue
            removed.append(name)
    _warn_refused(folder, refused)
    return removed


def _warn_refused(folder, refused):
    if refused:
        shown = "; ".join(refused[:8]) + (f"; and {len(refused) - 8} more" if len(refused) > 8 else "")
        logger.warning("recovery in %s refused (left as they are): %s", folder, shown)
