"""torch's ``compress``: models take channels-first inputs, ``shape`` defaults to ``(1, 3, 8, 8)``."""

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture()
def compress(compressor: Callable[[tuple[int, ...]], Callable[..., Any]]) -> Callable[..., Any]:
    return compressor((1, 3, 8, 8))
