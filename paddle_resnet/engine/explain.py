"""Grad-CAM (Selvaraju et al. 2017) at the model's last stage: where in an image the model found a class.

The class score's gradient with respect to ``layer4``'s feature maps, averaged over each map, weighs the maps;
their weighted sum, kept where positive and scaled to [0, 1] (its minimum at 0, as pytorch-grad-cam does), is
the heat map on ``layer4``'s grid (7x7 for a 224-px input), brought to the input's size bilinearly. It is drawn over the image as the model sees it (the Eval transforms
without their normalisation): ``explain_images`` writes one PNG per image; ``gallery_overlays`` gives the
report's gallery its overlays.
"""
import io
import os

import numpy as np
import paddle
import paddle.nn.functional as F

from ..data.pipeline import build_transforms
from ..data.transforms import Compose, NormalizeImage, ToCHWImage
from ..errors import InputError, check_choice

OVERLAY_ALPHA = 0.45
OVERLAY_SUFFIX = "_gradcam.png"


def grad_cam(model, image, class_id=None):
    """``image``: float32 [C, H, W] as the model takes it -> (heat map [H, W] in [0, 1], class id, its
    probability). ``class_id`` None: the model's top class."""
    captured = {}
    hook = model.layer4.register_forward_post_hook(lambda layer, inputs, output: captured.setdefault("maps", output))
    was_training = model.training
    model.eval()
    try:
        with paddle.set_grad_enabled(True):
            logits = model(paddle.to_tensor(image[None]))
            probabilities = F.softmax(logits.astype("float32"), axis=1)[0]
            class_id = int(probabilities.argmax()) if class_id is None else int(class_id)
            maps = captured["maps"]
            gradients, = paddle.grad(logits[0, class_id], maps)
    finally:
        hook.remove()
        model.train(was_training)
    if getattr(model, "data_format", "NCHW") == "NHWC":
        maps, gradients = maps.transpose([0, 3, 1, 2]), gradients.transpose([0, 3, 1, 2])
    weights = gradients.mean(axis=[2, 3], keepdim=True)
    cam = F.relu((weights * maps).sum(axis=1, keepdim=True))
    cam = (cam - cam.min()) / (cam.max() - cam.min()).clip(min=1e-12)  # as pytorch-grad-cam scales it
    cam = F.interpolate(cam, size=list(image.shape[1:]), mode="bilinear", align_corners=False)[0, 0].numpy()
    return np.clip(cam, 0, 1), class_id, float(probabilities[class_id])


def quadrant_shares(cam):
    """The heat map's mass in each quadrant: [[top left, top right], [bottom left, bottom right]]."""
    h, w = cam.shape
    total = max(float(cam.sum()), 1e-12)
    return [[float(cam[:h // 2, :w // 2].sum()) / total, float(cam[:h // 2, w // 2:].sum()) / total],
            [float(cam[h // 2:, :w // 2].sum()) / total, float(cam[h // 2:, w // 2:].sum()) / total]]


def overlay(view, cam, alpha=OVERLAY_ALPHA):
    """uint8 HWC image (1 or 3 channels) with the heat map drawn over it in matplotlib's jet colours."""
    from matplotlib import colormaps
    base = np.repeat(view, 3, axis=2) if view.shape[2] == 1 else view[:, :, :3]
    heat = colormaps["jet"](cam)[:, :, :3] * 255
    return np.clip((1 - alpha) * base + alpha * heat, 0, 255).astype(np.uint8)


def png_bytes(pixels):
    from PIL import Image
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


class Explainer:
    """Grad-CAM for an Engine's model on image files, through the config's Eval transforms."""

    def __init__(self, engine):
        self.model = engine.model
        ops = engine.config["DataLoader"]["Eval"]["dataset"]["transform_ops"]
        self.transform = build_transforms(ops, where="DataLoader.Eval.dataset.transform_ops", chw=True)
        self.view = Compose([op for op in self.transform.ops if not isinstance(op, (NormalizeImage, ToCHWImage))])
        self.class_names = ((engine.checkpoint_info or {}).get("class_names")
                            or [str(i) for i in range(engine.class_num)])

    def class_id(self, given):
        """A class by id or name (``--class``)."""
        if given is None:
            return None
        if given in self.class_names:
            return self.class_names.index(given)
        if str(given).isdigit() and int(given) < len(self.class_names):
            return int(given)
        return check_choice("--class", given, self.class_names, InputError)

    def explain(self, path, class_id=None):
        """-> (heat map, class id, probability, overlay uint8 HWC) of the image at ``path``."""
        image = self.transform(path, np.random.default_rng(0)).astype("float32")
        cam, class_id, probability = grad_cam(self.model, image, class_id)
        view = self.view(path, np.random.default_rng(0))
        if view.shape[:2] != cam.shape:
            raise InputError(f"{path}: the Eval transforms give {view.shape[:2]} pixels before normalisation and "
                             f"{cam.shape} after; Grad-CAM needs the normalisation to keep the size")
        return cam, class_id, probability, overlay(view, cam)


def explain_images(engine, paths, out_dir, class_name=None):
    """Writes ``<out_dir>/<image name>_gradcam.png`` per image; -> [(path, output, class name, probability)].
    An unreadable image is listed with output None and its error as class name."""
    explainer = Explainer(engine)
    wanted = explainer.class_id(class_name)
    os.makedirs(out_dir, exist_ok=True)
    written, used = [], set()
    for path in paths:
        try:
            _, class_id, probability, pixels = explainer.explain(path, wanted)
        except (OSError, InputError) as error:
            written.append((path, None, str(error), None))
            continue
        name = _unique(os.path.splitext(os.path.basename(path))[0], used)
        target = os.path.join(out_dir, name + OVERLAY_SUFFIX)
        with open(target, "wb") as f:
            f.write(png_bytes(pixels))
        written.append((path, target, explainer.class_names[class_id], probability))
    return written


def _unique(stem, used):
    name, number = stem, 1
    while name in used:
        number += 1
        name = f"{stem}_{number}"
    used.add(name)
    return name


def gallery_overlays(engine, predictions, count):
    """{path: PNG bytes} of the Grad-CAM of the predicted class for the report's gallery images."""
    from .report import gallery_order
    explainer = Explainer(engine)
    overlays = {}
    for i in gallery_order(predictions, count):
        path = predictions.paths[i]
        try:
            *_, pixels = explainer.explain(path, int(predictions.predicted[i]))
        except (OSError, InputError):
            continue
        overlays[path] = _thumbnail_png(pixels)
    return overlays


def _thumbnail_png(pixels):
    from PIL import Image

    from .report import THUMBNAIL_SIDE
    image = Image.fromarray(pixels)
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    return png_bytes(np.asarray(image))
