"""Predicting a large folder: a lazy walk, decoding in worker processes, JSON Lines written as it goes,
resume after a kill, and one shard per rank under ``paddle.distributed.launch``.

* **Order.** A folder is walked lazily, names sorted within each folder and sub-folders visited where their
  name falls, so every run and every rank sees the same sequence while holding one listing per level.
  Rank r of N takes the files at positions i with i % N == r: deterministic, balanced, and streaming.
* **Output.** A header line ``{"predict": {...}}`` that identifies the run (the model's fingerprint, top_k,
  backend, precision, device), then one JSON object per file and line: ``{"path", "class_ids", "scores",
  "label_names", "error"}`` (an unreadable file, or one the model gave non-finite scores, has its error and
  empty lists), appended, flushed and fsync'ed after every batch. Strict JSON: never NaN. ``path`` is as the
  walk spelled it; a name that is not valid UTF-8 has its undecodable bytes as ``\\xXX`` there and its exact
  bytes, base64, in ``path_bytes``.
* **Resume** skips the files already in the output, compared by their resolved folder (``dir``, ``./dir/`` and
  an absolute spelling are the same file; relative paths are resolved in the current folder, so resume from
  the folder the run started in: a run from another folder is refused). A last line a kill cut short (a
  prefix of a record) is dropped and its file predicted again, so each file is listed exactly once. A file
  whose lines are not this tool's records, or whose header names another model or other settings, is refused.
* **One writer per output**: an ``flock`` (engine/run_dir.py) on ``.<output>.lock``, which the kernel drops
  when the process dies; a second live run on the same output is refused, naming the first one's pid.
* **Several processes.** Each rank writes ``<stem>.rank<r><suffix>`` and, when finished, a completion marker
  ``.<stem>.rank<r><suffix>.done``; rank 0 waits for all markers and merges the rank files (and an output a
  single-process run began) into the output, in walk order. Markers rather than paddle.distributed.barrier
  for the end: Paddle 3.3's gloo barrier on the CPU gives up after about 30 s (measured here: gloo's
  ``unbound_buffer.cc:80 TIMEOUT`` when one rank reached it 700 s after the other), while ranks of a long
  prediction can finish minutes apart. One gloo barrier is used at the start, where ranks arrive within
  seconds: it ensures every rank holds its lock and has removed its old marker before rank 0 looks for
  markers. While waiting, rank 0 checks each rank's lock, so a rank that died is an error, never a hang.
"""
import base64
import binascii
import contextlib
import functools
import glob
import heapq
import itertools
import json
import logging
import math
import mmap
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..cpu import available_cores, cores_per_process
from ..data.datasets import is_image_file
from ..locks import acquire_lock, lock_is_held
from ..errors import InputError, OutputError, short_repr
from ..fileio import open_regular_file, write_atomically
from .predictor import Prediction, _skip_reason, path_bytes, printable

logger = logging.getLogger(__name__)

# fork, as paddle.io.DataLoader's workers: a worker starts at once with the preprocessing already imported
# (forkserver and spawn import Paddle again in each, about 7 s on a busy 2-core machine). The runtime's
# threads are not copied; a worker only runs PIL and numpy, which do not use the locks those threads take.
START_METHOD = "fork"
BATCHES_AHEAD_PER_WORKER = 2  # decoded batches waiting for the model: enough to hide decode jitter, bounded


# ---- inputs -------------------------------------------------------------------------------------------------

def walk_images(root):
    """Image files under ``root``, recursively and lazily, names sorted within each folder. A name with an
    image extension is taken even if it cannot be opened (a broken link), so that its error is reported."""
    try:
        with os.scandir(root) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as error:
        logger.warning("skipping the folder %s: %s", root, error.strerror)
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from walk_images(entry.path)
        elif is_image_file(entry.name) and not _links_to_folder(entry):
            yield entry.path  # a FIFO or device too: its record says why it is not read


def _links_to_folder(entry):
    try:
        return entry.is_dir()
    except OSError:  # a symlink loop: reported as the file's error
        return False


class InputFiles:
    """The files ``--input`` names, in one fixed order, iterable any number of times: a file (whatever its
    name), the image files under a folder (walked lazily), or the image files a glob matches (sorted)."""

    def __init__(self, pattern):
        self.pattern = os.fspath(pattern)

    def __iter__(self):
        if os.path.isfile(self.pattern):
            return iter([self.pattern])
        if os.path.isdir(self.pattern):
            return walk_images(self.pattern)
        return (path for path in sorted(glob.glob(self.pattern, recursive=True))
                if os.path.isfile(path) and is_image_file(path))

    def is_empty(self):
        return next(iter(self), None) is None


def walk_order(path):
    """Sort key that gives the order of ``walk_images`` (names compared folder level by folder level)."""
    return path.split(os.sep)


def shard(paths, rank, world_size):
    return itertools.islice(paths, rank, None, world_size)


def chunks(items, size):
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


# ---- decoding in worker processes ---------------------------------------------------------------------------

def decode_file(to_input, path, out):
    """Writes ``to_input(path)`` into ``out``; -> None, or why the file could not be read (``out`` left as it was)."""
    try:
        out[...] = to_input(path)
    except Exception as error:  # noqa: BLE001  whatever one file raises is that file's result
        return _skip_reason(path, error)
    return None


def decode_into(to_input, paths, out):
    """Writes ``to_input(path)`` into the rows of ``out``, one per path; -> {position in paths: error} for the
    files that could not be read (their rows are left as they were)."""
    errors = {index: decode_file(to_input, path, out[index]) for index, path in enumerate(paths)}
    return {index: error for index, error in errors.items() if error is not None}


def readable_rows(batch, errors):
    """``batch`` without the rows of ``errors`` (None if no row is left)."""
    if not errors:
        return batch
    keep = [index for index in range(len(batch)) if index not in errors]
    return batch[keep] if keep else None


def decode_batch(to_input, paths):
    """-> (float32 NCHW batch of the files that could be read, or None; {position in paths: error})."""
    batch = np.empty((len(paths), *to_input.image_shape), np.float32)
    errors = decode_into(to_input, paths, batch)
    return readable_rows(batch, errors), errors


class SharedSlots:
    """``count`` float32 buffers of ``batch_size`` images each, in memory that worker processes forked after
    this share: a worker decodes into a slot's rows and answers with the errors alone, instead of pickling
    ~5 MB per batch of 8 at 224 through a pipe (measured here: 17 ms per batch, against 1.4 ms for an answer
    without the array). An anonymous MAP_SHARED mapping, so nothing is left to clean up after a kill."""

    def __init__(self, count, batch_size, image_shape):
        self.shape = (count, batch_size, *image_shape)
        size = math.prod(self.shape) * 4
        try:
            self._memory = mmap.mmap(-1, size)
        except OSError as error:  # the kernel refuses at once what it could never provide (ENOMEM)
            raise InputError(f"batch size {batch_size}: {count} batches of {list(image_shape)} float32 images need "
                             f"{size / 2 ** 30:.1f} GiB of memory, which the system refuses ({error.strerror}); "
                             f"use a smaller batch size") from None
        self._arrays = np.frombuffer(self._memory, np.float32).reshape(self.shape)

    def __len__(self):
        return self.shape[0]

    def rows(self, slot, start, count):
        return self._arrays[slot, start:start + count]


class DecodingWorkers:
    """``count`` forked processes that decode batches into ``slots``. Every worker is handed every batch and
    takes its files one at a time (a shared count per slot), so one large photo does not leave the others
    idle; each answers a batch with the errors of the files it took. A pipe per worker rather than a
    ProcessPoolExecutor, whose two relay threads cost ~4 ms more per batch of 8 here (41.5 against 37.8 ms
    from asking for a batch to having it, 2 workers). A worker that dies is a RuntimeError here, never a
    hang; the workers hold no end of this process's pipes, so they exit when it dies, even by SIGKILL."""

    def __init__(self, count, to_input, slots):
        context = multiprocessing.get_context(START_METHOD)
        self._taken = context.Array("q", len(slots))  # per slot: files taken by workers so far (with a lock)
        self._pipes, self._processes = [], []
        try:
            for _ in range(count):
                ours, theirs = context.Pipe()
                process = context.Process(target=_decode_loop, name="decoding worker", daemon=True,
                                          args=(theirs, [*self._pipes, ours], to_input, slots, self._taken))
                process.start()
                theirs.close()
                self._pipes.append(ours)
                self._processes.append(process)
        except BaseException:
            self.close(cancel=True)
            raise

    def submit(self, slot, paths):
        with self._taken.get_lock():
            self._taken[slot] = 0
        for pipe in self._pipes:
            try:
                pipe.send((slot, paths))
            except OSError:  # EPIPE: the worker is gone
                raise _worker_died() from None

    def errors(self):
        """{row: error} of the oldest batch submitted and not yet answered, once every worker answered it."""
        errors = {}
        for pipe, process in zip(self._pipes, self._processes):
            # An answer sent just before a worker died is still read; the sentinel alone means it died.
            if pipe not in multiprocessing.connection.wait([pipe, process.sentinel]):
                raise _worker_died()
            try:
                errors.update(pipe.recv())
            except EOFError:  # its end closed as it died
                raise _worker_died() from None
        return errors

    def close(self, cancel=False):
        """Stops the workers: at once with ``cancel``, else once they finished what they were handed."""
        for pipe, process in zip(self._pipes, self._processes):
            if cancel:
                process.terminate()
            else:
                with contextlib.suppress(OSError):
                    pipe.send(None)
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        for pipe in self._pipes:
            pipe.close()


def _worker_died():
    return RuntimeError("a decoding worker process died (killed for lack of memory, or a crash in native code); "
                        "try fewer --workers, or --workers 0 to decode in the main process")


def _decode_loop(pipe, inherited, to_input, slots, taken):
    """A decoding worker: (slot, paths) from ``pipe`` until None or the main process is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle; it stops the workers
    for end in inherited:  # the main process's ends, copied by the fork: with them open, its death is no EOF
        end.close()
    try:
        while (task := pipe.recv()) is not None:
            slot, paths = task
            errors = {}
            while (row := _take(taken, slot)) < len(paths):
                if (error := decode_file(to_input, paths[row], slots.rows(slot, row, 1)[0])) is not None:
                    errors[row] = error
            pipe.send(errors)
    except EOFError:
        pass


def _take(taken, slot):
    with taken.get_lock():
        row = taken[slot]
        taken[slot] = row + 1
    return row


def decoded_batches(paths, batch_size, to_input, workers, ahead=True):
    """Yields ``(paths, batch, errors)`` for each ``batch_size`` of ``paths``, in order, made by ``to_input`` (a
    Predictor's InputTransform) in ``workers`` processes (0: this one). ``ahead``: the workers decode up to
    BATCHES_AHEAD_PER_WORKER batches each while the consumer works, so memory stays flat however many files
    there are. Not ahead: each batch is decoded when the consumer asks for it (``decoding_overlaps`` says
    which pays). With workers, ``batch`` is a view of shared memory that the workers overwrite once the
    consumer asks for a later batch. A worker that dies is a RuntimeError here, not a hang."""
    if workers == 0:
        for batch_paths in chunks(paths, batch_size):
            yield (batch_paths, *decode_batch(to_input, batch_paths))
        return
    in_flight = BATCHES_AHEAD_PER_WORKER * workers if ahead else 0
    # The batch last yielded stays untouched until the consumer asks again: one slot more than in flight.
    slots = SharedSlots(in_flight + 1, batch_size, to_input.image_shape)
    pool = DecodingWorkers(workers, to_input, slots)
    try:
        pending = deque()
        for number, batch_paths in enumerate(chunks(paths, batch_size)):
            slot = number % len(slots)
            pool.submit(slot, batch_paths)
            pending.append((batch_paths, slots.rows(slot, 0, len(batch_paths))))
            if len(pending) > in_flight:
                yield _joined(pool, *pending.popleft())
        while pending:
            yield _joined(pool, *pending.popleft())
    except BaseException:
        pool.close(cancel=True)
        raise
    pool.close()


def _joined(pool, paths, batch):
    errors = pool.errors()
    return paths, readable_rows(batch, errors), errors


def decoding_overlaps(predictor, workers):
    """Whether decoding batches ahead while the model runs pays: when the model leaves the workers cores of
    their own (a GPU, or fewer CPU threads than this process's cores). When its threads use every core, a
    worker that decodes meanwhile preempts one of them, and the other waits for it at the end of each
    parallel op (measured here: the model's own rate fell from ~19 to ~15 images/s for 6.5 ms of decoding
    per image). Each batch is then decoded in the pause between model calls, by all the workers: never
    slower in the side-by-side runs of benchmarks/bench_inference.py --jpeg-folder, faster in most (README)."""
    options = predictor.options
    if options.device == "gpu":
        return True
    return (options.cpu_threads or available_cores()) + workers <= cores_per_process()


def predict_stream(predictor, paths, *, top_k=5, batch_size=8, workers=0, ahead=None):
    """Predictions for ``paths``, one list per batch, in order; an unreadable file is a Prediction with
    its ``error`` set. Decoding runs in ``workers`` processes, ahead of the model or not (``decoded_batches``;
    None: as ``decoding_overlaps`` says)."""
    paths = iter(paths)
    first = list(itertools.islice(paths, batch_size + 1))
    if len(first) <= batch_size:
        workers = 0  # one batch: starting workers costs more than it saves
    ahead = decoding_overlaps(predictor, workers) if ahead is None else ahead
    for batch_paths, batch, errors in decoded_batches(itertools.chain(first, paths), batch_size, predictor.to_input,
                                                      workers, ahead):
        readable = [path for index, path in enumerate(batch_paths) if index not in errors]
        predicted = iter(predictor.predict_preprocessed(batch, readable, top_k) if readable else [])
        yield [Prediction(path, error=errors[index]) if index in errors else next(predicted)
               for index, path in enumerate(batch_paths)]


# ---- the output file ----------------------------------------------------------------------------------------

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


# ---- one run over a folder ----------------------------------------------------------------------------------

def _beside(path, name_format):
    folder, name = os.path.split(path)
    return os.path.join(folder, name_format.format(name))


def rank_file(output, rank):
    stem, suffix = os.path.splitext(output)
    return f"{stem}.rank{rank}{suffix}"


@dataclass
class Summary:
    predicted: int = 0
    unreadable: int = 0
    already_done: int = 0


class FolderPrediction:
    """Predicting ``inputs`` into the JSON Lines file ``output`` as rank ``rank`` of ``world_size``.

    Construction takes the output's lock and checks it, before any model is loaded: an existing output
    without ``resume`` is refused, as is an output another live run writes. Then ``run`` and ``finish``.
    """

    def __init__(self, inputs, output, *, resume=False, rank=0, world_size=1):
        self.inputs, self.output, self.rank, self.world_size = inputs, os.fspath(output), rank, world_size
        self.sharded = world_size > 1 or bool(self._rank_files())
        self.target = rank_file(self.output, rank) if world_size > 1 else self.output
        self._locks = []
        try:
            self._lock_and_check(resume)
        except BaseException:
            self.close()
            raise
        self.key, self.header = path_keys(), None
        # Every file any run recorded, whatever its rank or process count then: none is predicted twice.
        self.existing = {path: OutputFile.read(path, self.key) for path in [self.output, *self._rank_paths()]
                         if resume}
        self.done = set().union(*(found.keys for found in self.existing.values()))

    def _rank_paths(self):
        return [path for _, path in self._rank_files()]

    def _rank_files(self):
        """[(rank, path)] of the rank files of ``output`` that exist, by rank."""
        stem, suffix = os.path.splitext(self.output)
        pattern = re.compile(re.escape(os.path.basename(stem)) + r"\.rank(\d+)" + re.escape(suffix) + "$")
        return sorted((int(m.group(1)), path) for path in glob.glob(glob.escape(stem) + ".rank*" + glob.escape(suffix))
                      if (m := pattern.match(os.path.basename(path))))

    def _lock(self, path):
        self._locks.append(acquire_lock(_beside(path, ".{}.lock"), lambda holder: InputError(
            f"--output {self.output} is being written by a live predict.py run ({holder}); wait for it to "
            f"finish or choose another --output")))

    def _lock_and_check(self, resume):
        folder = os.path.dirname(os.path.abspath(self.output))
        if not os.path.isdir(folder):
            raise InputError(f"--output {short_repr(self.output)}: the folder does not exist")
        if self.rank == 0:
            self._lock(self.output)
        if self.target != self.output:
            self._lock(self.target)
            if os.path.exists(self._marker(self.rank)):
                os.remove(self._marker(self.rank))
        if resume:
            return
        # Only files no other rank of this run may be creating right now: each rank checks its own.
        existing = [self.output, self.target]
        if self.rank == 0:  # and the rank files no rank of this run writes (rank 0's own, without launch)
            existing += [path for rank, path in self._rank_files() if rank == 0 or rank >= self.world_size]
        for path in existing:
            if os.path.exists(path):
                named = f"--output {self.output}" + (f": {path}" if path != self.output else "")
                raise InputError(f"{named} already exists; add --resume to skip the files it lists, or choose "
                                 f"another --output")

    def _marker(self, rank):
        return _beside(rank_file(self.output, rank), ".{}.done")

    def todo(self):
        return (path for path in shard(iter(self.inputs), self.rank, self.world_size)
                if self.key(path) not in self.done)

    def run(self, predictor, *, top_k=5, batch_size=8, workers=0, progress=True, decode_ahead=None):
        """Predicts this rank's files not yet recorded; -> Summary. ``decode_ahead``: see ``predict_stream``.
        InputError if the output was begun by another model or with other settings."""
        import tqdm

        self.header = run_header(predictor, top_k)
        for found in self.existing.values():
            found.check_run(self.header)
        summary, total = Summary(), 0
        for path in shard(iter(self.inputs), self.rank, self.world_size):  # one walk for both counts
            if self.key(path) in self.done:
                summary.already_done += 1
            else:
                total += 1
        writer = RecordWriter(self.target, self.header,
                              self.existing[self.target].whole if self.target in self.existing else 0)
        description = f"rank {self.rank}" if self.world_size > 1 else "predict"
        # On a terminal the bar redraws in place; in a log file (launch's workerlog) one line every 30 s.
        bar = tqdm.tqdm(total=total, unit="img", desc=description, disable=not progress or not total,
                        dynamic_ncols=True, mininterval=0.5 if sys.stderr.isatty() else 30)
        try:
            for predictions in predict_stream(predictor, self.todo(), top_k=top_k, batch_size=batch_size,
                                              workers=workers, ahead=decode_ahead):
                writer.write(predictions)
                unreadable = sum(p.skipped for p in predictions)
                summary.unreadable += unreadable
                summary.predicted += len(predictions) - unreadable
                bar.update(len(predictions))
        finally:
            bar.close()
            writer.close()
        return summary

    def finish(self, poll_seconds=0.5):
        """After ``run``: a rank > 0 marks its file complete; rank 0 waits for the others and merges."""
        if self.rank != 0:
            write_atomically(self._marker(self.rank), lambda tmp: open(tmp, "w").close())
            return
        if not self.sharded:
            return
        for rank in range(1, self.world_size):
            self._wait_for(rank, poll_seconds)
        sources = [self.output, *self._rank_paths()] if os.path.exists(self.output) else self._rank_paths()
        merge_records(sources, self.output, self.header)
        for rank in range(1, self.world_size):
            os.remove(self._marker(rank))

    def _wait_for(self, rank, poll_seconds):
        marker, lock = self._marker(rank), _beside(rank_file(self.output, rank), ".{}.lock")
        while not os.path.exists(marker):
            # A rank writes its marker before it lets go of its lock: a free lock and no marker is a dead rank.
            if not lock_is_held(lock) and not os.path.exists(marker):
                raise RuntimeError(f"rank {rank} stopped before finishing {rank_file(self.output, rank)} (see its "
                                   f"log); run the same command with --resume to complete {self.output}")
            time.sleep(poll_seconds)

    def close(self):
        for handle in self._locks:
            handle.close()
        self._locks = []


def start_together():
    """The start barrier of a multi-process run (see the module docstring)."""
    import paddle.distributed as dist

    dist.init_parallel_env()
    dist.barrier()
