"""PaddleClas's own model code, imported from the ``paddleclas`` wheel without running its package imports.

``paddleclas/__init__.py`` and ``ppcls/arch/__init__.py`` import every backbone, cv2, faiss, sklearn and
more; ``legendary_models/resnet.py`` itself needs only paddle and a few ppcls helpers. The ppcls packages
on its import path are therefore registered as empty namespace modules (their files are found, their
``__init__`` is not run). CI installs the wheel with ``pip install --no-deps paddleclas==2.6.0``.
"""
import importlib
import importlib.util
import os
import sys
import types

PACKAGES = ("ppcls", "ppcls.utils", "ppcls.arch", "ppcls.arch.backbone", "ppcls.arch.backbone.base",
            "ppcls.arch.backbone.legendary_models", "ppcls.arch.backbone.model_zoo")
VERSION = "2.6.0"


def paddleclas_root():
    """The folder holding ``ppcls``: the installed wheel's, or None."""
    spec = importlib.util.find_spec("paddleclas")
    return spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else None


def import_ppcls(module, root=None):
    """``ppcls.<module>`` from ``root`` (default: the installed paddleclas wheel), e.g.
    ``import_ppcls("arch.backbone.legendary_models.resnet")``. Raises ImportError when there is no PaddleClas."""
    root = root or paddleclas_root()
    if root is None or not os.path.isdir(os.path.join(root, "ppcls")):
        raise ImportError(f"PaddleClas's code is not installed (pip install --no-deps paddleclas=={VERSION})")
    for name in PACKAGES:
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [os.path.join(root, *name.split("."))]
            sys.modules[name] = package
    from ppcls.utils import logger  # its functions fail until the logger is set up
    logger.init_logger()
    return importlib.import_module(f"ppcls.{module}")


def paddleclas_resnet(module="arch.backbone.legendary_models.resnet"):
    """PaddleClas's legendary_models/resnet.py (or another ``ppcls`` model module), or a pytest skip naming
    what is missing. model_zoo modules name their parameters globally: build them in
    ``paddle.utils.unique_name.guard()`` to build one twice in a process."""
    import pytest
    try:
        return import_ppcls(module)
    except ImportError as error:
        pytest.skip(f"PaddleClas's model code cannot be imported: {error}")


REF_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paddleclas_ref")
REF_COMMIT = "d178931fca432204e6b7422bac4f92e09ff22fa4"  # PaddleClas's commit the files under paddleclas_ref are from
# the packages the wheel does not ship, as namespace modules over tests/paddleclas_ref (their __init__s import
# every dataset, DALI and the batch ops)
REF_PACKAGES = ("ppcls.data", "ppcls.data.preprocess", "ppcls.data.preprocess.ops", "ppcls.data.preprocess.batch_ops",
                "ppcls.loss")


def import_ref(module):
    """``ppcls.<module>`` from the files vendored under tests/paddleclas_ref (see its README.md), e.g.
    ``import_ref("loss.celoss")``; ``ppcls.utils`` (its logger) comes from the installed wheel. A pytest skip when
    cv2 or the wheel is missing."""
    import pytest
    try:
        import cv2  # noqa: F401  (PaddleClas's ops import it)
        import_ppcls("utils.logger")
    except ImportError as error:
        pytest.skip(f"PaddleClas's code cannot be imported: {error}")
    for name in REF_PACKAGES:
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [os.path.join(REF_ROOT, *name.split("."))]
            sys.modules[name] = package
    return importlib.import_module(f"ppcls.{module}")


def paddleclas_data_op(module):
    """``ppcls.data.preprocess.ops.<module>`` from tests/paddleclas_ref."""
    return import_ref(f"data.preprocess.ops.{module}")
