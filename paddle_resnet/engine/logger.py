"""Logging on rank 0 (console + output_dir/train.log), a tqdm bar on terminals, and VisualDL scalars."""
import logging
import os
import sys

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
    LOGGER.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    fmt = logging.Formatter("[%(asctime)s] %(levelname)s %(message)s", "%H:%M:%S")
    console = _TqdmSafeHandler(sys.stdout)
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
