"""Grad-CAM overlays: where in each image the model found its class (at the last stage, layer4).

    python tools/explain.py -c CONFIG -o Global.pretrained_model=output/best --input img.jpg|DIR|"GLOB"
        [--out explain] [--class NAME_OR_ID] [--max-images 100]

Writes OUT/<image name>_gradcam.png per image (the image as the model sees it through the config's Eval
transforms, the heat map over it) and prints the class each shows with its probability. Without --class, each
image's top class. The report's gallery has the same overlays: eval.py --report DIR --explain.
"""
import sys

from ..errors import ConfigError, InputError
from .common import fail, positive_int, run_engine


def add_arguments(parser):
    parser.add_argument("--input", required=True, help="an image, a folder of images, or a glob pattern")
    parser.add_argument("--out", default="explain", help="folder for the overlays (default: explain)")
    parser.add_argument("--class", dest="class_name", help="explain this class (a name or id) in every image")
    parser.add_argument("--max-images", type=positive_int, default=100, help="at most this many images (default 100)")


def _explain(engine, args):
    import itertools

    from ..deploy.folder_prediction import InputFiles
    from ..engine.explain import explain_images
    if not engine.config["Global"]["pretrained_model"]:
        raise ConfigError("Global.pretrained_model is not set: explain needs trained weights, "
                          "e.g. -o Global.pretrained_model=output/best")
    paths = list(itertools.islice(InputFiles(args.input), args.max_images))
    if not paths:
        raise InputError(f"--input {args.input} matches no image file")
    return explain_images(engine, paths, args.out, args.class_name)


def main(argv=None, prog=None):
    written = run_engine(__doc__, "infer", argv, _explain, add_arguments, prog=prog)
    unreadable = 0
    for path, target, class_name, probability in written:
        if target is None:
            unreadable += 1
            print(f"{path}: SKIPPED ({class_name})")
        else:
            print(f"{path}: {class_name} {probability:.4f} -> {target}")
    if unreadable == len(written):
        return fail(prog, f"none of the {unreadable} images could be read")
    if unreadable:
        print(f"{unreadable} of {len(written)} images could not be read and were skipped", file=sys.stderr)
    return 0
