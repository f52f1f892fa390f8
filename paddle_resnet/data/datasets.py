"""Image classification datasets: ``ImageFolder`` (one subfolder per class) and ``FileList`` (PaddleClas lists).

``dataset[i]`` is ``(image float32 CHW, label int64)``, or ``None`` when the file is missing or not a
readable image: the path is logged as a warning and ``collate_valid_samples`` drops the sample from its
batch, counting it. Labels come from each sample's own entry, so a bad file never shifts other labels.

Any other error of a transform (e.g. ``CropImage`` larger than the image) raises an ``InputError``
naming the file and the op. In a DataLoader worker it is returned as a ``SampleError`` instead, which
``collate_valid_samples`` carries to the main process as numpy data for ``Loader`` to raise: an
exception inside a Paddle 3.3 worker can hang the loader.

Augmentation of sample ``i`` draws from ``np.random.default_rng([seed, epoch, i])``: it is the same
whichever worker loads it and in whatever order, and changes with ``set_epoch``.
"""
import io
import json
import logging
import numbers
import os
import traceback
from typing import NamedTuple

import numpy as np
import paddle

from ..errors import ConfigError, InputError, MissingFileError, UserError, short_repr
from ..fileio import read_regular_file
from ..labels import CLASS_INDICES_FILE, read_class_indices, write_class_indices
from .transforms import Compose, DecodeImage, ImageDecodeError
from .pipeline import build_transforms

__all__ = ["ImageFolder", "FileList", "ImageNetDataset", "SampleError", "collate_valid_samples", "check_same_classes",
           "label_list_for",
           "scan_class_folders", "IMAGE_EXTENSIONS"]

logger = logging.getLogger("paddle_resnet")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
DEFAULT_TRANSFORM_OPS = ["DecodeImage", {"NormalizeImage": {"mean": [0, 0, 0], "std": [1, 1, 1], "order": "hwc"}},
                         "ToCHWImage"]  # float32 CHW in [0, 1]
_FILES_CHECKED_FOR_ROOT = 20
_CLASSES_LISTED = 10  # a longer class list is reported by its first differences
MAX_LIST_BYTES = 1 << 30  # ImageNet's train list is ~40 MB
MAX_LIST_LINE = 4096  # characters: a longer path cannot be opened (PATH_MAX)


def is_image_file(name):
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _kind(entry):
    """'dir', 'file' (a regular file, links followed) or 'other': a FIFO, a device such as /dev/zero behind a
    link, a broken link or a symlink loop. Nothing is opened."""
    try:
        return "dir" if entry.is_dir() else "file" if entry.is_file() else "other"
    except OSError:  # ELOOP
        return "other"


def scan_class_folders(root):
    """-> (sorted class folder names, {class: sorted image file names}, number of non-image files skipped).
    Entries that are not regular files are left out, with a warning giving their count and the first one."""
    classes = sorted(entry.name for entry in os.scandir(root)
                     if _kind(entry) == "dir" and not entry.name.startswith("."))
    files, n_non_image, others = {}, 0, []
    for name in classes:
        entries = []
        for entry in os.scandir(os.path.join(root, name)):
            kind = _kind(entry)
            if kind == "file":
                entries.append(entry.name)
            elif kind == "other" and is_image_file(entry.name):
                others.append(entry.path)
        files[name] = sorted(entry for entry in entries if is_image_file(entry))
        n_non_image += len(entries) - len(files[name])
    if others:
        logger.warning("%s: ignored %d image names that are not regular files (FIFOs, devices, broken links or "
                       "symlink loops), e.g. %s", os.fspath(root), len(others), sorted(others)[0])
    return classes, files, n_non_image


def _check_class_num(class_num, names, where):
    if class_num is not None and names is not None and class_num != len(names):
        raise ConfigError(f"{where} has {len(names)} classes but class_num is {class_num}")


class SampleError(NamedTuple):
    """A sample that failed in a DataLoader worker, to be raised in the main process.

    ``message`` names the file; ``bug`` is True when the error was not a UserError (a bug in the code):
    the message then holds the worker's traceback.
    """
    message: str
    bug: bool = False

    def to_array(self):
        """As numpy data, the only thing that passes through Paddle's worker queue by value."""
        return np.frombuffer(json.dumps([self.message, self.bug]).encode("utf-8"), dtype=np.uint8)

    @classmethod
    def from_array(cls, array):
        return cls(*json.loads(np.asarray(array, dtype=np.uint8).tobytes().decode("utf-8")))

    def exception(self):
        if self.bug:
            return RuntimeError(f"a DataLoader worker failed: {self.message}")
        return InputError(self.message)


def _in_worker():
    return paddle.io.get_worker_info() is not None


class _ImageDataset:
    def __init__(self, samples, transform_ops, class_names, seed):
        self.samples = samples  # [(path, label)]
        self.class_names = class_names
        if isinstance(transform_ops, Compose):
            self.transform = transform_ops
        else:
            self.transform = build_transforms(transform_ops if transform_ops is not None else DEFAULT_TRANSFORM_OPS,
                                              chw=True)
        if not self.transform.ops or not isinstance(self.transform.ops[0], DecodeImage):
            raise ConfigError(f"transform_ops must start with DecodeImage (the dataset hands it the file path), "
                              f"got {self.transform!r}")
        if not (isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0):
            raise ConfigError(f"seed must be an int >= 0, got {seed!r}")
        self.seed, self.epoch = int(seed), 0

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        try:
            image = self.transform(path, np.random.default_rng([self.seed, self.epoch, int(index)]))
        except (OSError, ImageDecodeError) as error:
            reason = str(error) or type(error).__name__
            logger.warning("skipping unreadable image: %s", reason if path in reason else f"{path}: {reason}")
            return None
        except Exception as error:
            if not _in_worker():
                raise
            # Raised in a Paddle worker it would hang the loader: hand it to the main process instead.
            if isinstance(error, UserError):
                message = str(error)
                return SampleError(message if path in message else f"{path}: {message}")
            return SampleError(f"{path}: {''.join(traceback.format_exception(error))}", bug=True)
        return image, np.int64(label)

    @property
    def labels(self):
        return np.array([label for _, label in self.samples], dtype=np.int64)


class ImageFolder(_ImageDataset):
    """``root/<class name>/<image>``, classes indexed in sorted name order (the flower_photos layout).

    The class -> index map is kept in ``root/class_indices.json`` (``{"0": "daisy", ...}``): written when
    absent, read when present so indices stay fixed. ``class_indices`` may instead name another json file
    or give the class names as a list. Files without an image extension are ignored.
    """

    def __init__(self, image_root, transform_ops=None, class_indices=None, class_num=None, seed=0):
        root = image_root
        if not os.path.isdir(root):
            raise MissingFileError(f"ImageFolder: {os.fspath(root)!r} is not a directory")
        folders, files, n_non_image = scan_class_folders(root)
        if n_non_image:
            logger.warning("ImageFolder %s: ignored %d files without an image extension", root, n_non_image)
        names = self._resolve_class_names(root, folders, class_indices)
        _check_class_num(class_num, names, f"ImageFolder {root}")
        samples = [(os.path.join(root, name, file), label) for label, name in enumerate(names) for file in files[name]]
        if not samples:
            raise InputError(f"ImageFolder: no images found in the class folders of {os.fspath(root)!r}")
        for name in names:
            if not files[name]:
                logger.warning("ImageFolder %s: class %r has no images", root, name)
        super().__init__(samples, transform_ops, names, seed)

    @staticmethod
    def _resolve_class_names(root, folders, class_indices):
        if isinstance(class_indices, (list, tuple)):
            names, source = [str(n) for n in class_indices], "class_indices"
        else:
            source = class_indices if class_indices is not None else os.path.join(root, CLASS_INDICES_FILE)
            if not os.path.exists(source):
                if class_indices is not None:
                    raise MissingFileError(f"ImageFolder: class_indices file {os.fspath(source)!r} does not exist")
                if not folders:
                    raise InputError(f"ImageFolder: {os.fspath(root)!r} has no class subfolders")
                try:
                    write_class_indices(source, folders)
                except OSError as error:  # e.g. a read-only data set mount: the sorted order is still used
                    logger.warning("ImageFolder: could not write %s (%s)", source, error)
                return folders
            names = read_class_indices(source)
        missing, extra = sorted(set(names) - set(folders)), sorted(set(folders) - set(names))
        if missing or extra:
            raise InputError(f"ImageFolder {root}: {source} does not match the class folders: classes without a "
                             f"folder {missing}, folders not in it {extra}. Fix or delete {source} "
                             f"(it is rewritten from the folders when absent).")
        return names


def _read_lines(path):
    """The lines of a list file, read bounded: a FIFO, a device or a file over MAX_LIST_BYTES is an InputError."""
    try:
        text = read_regular_file(path, MAX_LIST_BYTES, "list file").decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: not a UTF-8 text file ({error.reason} at byte {error.start})") from None
    return list(io.StringIO(text, newline=None))  # the lines open() gives: \n, \r\n or \r


def read_file_list(path, class_num=None, delimiter=None):
    """PaddleClas ``relative/path label`` lines -> [(relative path, label)]; blank lines are ignored.
    ``delimiter`` splits the two fields (None: any whitespace)."""
    if not os.path.exists(path):
        raise MissingFileError(f"FileList: cls_label_path {os.fspath(path)!r} does not exist")
    if delimiter is not None and (not isinstance(delimiter, str) or not delimiter):
        raise ConfigError(f"delimiter must be a non-empty string (or null for any whitespace), got {delimiter!r}")
    samples = []
    for line_number, line in enumerate(_read_lines(path), start=1):
        line = line.strip()
        if not line:
            continue
        where = f"{path}, line {line_number}"
        if len(line) > MAX_LIST_LINE:
            raise InputError(f"{where}: {len(line):,} characters, more than the {MAX_LIST_LINE} a path and label "
                             f"may have")
        if "\0" in line:
            raise InputError(f"{where}: the line holds a NUL byte, which no path can (is this a list file?)")
        fields = line.split(delimiter)
        if len(fields) != 2:
            raise InputError(f"{where}: expected 'relative/path label', got {short_repr(line)}")
        try:
            label = int(fields[1])
        except ValueError:
            raise InputError(f"{where}: label {short_repr(fields[1])} is not an integer") from None
        if label < 0 or (class_num is not None and label >= class_num):
            bound = class_num if class_num is not None else "class_num"
            raise InputError(f"{where}: label {label} is outside [0, {bound})")
        samples.append((fields[0], label))
    if not samples:
        raise InputError(f"{path} lists no images")
    return samples


def relabel(entries, class_num, path):
    """PaddleClas's ``relabel``: labels that are not 0..K-1 (e.g. 3, 7, 12) numbered 0..K-1 in increasing order."""
    order = {label: i for i, label in enumerate(sorted({label for _, label in entries}))}
    if class_num is not None and len(order) > class_num:
        raise InputError(f"{path}: relabel found {len(order)} distinct labels but class_num is {class_num}")
    return [(relative, order[label]) for relative, label in entries]


class FileList(_ImageDataset):
    """PaddleClas's ``cls_label_path`` list: ``relative/path label`` per line, paths joined to ``image_root``.

    The whole list is validated on construction: a malformed line or a label outside [0, class_num) is a
    InputError naming the file and line. Class names are read from ``class_indices.json`` beside the list
    when it exists (``class_names`` is None otherwise); its length then bounds the labels too.
    """

    def __init__(self, image_root, cls_label_path, transform_ops=None, class_num=None, delimiter=None, seed=0):
        names_path = os.path.join(os.path.dirname(os.path.abspath(cls_label_path)), CLASS_INDICES_FILE)
        names = read_class_indices(names_path) if os.path.exists(names_path) else None
        _check_class_num(class_num, names, names_path)
        bound = class_num if class_num is not None else (len(names) if names is not None else None)
        entries = self._read_entries(cls_label_path, bound, delimiter)
        samples = [(os.path.join(image_root, relative), label) for relative, label in entries]
        first = samples[:_FILES_CHECKED_FOR_ROOT]
        if not any(os.path.exists(path) for path, _ in first):
            raise MissingFileError(f"none of the first {len(first)} images of {cls_label_path} exist under "
                                   f"image_root {image_root!r} (e.g. {first[0][0]!r}): is image_root right?")
        super().__init__(samples, transform_ops, names, seed)

    def _read_entries(self, path, class_num, delimiter):
        return read_file_list(path, class_num, delimiter)


class ImageNetDataset(FileList):
    """PaddleClas's list dataset: a ``FileList`` with its ``relabel`` option (see ``relabel``)."""

    def __init__(self, image_root, cls_label_path, transform_ops=None, class_num=None, delimiter=None,
                 relabel=False, seed=0):
        if not isinstance(relabel, bool):
            raise ConfigError(f"relabel must be true or false, got {relabel!r}")
        self.relabel = relabel
        super().__init__(image_root, cls_label_path, transform_ops, class_num, delimiter, seed)

    def _read_entries(self, path, class_num, delimiter):
        if not self.relabel:
            return read_file_list(path, class_num, delimiter)
        return relabel(read_file_list(path, None, delimiter), class_num, path)


def collate_valid_samples(samples):
    """Batch the samples that loaded: -> (images [N,C,H,W] float32, labels [N] int64, n_skipped int64 [1],
    error): ``error`` is None, or the batch's first ``SampleError`` (or a batch of mixed image shapes) as
    ``SampleError.to_array()``, for the caller to raise; images and labels are then None.

    When every sample of the batch was unreadable, images and labels are None. (n_skipped is an array, not
    an int, because Paddle's DataLoader ends the epoch early on a batch that holds no array at all.)
    """
    failures = [sample for sample in samples if isinstance(sample, SampleError)]
    valid = [sample for sample in samples if sample is not None and not isinstance(sample, SampleError)]
    n_skipped = np.array([len(samples) - len(valid) - len(failures)], dtype=np.int64)
    if failures:
        return None, None, n_skipped, failures[0].to_array()
    if not valid:
        return None, None, n_skipped, None
    shapes = {image.shape for image, _ in valid}
    if len(shapes) > 1:
        error = SampleError(f"images of one batch have different shapes {sorted(shapes)}: transform_ops must "
                            f"produce a fixed size (e.g. RandCropImage, or ResizeImage + CropImage)")
        return None, None, n_skipped, error.to_array()
    images = np.stack([image for image, _ in valid]).astype(np.float32, copy=False)
    labels = np.array([label for _, label in valid], dtype=np.int64)
    return images, labels, n_skipped, None


def check_same_classes(train_names, eval_names, train_where, eval_where, *, train_count=None, eval_count=None):
    """Raise InputError unless the Eval set has Train's class names in the same label order.

    A side whose names are unknown (None: a FileList without class_indices.json) is compared by its
    class count only, when ``*_count`` gives it (e.g. class_num). ``*_where`` name the sets in the message.
    """
    consequence = "the eval labels would mean other classes"
    if train_names is not None and eval_names is not None:
        train_names, eval_names = [str(n) for n in train_names], [str(n) for n in eval_names]
        if train_names == eval_names:
            return
        if max(len(train_names), len(eval_names)) <= _CLASSES_LISTED:
            raise InputError(f"{eval_where} has classes {eval_names} in label order, {train_where} has "
                             f"{train_names}: {consequence}")
        differences = [f"label {i}: {e!r} vs {t!r}" for i, (e, t) in enumerate(zip(eval_names, train_names)) if e != t]
        if len(eval_names) != len(train_names):
            differences.insert(0, f"{len(eval_names)} classes vs {len(train_names)}")
        raise InputError(f"{eval_where} and {train_where} have different classes in label order (eval vs train, "
                         f"first differences: {'; '.join(differences[:3])}): {consequence}")
    n_train = len(train_names) if train_names is not None else train_count
    n_eval = len(eval_names) if eval_names is not None else eval_count
    if n_train is not None and n_eval is not None and n_train != n_eval:
        raise InputError(f"{eval_where} has {n_eval} classes, {train_where} has {n_train}: {consequence}")


def label_list_for(dataset_config):
    """Class names for a dataset section without loading it: ``class_indices.json`` in an ImageFolder root
    (or its ``class_indices`` key), or beside a FileList's list. None when there is none."""
    if dataset_config.get("class_indices"):
        indices = dataset_config["class_indices"]
        return list(indices) if isinstance(indices, list) else read_class_indices(indices)
    folder = (os.path.dirname(os.path.abspath(dataset_config["cls_label_path"]))
              if dataset_config.get("cls_label_path") else dataset_config["image_root"])
    path = os.path.join(folder, CLASS_INDICES_FILE)
    return read_class_indices(path) if os.path.isfile(path) else None
