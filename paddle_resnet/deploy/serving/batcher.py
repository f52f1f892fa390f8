"""Decoding in a process pool and the micro-batcher that gathers concurrent requests' images into one model call.

The event loop only moves bytes: each image is decoded by the export's preprocessing (``Predictor.to_input``)
in a forked worker, and every model call runs on one thread of its own, so a request that is being decoded
never holds up one that is being predicted, and neither holds up the loop."""
import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import stat
import threading
import time
from collections import deque
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from ...data.transforms import ImageTooLargeError
from ..folder_prediction.decoding import START_METHOD
from ..predictor import skip_reason

_to_input = None  # a decoding worker's Predictor.to_input, inherited through the fork


def _start_worker(to_input, parent):
    global _to_input
    _to_input = to_input
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle; it stops the pool
    _close_sockets()
    # A worker holds its own copies of the pool's pipes, so its server's death (even by SIGKILL) is no EOF here:
    # it watches for being handed to another parent instead.
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()


def _close_sockets():
    """Closes the server's sockets the fork copied (the pool's own pipes are not sockets). Kept open here, the
    listening socket would go on taking connections after SIGTERM, for no one to accept, and a client's socket
    that the server closed would never reach its client as closed."""
    with contextlib.suppress(OSError):  # no /proc: nothing to go by
        for name in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
                if stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                    os.close(int(name))


def _exit_when_orphaned(parent, poll_seconds=1.0):
    while os.getppid() == parent:
        time.sleep(poll_seconds)
    os._exit(0)


def _decode(data, name):
    """In a worker: -> (float32 CHW array, None, None) or (None, error kind, one-line reason naming ``name``)."""
    try:
        return _to_input(data), None, None
    except ImageTooLargeError as error:
        return None, "image_too_large", skip_reason(name, error)
    except Exception as error:  # noqa: BLE001  whatever one image raises is that image's answer
        return None, "unreadable_image", skip_reason(name, error)


class DecoderDied(RuntimeError):
    """A decoding worker died while it held this image (killed for lack of memory, or a crash in native code)."""


class DecodePool:
    """``workers`` forked processes that run ``to_input`` on image bytes. A pool whose worker died is replaced:
    the images it held fail with DecoderDied, later ones go to the new pool."""

    def __init__(self, to_input, workers):
        self._to_input, self._workers = to_input, workers
        self._executor = self._new_executor()

    def _new_executor(self):
        return concurrent.futures.ProcessPoolExecutor(
            self._workers, mp_context=multiprocessing.get_context(START_METHOD), initializer=_start_worker,
            initargs=(self._to_input, os.getpid()))

    async def decode(self, data, name):
        loop = asyncio.get_running_loop()
        executor = self._executor
        try:
            future = loop.run_in_executor(executor, _decode, data, name)
        except BrokenProcessPool:  # a worker died before this image came: it goes to a new pool
            executor = self._replace(executor)
            future = loop.run_in_executor(executor, _decode, data, name)
        try:
            return await future
        except BrokenProcessPool:
            self._replace(executor)
            raise DecoderDied(f"{name}: the decoding worker died while reading it") from None

    def _replace(self, broken):
        if broken is self._executor:
            broken.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()
        return self._executor

    async def warm_up(self, blank):
        """Starts every worker (all are forked at the first task) and checks one decodes ``blank``."""
        array, _, reason = await self.decode(blank, "warm-up image")
        if array is None:
            raise RuntimeError(f"the decoding workers cannot read a blank image: {reason}")

    def pids(self):
        return [process.pid for process in (self._executor._processes or {}).values()]

    def close(self):
        self._executor.shutdown(wait=True, cancel_futures=True)


class Turns:
    """Decoding and the model taking turns on the cores, when the model's threads and the decoding workers
    outnumber them: no decoding starts while the model runs or a batch waits for it, and the model starts once
    the decoding under way is done. Otherwise a worker preempts one of the model's threads, the other waits for
    it at the end of each parallel op, and both go slower than in turns (folder prediction's finding:
    ``folder_prediction.decoding.should_decode_ahead``). ``alternate`` False: both run whenever they can."""

    def __init__(self, alternate):
        self.alternate = alternate
        self._decoding, self._model = 0, False  # decodings under way; the model running or waiting to
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def decoding(self):
        if not self.alternate:
            yield
            return
        async with self._changed:
            await self._changed.wait_for(lambda: not self._model)
            self._decoding += 1
        try:
            yield
        finally:
            async with self._changed:
                self._decoding -= 1
                self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def model(self):
        if not self.alternate:
            yield
            return
        async with self._changed:
            self._model = True
            await self._changed.wait_for(lambda: self._decoding == 0)
        try:
            yield
        finally:
            async with self._changed:
                self._model = False
                self._changed.notify_all()


class _Entry:
    __slots__ = ("array", "name", "top_k", "future")

    def __init__(self, array, name, top_k, future):
        self.array, self.name, self.top_k, self.future = array, name, top_k, future


class MicroBatcher:
    """Gathers images from concurrent requests into batches of up to ``max_batch``, for as long as the next one
    comes within ``max_delay`` seconds, and predicts each batch on a thread of its own with
    ``predictor.predict_preprocessed``. The batch's top-k is the largest any of its images asked for; each image's
    answer is cut to its own (argsort is stable, so the cut equals predicting with that k). With ``turns``
    alternating, the images being decoded when a batch is due join it: a request queues each image before it
    ends its decoding turn. ``on_batch(size)``
    is told each batch's size."""

    def __init__(self, predictor, max_batch, max_delay, turns, on_batch=None):
        self.predictor, self.max_batch, self.max_delay, self._turns = predictor, max_batch, max_delay, turns
        self._on_batch = on_batch or (lambda size: None)
        self._waiting = deque()
        self._arrived = asyncio.Event()
        self._model_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="model")
        self._task = asyncio.get_running_loop().create_task(self._run_batches())

    def submit(self, array, name, top_k):
        """Queues one preprocessed image; -> a future of its Prediction."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(_Entry(array, name, top_k, future))
        self._arrived.set()
        return future

    async def run_model(self, batch):
        """``predictor.run`` on the model's thread (the warm-up's way in)."""
        return await asyncio.get_running_loop().run_in_executor(self._model_thread, self.predictor.run, batch)

    async def _run_batches(self):
        loop = asyncio.get_running_loop()
        while True:
            await self._wait_for_batch(loop)
            async with self._turns.model():  # the images being decoded now join this batch
                batch = [self._waiting.popleft() for _ in range(min(self.max_batch, len(self._waiting)))]
                batch = [entry for entry in batch if not entry.future.done()]  # a request that timed out meanwhile
                if batch:
                    await self._predict_batch(loop, batch)

    async def _predict_batch(self, loop, batch):
        self._on_batch(len(batch))
        try:
            predictions = await loop.run_in_executor(self._model_thread, self._predict, batch)
        except Exception as error:  # noqa: BLE001  every waiting request gets the runtime's error
            for entry in batch:
                if not entry.future.done():
                    entry.future.set_exception(error)
            return
        for entry, prediction in zip(batch, predictions):
            if not entry.future.done():
                for key in ("class_ids", "scores", "label_names"):
                    setattr(prediction, key, getattr(prediction, key)[:entry.top_k])
                entry.future.set_result(prediction)

    async def _wait_for_batch(self, loop):
        """Until ``max_batch`` images wait, or none came for ``max_delay``: images of concurrent requests reach
        the batcher a few milliseconds apart (their bodies, their decoding), so a batch keeps gathering while
        they come, and a lone request waits ``max_delay`` once."""
        while not self._waiting:
            self._arrived.clear()
            await self._arrived.wait()
        while len(self._waiting) < self.max_batch:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), self.max_delay)
            except asyncio.TimeoutError:
                break

    def _predict(self, batch):
        arrays = np.stack([entry.array for entry in batch])
        return self.predictor.predict_preprocessed(arrays, [entry.name for entry in batch],
                                                   top_k=max(entry.top_k for entry in batch))

    async def close(self):
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        for entry in self._waiting:
            entry.future.cancel()
        self._model_thread.shutdown(wait=True)
