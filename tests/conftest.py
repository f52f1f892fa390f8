import atexit
import logging
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every subprocess a test starts imports the checkout under test, not whatever is installed (another checkout's
# editable install, a worktree).
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
# Global.to_static auto's step figures (engine/step_choice.py) go to this test run's cache, not the user's.
os.environ["PADDLE_RESNET_CACHE_DIR"] = tempfile.mkdtemp(prefix="paddle_resnet_cache_")
atexit.register(shutil.rmtree, os.environ["PADDLE_RESNET_CACHE_DIR"], ignore_errors=True)


def pytest_addoption(parser):
    parser.addoption("--every-paddleclas-config", action="store_true", dest="every_paddleclas_config",
                     help="train all 38 PaddleClas configs in test_paddleclas_configs.py, not one of each kind")


def run_tool(tool, *args, timeout=1500):
    """``python tools/<tool> ARGS`` from the checkout under test (PYTHONPATH=ROOT: not another install)."""
    return subprocess.run([sys.executable, f"tools/{tool}", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": ROOT})


import paddle_resnet  # noqa: E402,F401  (silences Paddle's import-time ccache warning first)
import paddle  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    paddle.seed(0)
    yield


@pytest.fixture(autouse=True)
def _one_math_thread():
    """Every test starts with Paddle's CPU math threads at dygraph's default, 1, whatever ran before: Engine
    sets them (Global.num_threads) for the rest of the process, and float rounding, so results that depend
    on it (test_static_step's drift floor), change with the thread count."""
    paddle.base.core.set_num_threads(1)
    yield


_PACKAGE_LOGGER = logging.getLogger("paddle_resnet")
_PRISTINE = (list(_PACKAGE_LOGGER.handlers), _PACKAGE_LOGGER.propagate, _PACKAGE_LOGGER.level)


def _reset_package_logger():
    handlers, propagate, level = _PRISTINE
    for handler in set(_PACKAGE_LOGGER.handlers) - set(handlers):
        handler.close()  # a train.log
    _PACKAGE_LOGGER.handlers[:] = handlers
    _PACKAGE_LOGGER.propagate, _PACKAGE_LOGGER.level = propagate, level


@pytest.fixture(autouse=True)
def _restore_package_logger():
    """The engine's setup_logging stops propagation; undo it before and after every test so caplog sees
    records in every order (before: a module-scoped fixture that trained may have run setup_logging)."""
    _reset_package_logger()
    yield
    _reset_package_logger()
