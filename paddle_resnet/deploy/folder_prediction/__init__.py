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
* **One writer per output**: an ``flock`` (locks.py) on ``.<output>.lock``, which the kernel drops
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
from .decoding import decoded_batches, predict_stream, should_decode_ahead
from .inputs import InputFiles, walk_images, walk_order
from .run import FolderPrediction, start_together

__all__ = ["FolderPrediction", "InputFiles", "decoded_batches", "predict_stream", "should_decode_ahead",
           "start_together", "walk_images", "walk_order"]
