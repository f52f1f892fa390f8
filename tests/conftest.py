import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import paddle_resnet  # noqa: E402,F401  (silences Paddle's import-time ccache warning first)
import paddle  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    paddle.seed(0)
    yield
