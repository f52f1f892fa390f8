"""Logging on rank 0 (console + output_dir/train.log), a tqdm bar on terminals, and VisualDL scalars."""
import logging
import os
import sys
import time

import tqdm

LOGGER = logging.getLogger("paddle_resnet")


class _TqdmSafeHandler(logging.StreamHandler):
    """Writes through tqdm so log lines do not tear an active progress bar."""

    def emit(self, record):
        try:
            tqdm.tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001  (logging must never raise)
            self.handleError(record)


def setup_logging(output_dir=None, rank=0):
    for handler in LOGGER.handlers:  # a previous Engine's train.log stays open otherwise
        handler.close()
    LOGGER.handlers.clear()
    LOGGER.propagate = False
    # Rank 0: INFO on the console, DEBUG (e.g. the whole effective config) in train.log as well.
    LOGGER.setLevel(logging.DEBUG if rank == 0 and output_dir else logging.INFO if rank == 0 else logging.WARNING)
    fmt = logging.Formatter("[%(asctime)s] %(levelname)s %(message)s", "%H:%M:%S")
    console = _TqdmSafeHandler(sys.stdout)
    console.setLevel(logging.INFO)
    console.setFormatter(fmt)
    LOGGER.addHandler(console)
    if output_dir and rank == 0:
        os.makedirs(output_dir, exist_ok=True)
        file_handler = logging.FileHandler(os.path.join(output_dir, "train.log"))
        file_handler.setFormatter(fmt)
        LOGGER.addHandler(file_handler)
    return LOGGER


def progress_bar(total, desc, enabled):
    return tqdm.tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True,
                     disable=not (enabled and sys.stdout.isatty()))


def format_duration(seconds):
    """``0:04:05``, ``2 days 3:00:00`` (time.strftime would wrap at 24 hours)."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    prefix = f"{days} day{'s' if days > 1 else ''} " if days else ""
    return f"{prefix}{hours}:{minutes:02d}:{secs:02d}"


EVAL_LOG_SECONDS = 30.0  # a progress line this often during an eval (a tqdm bar as well on terminals)


def eval_progress(loader, enabled, log_seconds=None):
    """Yields the batches of ``loader``, showing progress: ``eval 12/40 batches, 0:00:31 so far, eta 0:01:12``
    every ``log_seconds`` (on rank 0), and a tqdm bar on terminals."""
    log_seconds = EVAL_LOG_SECONDS if log_seconds is None else log_seconds
    total = len(loader)
    bar = progress_bar(total, "eval", enabled)
    start = last_line = time.perf_counter()
    try:
        for done, batch in enumerate(loader, start=1):
            yield batch
            bar.update(1)
            now = time.perf_counter()
            if enabled and now - last_line >= log_seconds and done < total:
                last_line = now
                elapsed = now - start
                LOGGER.info(f"eval {done}/{total} batches, {format_duration(elapsed)} so far, "
                            f"eta {format_duration(elapsed / done * (total - done))}")
    finally:
        bar.close()


class ScalarWriter:
    """VisualDL LogWriter under output_dir/vdl on rank 0; a no-op elsewhere or when switched off."""

    def __init__(self, output_dir, enabled):
        self._writer = None
        if enabled:
            from visualdl import LogWriter  # heavy import, only when used
            self._writer = LogWriter(logdir=os.path.join(output_dir, "vdl"))

    def add(self, scalars, step):
        if self._writer is not None:
            for tag, value in scalars.items():
                self._writer.add_scalar(tag=tag, value=float(value), step=step)

    def close(self):
        if self._writer is not None:
            self._writer.close()
