import logging
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import paddle_resnet  # noqa: E402,F401  (silences Paddle's import-time ccache warning first)
import paddle  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    paddle.seed(0)
    yield


@pytest.fixture(autouse=True)
def _restore_package_logger():
    """The engine's setup_logging stops propagation; undo it so caplog sees records in every test order."""
    logger = logging.getLogger("paddle_resnet")
    handlers, propagate, level = list(logger.handlers), logger.propagate, logger.level
    yield
    for handler in set(logger.handlers) - set(handlers):
        handler.close()  # the test's train.log
    logger.handlers[:] = handlers
    logger.propagate, logger.level = propagate, level
