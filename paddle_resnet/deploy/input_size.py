"""Bringing every image to the model's input size, whatever size it comes in.

An Eval pipeline may leave the size open (the quick start's digits are 28x28 already, so it has no resize):
a deployed model meets photos of any size, so export (and the Predictor, for exports made before this
rule) completes such a pipeline with a resize of the short side to the input's longer side and a centre
crop to the input size, as ImageNet's eval does. Images already at the input size pass through unchanged.
"""
from ..data.transforms import CropImage, DecodeImage, ResizeImage
from ..data.pipeline import build_transforms
from ..errors import ConfigError


def size_completing_ops(eval_ops, image_shape):
    """-> (the ops with a resize/crop inserted where the size is left open, a note saying what was added or
    None when the ops already fix the size). The ops are config entries (``{"ResizeImage": {...}}``)."""
    ops = list(eval_ops)
    built = build_transforms(ops).ops
    _channels, height, width = (int(d) for d in image_shape)
    crop = {"CropImage": {"size": [width, height]}}
    if any(isinstance(op, CropImage) for op in built):
        return ops, None
    resizes = [i for i, op in enumerate(built) if isinstance(op, ResizeImage)]
    if resizes and built[resizes[-1]].size is not None:
        return ops, None  # a fixed [w, h]: the Predictor checks that it is the input size
    if resizes:  # a short-side resize keeps the aspect ratio: only a crop fixes the size
        ops.insert(resizes[-1] + 1, crop)
        return ops, f"CropImage {width}x{height} after the ResizeImage"
    decoded = 1 if built and isinstance(built[0], DecodeImage) else 0
    if decoded and built[0].channel_first:
        raise ConfigError("the Eval transform_ops leave the input size open and DecodeImage has channel_first: "
                          "true, so no resize can follow it; add ResizeImage and CropImage before NormalizeImage "
                          "and use ToCHWImage instead of channel_first")
    ops[decoded:decoded] = [{"ResizeImage": {"resize_short": max(width, height)}}, crop]
    return ops, f"ResizeImage resize_short {max(width, height)} + CropImage {width}x{height} after DecodeImage"
