"""Classify images with trained weights, as PaddleClas's tools/infer.py does (dygraph model, Topk):

    python tools/infer.py -c CONFIG -o Infer.infer_imgs=IMAGE_OR_FOLDER -o Global.pretrained_model=output/best

Prints one result per image: {'class_ids': [...], 'scores': [...], 'file_name': ..., 'label_names': [...]}.
"""
import sys

from ..errors import ConfigError
from .common import fail, run_engine


def _infer(engine, args):
    from ..deploy.infer import infer
    if not engine.config["Global"]["pretrained_model"]:
        raise ConfigError("Global.pretrained_model is not set: infer needs trained weights, "
                          "e.g. -o Global.pretrained_model=output/best")
    return infer(engine.model, engine.config, engine.class_num)


def main(argv=None, prog=None):
    results, unreadable = run_engine(__doc__, "infer", argv, _infer, prog=prog)
    for result in results:
        print(result)
    if not results:
        return fail(prog, f"none of the {len(unreadable)} images could be read")
    if unreadable:
        print(f"{len(unreadable)} of {len(results) + len(unreadable)} images could not be read and were skipped",
              file=sys.stderr)
    return 0
