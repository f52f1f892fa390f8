"""PaddleClas's ``tools/infer.py``: classify images with the dygraph model and the ``Topk`` post-process.

``Infer.infer_imgs`` (an image or a folder of images), ``Infer.transforms`` (default: the Eval transforms),
``Infer.batch_size`` and ``Infer.PostProcess`` (``Topk``: ``topk``, ``class_id_map_file`` with lines
``"<id> <name>"``, ``delimiter``) have PaddleClas's meaning, and each image gives PaddleClas's result::

    {'class_ids': [3, 1], 'scores': [0.93, 0.04], 'file_name': 'img.png', 'label_names': ['cat', 'dog']}
"""
import logging
import os

import numpy as np
import paddle
import paddle.nn.functional as F

from ..data.datasets import is_image_file
from ..data.transforms import ImageDecodeError
from ..data.pipeline import build_transforms
from ..errors import ConfigError, InputError, MissingFileError, short_repr
from ..labels import read_class_id_map

logger = logging.getLogger("paddle_resnet")

class Topk:
    """PaddleClas's ``Topk`` post-process: softmax, the ``topk`` best classes, scores rounded to 5 decimals."""

    def __init__(self, topk, label_names=None):
        self.topk, self.label_names = topk, label_names

    def __call__(self, logits, file_names):
        probs = F.softmax(paddle.to_tensor(logits), axis=-1).numpy()
        results = []
        for row, file_name in zip(probs, file_names):
            ids = row.argsort(axis=0)[-self.topk:][::-1].astype("int32")
            results.append({
                "class_ids": [int(i) for i in ids],
                "scores": np.around([float(row[i]) for i in ids], decimals=5).tolist(),
                "file_name": file_name,
                "label_names": [self.label_names[i] for i in ids] if self.label_names else [],
            })
        return results


def list_images(infer_imgs):
    """An image file, or the image files of a folder (sorted, not recursive), as PaddleClas lists them."""
    if not infer_imgs:
        raise ConfigError("Infer.infer_imgs is not set: -o Infer.infer_imgs=IMAGE_OR_FOLDER")
    if os.path.isfile(infer_imgs):
        return [infer_imgs]
    if not os.path.isdir(infer_imgs):
        raise MissingFileError(f"Infer.infer_imgs {infer_imgs!r} does not exist")
    images = sorted(os.path.join(infer_imgs, name) for name in os.listdir(infer_imgs)
                    if is_image_file(name) and os.path.isfile(os.path.join(infer_imgs, name)))
    if not images:
        raise InputError(f"Infer.infer_imgs: no image file in {infer_imgs!r}")
    return images


def read_label_names(post, class_num):
    """The names of ``Infer.PostProcess.class_id_map_file`` (None when it is not set)."""
    path = post["class_id_map_file"]
    if not path:
        return None
    try:
        return read_class_id_map(path, post["delimiter"] or " ", class_num)
    except MissingFileError:
        raise MissingFileError(f"Infer.PostProcess.class_id_map_file {short_repr(path)} does not exist") from None


def infer(model, config, class_num):
    """Runs the dygraph ``model`` of ``class_num`` classes over ``Infer.infer_imgs`` of the validated ``config``;
    returns (results, unreadable paths)."""
    section, post = config["Infer"], config["Infer"]["PostProcess"]
    images = list_images(section["infer_imgs"])
    label_names = read_label_names(post, class_num)
    ops = section["transforms"] or config["DataLoader"]["Eval"]["dataset"]["transform_ops"]
    transform = build_transforms(ops, where="Infer.transforms", chw=True)
    postprocess = Topk(min(post["topk"], class_num), label_names)
    model.eval()
    results, unreadable = [], []
    batch_size = section["batch_size"]
    for start in range(0, len(images), batch_size):
        batch, names = [], []
        for path in images[start:start + batch_size]:
            try:
                batch.append(transform(path))
                names.append(path)
            except (OSError, ImageDecodeError) as error:
                logger.warning("skipping unreadable image: %s", error if path in str(error) else f"{path}: {error}")
                unreadable.append(path)
        if batch:
            with paddle.no_grad():
                logits = model(paddle.to_tensor(np.stack(batch).astype("float32")))
            results.extend(postprocess(logits.astype("float32").numpy(), names))
    return results, unreadable
