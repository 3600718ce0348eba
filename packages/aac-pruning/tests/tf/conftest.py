"""Keras' ``compress_tf``: models take channels-last inputs, ``shape`` defaults to ``(1, 8, 8, 3)``."""

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture()
def compress_tf(compressor: Callable[[tuple[int, ...]], Callable[..., Any]]) -> Callable[..., Any]:
    return compressor((1, 8, 8, 3))
