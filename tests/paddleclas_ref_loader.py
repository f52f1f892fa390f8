"""PaddleClas's vendored data and loss code (tests/paddleclas_ref/), imported without its package ``__init__``s.

``ppcls`` and ``ppcls.utils`` are the installed wheel's (see paddleclas_code.py); the packages below them that
the wheel does not ship (``ppcls.data...``, ``ppcls.loss``) are namespace modules over tests/paddleclas_ref/.
"""
import importlib
import os
import sys
import types

import pytest

from paddleclas_code import import_ppcls

REF_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "paddleclas_ref")
REF_PACKAGES = ("ppcls.data", "ppcls.data.preprocess", "ppcls.data.preprocess.ops", "ppcls.data.preprocess.batch_ops",
                "ppcls.loss")
COMMIT = "d178931fca432204e6b7422bac4f92e09ff22fa4"


def import_ref(module):
    """``ppcls.<module>`` from tests/paddleclas_ref, e.g. ``import_ref("loss.celoss")``; skips without the wheel."""
    try:
        import_ppcls("utils.logger")
    except ImportError as error:
        pytest.skip(f"PaddleClas's code cannot be imported: {error}")
    for name in REF_PACKAGES:
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [os.path.join(REF_ROOT, *name.split("."))]
            sys.modules[name] = package
    return importlib.import_module(f"ppcls.{module}")
