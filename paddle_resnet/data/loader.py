"""Build a data loader from a PaddleClas ``DataLoader.Train`` / ``DataLoader.Eval`` config section.

Iterating a ``Loader`` yields ``(images, labels, n_skipped)``:

* ``images``: paddle.Tensor float32 [N, C, H, W];
* ``labels``: paddle.Tensor int64 [N], or with a mixing batch op (``batch_transform_ops: [MixupOperator: ...]``,
  CutmixOperator, FmixOperator, OpSampler) a ``MixupLabels(labels_a, labels_b, lam)`` named tuple (two int64
  tensors [N] and a float): PaddleClas's soft target ``lam * one_hot(labels_a) + (1 - lam) * one_hot(labels_b)``,
  scored as engine/losses.py says;
* ``n_skipped``: int, samples of this batch (plus any earlier batch of only unreadable files, which is
  not yielded) that were dropped as unreadable, so N may be smaller than batch_size.
  ``loader.skipped_total`` counts them for the current epoch.

Call ``loader.set_epoch(epoch)`` before each epoch: the sample order (seeded by ``(seed, epoch)``) and the
augmentation (seeded by ``[seed, epoch, index]``) follow from it, identical for any ``num_workers``.
Without it, each full pass moves on to the next epoch by itself.

``loader: {use_shared_memory: true}`` passes worker batches through /dev/shm. In containers with a
small /dev/shm (Docker's default is 64 MB) the workers die with "Bus error"; set ``use_shared_memory:
false`` (or give the container ``--shm-size``), or ``num_workers: 0``. Workers are started anew for every
epoch (no persistent workers), so they always see the current epoch.

A sample that fails (e.g. ``CropImage`` larger than the image) raises the same ``InputError`` naming the
file and the op with any ``num_workers``: workers return it as data (``SampleError``) instead of raising,
since an exception in a Paddle 3.3 worker can hang the loader, and ``Loader`` raises it in the main
process. With ``num_workers: 0`` batches are loaded in the calling thread, not through paddle.io.DataLoader.

Workers end with the process that started them, even when it is SIGKILLed (Linux: ``PR_SET_PDEATHSIG``):
an orphaned worker would keep the output folder's lock (an inherited file descriptor) and its memory.
A pass can resume where an interrupted one stopped: ``position()`` of the interrupted pass, given to
``resume_at`` before the next, skips the batches already seen (the same seeded order) without loading them.
"""
import ctypes
import functools
import os
import signal

import numpy as np
import paddle

from ..errors import ConfigError, InputError, MissingFileError, check_choice, is_int, short_repr
from .datasets import (DEFAULT_TRANSFORM_OPS, FileList, ImageFolder, ImageNetDataset, SampleError,
                       collate_valid_samples)
from ..checks import MAX_WORKERS, check_int, instantiate
from .batch_ops import MixupLabels
from .pipeline import build_batch_transform, build_transforms

__all__ = ["build_dataloader", "build_dataset", "check_data_paths", "ClassBalancedSampler", "Loader",
           "SeededBatchSampler"]

# "ImageNetDataset" is PaddleClas's name for the file-list dataset (with its relabel option).
DATASETS = {"FileList": FileList, "ImageNetDataset": ImageNetDataset, "ImageFolder": ImageFolder}
SAMPLERS = ("DistributedBatchSampler", "BatchSampler", "ClassBalancedSampler")
LOADER_OPTIONS = {"num_workers": 0, "use_shared_memory": True}
_MODES = {"train": "Train", "eval": "Eval"}
# Paddle 3.3 waits this long for a batch before checking that its workers are alive, so a worker that
# died (e.g. killed for lack of memory) ends the epoch in an error instead of a hang. It does not limit
# how long a slow batch may take.
_WORKER_CHECK_SECONDS = 5
# Random streams of the sampler and the batch ops. A spawn key keeps them apart from the per-sample
# streams [seed, epoch, index]: SeedSequence pads short entropy with zeros, so [s, e] would equal [s, e, 0].
_ORDER_STREAM, _BATCH_OPS_STREAM = 1, 2
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _end_with_parent(parent_pid, worker_id):
    """``worker_init_fn``: the kernel SIGKILLs this worker when its parent dies (Linux; elsewhere a no-op)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the trainer's handler, inherited by fork
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # no prctl: not Linux
        return
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _epoch_rng(seed, epoch, stream):
    return np.random.default_rng(np.random.SeedSequence([seed, epoch], spawn_key=(stream,)))


def _mode_name(mode):
    return _MODES[check_choice("mode", str(mode).lower(), list(_MODES))]


class SeededBatchSampler(paddle.io.DistributedBatchSampler):
    """DistributedBatchSampler whose shuffle is seeded by ``(seed, epoch)`` (Paddle's uses the epoch only).

    Each rank takes every ``num_replicas``-th index of the shuffled order. For training the order is
    padded by repeating its start so all ranks get the same number of samples (as Paddle does); with
    ``pad=False`` (evaluation) every sample is seen exactly once and ranks may differ by one sample.
    An epoch's order is fixed by ``set_epoch``; iterating does not advance it.
    """

    def __init__(self, dataset, batch_size, num_replicas=1, rank=0, shuffle=False, drop_last=False, seed=0,
                 pad=True):
        super().__init__(dataset, batch_size, num_replicas=num_replicas, rank=rank, shuffle=shuffle,
                         drop_last=drop_last)
        if int(seed) < 0:
            raise ConfigError(f"seed must be >= 0, got {seed}")
        self.seed, self.pad = int(seed), pad
        self.skip = 0  # batches the next pass leaves out (a resumed pass)

    def _local_indices(self):
        n = len(self.dataset)
        order = _epoch_rng(self.seed, self.epoch, _ORDER_STREAM).permutation(n) if self.shuffle else np.arange(n)
        if self.pad:
            order = np.resize(order, self.total_size)
        return order[self.local_rank::self.nranks].tolist()

    def __len__(self):
        if self.pad:
            return super().__len__()
        count = len(range(self.local_rank, len(self.dataset), self.nranks))
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    def __iter__(self):
        local = self._local_indices()
        skip, self.skip = self.skip, 0
        for start in range(skip * self.batch_size, len(local), self.batch_size):
            batch = local[start:start + self.batch_size]
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch


class ClassBalancedSampler(SeededBatchSampler):
    """Draws each epoch's images at random, with replacement, an image of a class of ``n_c`` images with
    probability proportional to ``n_c ** -power``: ``power: 0`` is the data's own class frequencies, ``1``
    every class equally often (``0.5``, square-root sampling, lies between). An epoch has as many draws as
    the data set has images. The draw is seeded by ``(seed, epoch)`` and made whole on every rank, which takes
    every ``num_replicas``-th of it; a resumed pass skips its first batches like SeededBatchSampler's."""

    def __init__(self, dataset, batch_size, num_replicas=1, rank=0, shuffle=True, drop_last=False, seed=0,
                 pad=True, power=1.0):
        super().__init__(dataset, batch_size, num_replicas, rank, shuffle, drop_last, seed, pad)
        labels = np.asarray(dataset.labels, dtype=np.int64)
        weights = np.bincount(labels).astype(np.float64)[labels] ** -float(power)
        self.power, self.probabilities = float(power), weights / weights.sum()

    def _local_indices(self):
        rng = _epoch_rng(self.seed, self.epoch, _ORDER_STREAM)
        order = rng.choice(len(self.dataset), size=self.total_size, p=self.probabilities)
        return order[self.local_rank::self.nranks].tolist()


class SampleIndices:
    """A dataset whose items carry their index in place of their label: a loader over it yields the indices of
    the images each batch holds (unreadable ones left out), so that a per-image result names its image."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getattr__(self, name):  # samples, labels, class_names, set_epoch: the wrapped data set's
        return getattr(self.__dict__["dataset"], name)

    def __getitem__(self, index):
        sample = self.dataset[index]
        if sample is None or isinstance(sample, SampleError):
            return sample
        return sample[0], np.int64(index)


class Loader:
    """Iterable of ``(images, labels, n_skipped)`` batches over one rank's share of a dataset."""

    def __init__(self, dataset, batch_sampler, batch_transform=None, seed=0, num_workers=0, use_shared_memory=True):
        self.dataset, self.batch_sampler = dataset, batch_sampler
        self.batch_transform, self.seed = batch_transform, seed
        self.epoch, self.skipped_total = 0, 0
        self._dataloader = None
        self._start, self._batches, self._batch_rng = None, 0, None
        if num_workers > 0:
            self._dataloader = paddle.io.DataLoader(dataset, batch_sampler=batch_sampler, num_workers=num_workers,
                                                    collate_fn=collate_valid_samples,
                                                    use_shared_memory=use_shared_memory,
                                                    timeout=_WORKER_CHECK_SECONDS,
                                                    worker_init_fn=functools.partial(_end_with_parent, os.getpid()))

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def position(self):
        """Where the current pass is, as plain values: sampler batches consumed and the batch ops' RNG state."""
        return {"batches": self._batches, "batch_rng": self._batch_rng.bit_generator.state}

    def resume_at(self, position, where):
        """Starts the next pass at ``position`` (``position()`` of an interrupted pass of the same epoch); a
        position that is not one is an InputError naming ``where``."""
        batches, state = (position or {}).get("batches"), (position or {}).get("batch_rng")
        if not (is_int(batches) and 0 <= batches <= len(self)):
            raise InputError(f"{where}: partial.loader.batches must be an integer from 0 to {len(self)}, "
                             f"got {short_repr(batches)}")
        try:
            np.random.default_rng().bit_generator.state = state
        except (TypeError, ValueError, KeyError, OverflowError):
            raise InputError(f"{where}: partial.loader.batch_rng is not a PCG64 state (got {short_repr(state)})") from None
        self._start = (batches, state)

    def __len__(self):
        return len(self.batch_sampler)

    def __iter__(self):
        epoch = self.epoch
        # Set before iter(): that is when the workers start, each with its own copy of the dataset.
        self.batch_sampler.set_epoch(epoch)
        self.dataset.set_epoch(epoch)
        batch_rng = self._batch_rng = _epoch_rng(self.seed, epoch, _BATCH_OPS_STREAM)
        (self._batches, rng_state), self._start = self._start or (0, None), None
        if rng_state is not None:
            batch_rng.bit_generator.state = rng_state
        self.batch_sampler.skip = self._batches
        self.skipped_total = pending_skipped = yielded = 0
        for images, labels, n_skipped in self._collated_batches():
            self._batches += 1
            self.skipped_total += n_skipped
            pending_skipped += n_skipped
            if images is None:  # every sample of the batch was unreadable
                continue
            if self.batch_transform is not None:
                mixed, targets = self.batch_transform(images.numpy(), labels.numpy(), batch_rng)
                images = paddle.to_tensor(mixed)
                if isinstance(targets, MixupLabels):  # else OpSampler chose no op: the labels as they were
                    labels = targets._replace(labels_a=paddle.to_tensor(targets.labels_a),
                                              labels_b=paddle.to_tensor(targets.labels_b))
            yield images, labels, pending_skipped
            pending_skipped, yielded = 0, yielded + 1
        if yielded == 0 and self.skipped_total > 0:
            raise InputError(f"all {self.skipped_total} samples of this epoch were unreadable; "
                             f"see the warnings above for their paths")
        self.epoch = epoch + 1

    def _collated_batches(self):
        """-> (images Tensor or None, labels Tensor or None, n_skipped int) per sampler batch; raises the
        error of a sample that failed."""
        if self._dataloader is not None:
            yield from self._worker_batches()
            return
        for indices in self.batch_sampler:
            images, labels, n_skipped, error = collate_valid_samples([self.dataset[i] for i in indices])
            if error is not None:
                raise SampleError.from_array(error).exception()
            if images is not None:
                images, labels = paddle.to_tensor(images), paddle.to_tensor(labels)
            yield images, labels, int(n_skipped[0])

    def _worker_batches(self):
        # Paddle's SIGCHLD handler raises SystemError in whatever Python line runs when a worker dies (seen:
        # iter(), next(), n_skipped.numpy()), in words that depend on which of its threads notices first.
        try:
            yield from self._worker_batches_unguarded()
        except SystemError as died:
            raise RuntimeError(f"a DataLoader worker process died ({str(died).splitlines()[0]}): killed for "
                               "lack of memory, or a crash in native code. Try fewer loader.num_workers, "
                               "loader.use_shared_memory: false, or num_workers: 0") from died

    def _worker_batches_unguarded(self):
        batches = iter(self._dataloader)
        try:
            for images, labels, n_skipped, error in batches:
                if error is not None:
                    raise SampleError.from_array(error.numpy()).exception()
                yield images, labels, int(n_skipped.numpy()[0])
        finally:
            # An epoch left early (a stop signal, an error): end the workers now, as Paddle's iterator does when
            # it is collected. Paddle keeps a reference until exit, where multiprocessing would terminate them
            # and Paddle's SIGCHLD handler then print a "DataLoader process killed" traceback.
            batches._try_shutdown_all()


def build_dataset(dataset_config, mode="Train", *, seed=0, class_num=None):
    """The ``dataset`` dict of a DataLoader section -> ImageFolder or FileList."""
    config = dict(dataset_config or {})
    config.pop("batch_transform_ops", None)
    name = config.pop("name", None)
    where = f"DataLoader.{_mode_name(mode)}.dataset"
    check_choice(f"{where}.name", name, list(DATASETS))
    ops = config.get("transform_ops")
    config["transform_ops"] = build_transforms(ops if ops is not None else DEFAULT_TRANSFORM_OPS,
                                               where=f"{where}.transform_ops", chw=True)
    config["seed"] = seed
    if class_num is not None:
        config["class_num"] = class_num
    return instantiate(DATASETS[name], config, f"{where} ({name})", hidden=("seed", "class_num"))


def _world(distributed):
    if distributed is False:
        return 1, 0
    return paddle.distributed.get_world_size(), paddle.distributed.get_rank()


def build_dataloader(section, mode, *, seed=0, class_num=None, distributed=None, sample_indices=False):
    """``DataLoader.Train`` or ``DataLoader.Eval`` dict -> Loader.

    ``class_num`` bounds FileList labels and must match ImageFolder's class count. ``distributed``:
    None/True shard by ``paddle.distributed`` rank and world size (1 and 0 in a plain process),
    False reads the whole dataset. ``sampler.name: BatchSampler`` never shards. ``sample_indices``: batches
    carry each image's index in the data set instead of its label (``SampleIndices``).
    """
    mode_name = _mode_name(mode)
    dataset_config = dict(section.get("dataset") or {})
    batch_ops = dataset_config.get("batch_transform_ops")
    if batch_ops and mode_name != "Train":
        raise ConfigError(f"DataLoader.{mode_name}.dataset.batch_transform_ops: batch ops are for training only")
    dataset = build_dataset(dataset_config, mode_name, seed=seed, class_num=class_num)
    if sample_indices:
        dataset = SampleIndices(dataset)

    sampler_config = dict(section.get("sampler") or {})
    sampler_name = sampler_config.pop("name", "DistributedBatchSampler")
    check_choice(f"DataLoader.{mode_name}.sampler.name", sampler_name, list(SAMPLERS))
    world_size, rank = _world(False if sampler_name == "BatchSampler" else distributed)
    sampler_class = ClassBalancedSampler if sampler_name == "ClassBalancedSampler" else SeededBatchSampler
    sampler = instantiate(sampler_class, dict(sampler_config, dataset=dataset, num_replicas=world_size,
                                                   rank=rank, seed=seed, pad=mode_name == "Train"),
                          f"DataLoader.{mode_name}.sampler", hidden=("dataset", "num_replicas", "rank", "seed", "pad"))

    loader_config = dict(section.get("loader") or {})
    for key in loader_config:
        check_choice(f"DataLoader.{mode_name}.loader: option", key, list(LOADER_OPTIONS))
    options = dict(LOADER_OPTIONS, **loader_config)
    num_workers = options["num_workers"]
    check_int(f"DataLoader.{mode_name}.loader.num_workers", num_workers, 0, MAX_WORKERS)
    batch_transform = build_batch_transform(batch_ops, where=f"DataLoader.{mode_name}.dataset.batch_transform_ops")
    return Loader(dataset, sampler, batch_transform, seed, num_workers=num_workers,
                  use_shared_memory=bool(options["use_shared_memory"]))


def check_data_paths(section, mode):
    """Raise MissingFileError naming the configured data paths that do not exist."""
    mode_name = _mode_name(mode)
    dataset = (section or {}).get("dataset") or {}
    keys = ["image_root"] if dataset.get("name") == "ImageFolder" else ["image_root", "cls_label_path"]
    problems = []
    for key in keys:
        path = dataset.get(key)
        if not path:
            problems.append(f"DataLoader.{mode_name}.dataset.{key} is not set")
        elif not os.path.exists(path):
            problems.append(f"DataLoader.{mode_name}.dataset.{key} {os.fspath(path)!r} does not exist")
    if problems:
        raise MissingFileError("; ".join(problems) + ". Download or prepare the data first: "
                                "see README.md, section 'Preparing data'.")


def check_batches(loader, mode, world_size=1):
    """Refuses a loader that yields no batch (``drop_last`` with a batch larger than the data set)."""
    if len(loader) > 0:
        return
    share = f" shared by {world_size} processes" if world_size > 1 else ""
    raise InputError(f"DataLoader.{mode} gives 0 batches per epoch: {len(loader.dataset)} images{share}, batch_size "
                     f"{loader.batch_sampler.batch_size} and drop_last true; lower "
                     f"DataLoader.{mode}.sampler.batch_size or set drop_last: false")
