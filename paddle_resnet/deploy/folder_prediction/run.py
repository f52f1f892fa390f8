"""One run over a folder: the output's lock, resume, shards per rank and their merge, the summary."""
import glob
import os
import re
import sys
import time
from dataclasses import dataclass

from ...errors import InputError, short_repr
from ...fileio import write_atomically
from ...locks import acquire_lock, lock_is_held
from .decoding import predict_stream
from .inputs import shard
from .records import OutputFile, RecordWriter, merge_records, path_keys, run_header

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
