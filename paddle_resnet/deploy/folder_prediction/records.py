"""The JSON Lines output: its header, one record per file, resume after a kill, and merging the ranks' files."""
import base64
import binascii
import contextlib
import functools
import heapq
import itertools
import json
import os
from dataclasses import dataclass

from ...errors import InputError, OutputError
from ...fileio import open_regular_file, write_atomically
from ..predictor import path_bytes, printable
from .inputs import walk_order

HEADER_KEY = "predict"
RECORD_KEYS = {"path", "class_ids", "scores", "label_names", "error"}
RUN_KEYS = ("model", "top_k", "backend", "precision", "device")  # a resume must match them all
MAX_LINE_BYTES = 1 << 22  # far above any record (1000 classes with 100-character names: ~130 KB)
RECORD_START, HEADER_START = b'{"path": ', b'{"%s": ' % HEADER_KEY.encode()


def run_header(predictor, top_k):
    """What identifies a run's scores, written as the output's first line."""
    options = predictor.options
    return {"model": predictor.fingerprint(), "top_k": top_k, "backend": predictor.backend_name,
            "precision": options.precision, "device": options.device,
            "model_dir": os.path.abspath(predictor.model_dir), "cwd": os.getcwd()}


def to_json_line(value):
    return (json.dumps(value, allow_nan=False) + "\n").encode()


def to_record(prediction):
    record = {"path": printable(prediction.input), "class_ids": prediction.class_ids, "scores": prediction.scores,
              "label_names": prediction.label_names,
              "error": None if prediction.error is None else printable(prediction.error)}
    if (raw := path_bytes(prediction.input)) is not None:
        record["path_bytes"] = raw
    return record


def record_path(record):
    """The path a record names, exactly (``path_bytes`` when the name is not valid UTF-8)."""
    if "path_bytes" in record:
        return os.fsdecode(base64.b64decode(record["path_bytes"], validate=True))
    return record["path"]


def path_keys():
    """-> ``key(path)``: the path with its folder resolved (symlinks, ``.``, ``..``, relative to the current
    folder), so any spelling of a file has one key; the name itself is kept, so two links in a folder stay
    two files. Folders are resolved once each."""
    folder_of = functools.lru_cache(maxsize=4096)(lambda folder: os.path.realpath(folder or "."))
    return lambda path: os.path.join(folder_of(os.path.dirname(path)), os.path.basename(path))


def _parse_line(line, first):
    """The header (``first``) or record a line holds, else None."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: a line nested 100,000 deep
        return None
    if first:
        run = value.get(HEADER_KEY) if isinstance(value, dict) and len(value) == 1 else None
        return value if isinstance(run, dict) and all(key in run for key in RUN_KEYS) else None
    if (not isinstance(value, dict) or not isinstance(value.get("path"), str)
            or set(value) - {"path_bytes"} != RECORD_KEYS):
        return None
    try:
        record_path(value)
    except (binascii.Error, TypeError, ValueError):
        return None
    return value


@dataclass
class OutputFile:
    """What an existing output holds: its header's run, the keys of the files it lists, whether any path is
    relative, and the length of its whole lines (after them, a line a kill cut short)."""
    path: str
    run: dict = None
    keys: set = None
    relative: bool = False
    whole: int = 0

    @classmethod
    def read(cls, path, key):
        """InputError if ``path`` is not a predictions file (a last line a kill cut short excepted)."""
        found = cls(path, keys=set())
        try:
            f = open_regular_file(path)
        except FileNotFoundError:
            return found
        with f:
            for number in itertools.count(1):
                line = f.readline(MAX_LINE_BYTES + 1)
                if not line:
                    break
                if not line.endswith(b"\n") and len(line) <= MAX_LINE_BYTES and _torn(line, number == 1):
                    break
                if (value := _parse_line(line, number == 1)) is None:
                    raise InputError(f"--resume: {path} is not a predictions file written by predict.py (line "
                                     f"{number} is not a record); choose another --output")
                if number == 1:
                    found.run = value[HEADER_KEY]
                else:
                    found.keys.add(key(record_path(value)))
                    found.relative = found.relative or not os.path.isabs(value["path"])
                found.whole += len(line)
        return found

    def check_run(self, run):
        """InputError, naming both, if this file was written by another model, with other settings or (with
        relative paths) from another folder."""
        if self.run is None:
            return
        keys = [*RUN_KEYS, *(("cwd",) if self.relative else ())]
        differ = [key for key in keys if self.run.get(key) != run[key]]
        if differ:
            def settings(values):
                return ", ".join(f"{key} {_shown(key, values)}" for key in differ)
            raise InputError(f"--resume: {self.path} was written by another run ({settings(self.run)}; this run: "
                             f"{settings(run)}); resume with that run's model and options, or choose another "
                             f"--output")


def _shown(key, run):
    value = run.get(key)
    if key == "model" and isinstance(value, str):
        return f"{value[:12]} in {run.get('model_dir')}"
    return str(value)[:200]


def _torn(line, first):
    """Whether a last line without its newline is the start of what this tool writes there (a kill cut it)."""
    start = HEADER_START if first else RECORD_START
    return line.startswith(start) or start.startswith(line)


def read_records(path):
    """-> (the header's run, [(line number, record)]) of a finished predictions file; an InputError names a line
    that is not a record (a last line a kill cut short included: finish the run with --resume first)."""
    run, records = None, []
    with open_regular_file(path, "predictions file") as f:
        for number in itertools.count(1):
            line = f.readline(MAX_LINE_BYTES + 1)
            if not line:
                break
            value = _parse_line(line, number == 1) if line.endswith(b"\n") or number > 1 else None
            if value is None and number == 1:
                raise InputError(f"{path}: not a predictions file written by predict.py --output (its first line "
                                 f"is not the {{\"{HEADER_KEY}\": ...}} header)")
            if value is None or not line.endswith(b"\n"):
                raise InputError(f"{path} line {number}: not a whole prediction record (a run that was stopped: "
                                 f"finish it with predict.py --resume)")
            if number == 1:
                run = value[HEADER_KEY]
            else:
                records.append((number, value))
    return run, records


def complete_lines(path):
    """The records of ``path`` that end in a newline (not its header, nor a last line a kill cut short)."""
    try:
        f = open_regular_file(path)
    except FileNotFoundError:
        return
    with f:
        yield from (line for line in f if line.endswith(b"\n") and not line.startswith(HEADER_START))


def _write_failed(path, error, written):
    return OutputError(f"cannot write --output {path}: {error.strerror or error}; the {written} records written "
                       f"so far are kept, and the same command with --resume continues")


class RecordWriter:
    """Appends prediction records to a JSON Lines file; every ``write`` is flushed and fsync'ed. ``keep``: the
    length of the existing file's whole lines (what follows, a line a kill cut short, is dropped); a file
    without a header gets ``header``."""

    def __init__(self, path, header, keep=0):
        self.path, self.written = path, 0
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as error:
            raise _write_failed(path, error, 0) from None
        try:
            os.ftruncate(self._fd, keep)
            os.lseek(self._fd, keep, os.SEEK_SET)
            if keep == 0:
                self._append(to_json_line({HEADER_KEY: header}))
        except OSError as error:
            os.close(self._fd)
            raise _write_failed(path, error, 0) from None

    def _append(self, data):
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)

    def write(self, predictions):
        start = os.lseek(self._fd, 0, os.SEEK_CUR)
        try:
            self._append(b"".join(to_json_line(to_record(p)) for p in predictions))
        except OSError as error:  # EFBIG (ulimit -f), ENOSPC: the batch is taken back whole, so that the file
            with contextlib.suppress(OSError):  # holds exactly the records the message counts
                os.ftruncate(self._fd, start)
            raise _write_failed(self.path, error, self.written) from None
        self.written += len(predictions)

    def close(self):
        os.close(self._fd)


def merge_records(sources, destination, header):
    """Writes ``header`` and the records of ``sources`` into ``destination`` (atomically) in walk order, each
    file once."""
    key = path_keys()

    def keyed(path):
        for line in complete_lines(path):
            yield walk_order(key(record_path(json.loads(line)))), line

    def write(tmp):
        seen = set()
        with open(tmp, "wb") as out:
            out.write(to_json_line({HEADER_KEY: header}))
            for order, line in heapq.merge(*map(keyed, sources), key=lambda item: item[0]):
                if tuple(order) not in seen:
                    seen.add(tuple(order))
                    out.write(line)
    try:
        write_atomically(destination, write)
    except OSError as error:
        raise OutputError(f"cannot write --output {destination}: {error.strerror or error}; the rank files are "
                          f"kept, and the same command with --resume merges them") from None
