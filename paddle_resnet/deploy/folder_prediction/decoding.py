"""Decoding batches of images in worker processes (shared memory, a pipe each), ahead of the model or in its
pauses, and the stream of predictions they feed."""
import contextlib
import itertools
import math
import mmap
import multiprocessing
import multiprocessing.connection
import signal
from collections import deque

import numpy as np

from ...cpu import available_cores, cores_per_process
from ...errors import InputError
from ..predictor import Prediction, skip_reason
from .inputs import chunks

# fork, as paddle.io.DataLoader's workers: a worker starts at once with the preprocessing already imported
# (forkserver and spawn import Paddle again in each, about 7 s on a busy 2-core machine). The runtime's
# threads are not copied; a worker only runs PIL and numpy, which do not use the locks those threads take.
START_METHOD = "fork"
BATCHES_AHEAD_PER_WORKER = 2  # decoded batches waiting for the model: enough to hide decode jitter, bounded


def decode_file(to_input, path, out):
    """Writes ``to_input(path)`` into ``out``; -> None, or why the file could not be read (``out`` left as it was)."""
    try:
        out[...] = to_input(path)
    except Exception as error:  # noqa: BLE001  whatever one file raises is that file's result
        return skip_reason(path, error)
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
    ~5 MB per batch of 8 at 224 through a pipe (an order of magnitude slower than an answer without the
    array). An anonymous MAP_SHARED mapping, so nothing is left to clean up after a kill."""

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
    ProcessPoolExecutor, whose two relay threads add to the time from asking for a batch to having it. A worker
    that dies is a RuntimeError here, never a hang; the workers hold no end of this process's pipes, so they
    exit when it dies, even by SIGKILL."""

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
    there are. Not ahead: each batch is decoded when the consumer asks for it (``should_decode_ahead`` says
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


def should_decode_ahead(predictor, workers, cores=None):
    """Whether decoding batches ahead while the model runs pays: when the model leaves the workers cores of
    their own (a GPU, or fewer CPU threads than ``cores``, by default this process's share). When its threads
    use every core, a worker that decodes meanwhile preempts one of them, and the other waits for it at the end
    of each parallel op, and the model's own rate falls. Each batch is then decoded in the pause between model
    calls, by all the workers: never slower in the side-by-side runs of benchmarks/bench_inference.py
    --jpeg-folder, faster in most (benchmarks/results/bench_inference.md)."""
    options = predictor.options
    if options.device == "gpu":
        return True
    return (options.cpu_threads or available_cores()) + workers <= (cores or cores_per_process())


def predict_stream(predictor, paths, *, top_k=5, batch_size=8, workers=0, ahead=None):
    """Predictions for ``paths``, one list per batch, in order; an unreadable file is a Prediction with
    its ``error`` set. Decoding runs in ``workers`` processes, ahead of the model or not (``decoded_batches``;
    None: as ``should_decode_ahead`` says)."""
    paths = iter(paths)
    first = list(itertools.islice(paths, batch_size + 1))
    if len(first) <= batch_size:
        workers = 0  # one batch: starting workers costs more than it saves
    ahead = should_decode_ahead(predictor, workers) if ahead is None else ahead
    for batch_paths, batch, errors in decoded_batches(itertools.chain(first, paths), batch_size, predictor.to_input,
                                                      workers, ahead):
        readable = [path for index, path in enumerate(batch_paths) if index not in errors]
        predicted = iter(predictor.predict_preprocessed(batch, readable, top_k) if readable else [])
        yield [Prediction(path, error=errors[index]) if index in errors else next(predicted)
               for index, path in enumerate(batch_paths)]
