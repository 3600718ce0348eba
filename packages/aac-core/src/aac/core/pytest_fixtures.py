"""Test settings every algorithm package's tests share, whichever frameworks are installed.

Import the fixtures into a ``conftest.py`` (importing registers them)::

    from aac.core.pytest_fixtures import deterministic_frameworks, one_torch_thread  # noqa: F401

Importing this module quiets TensorFlow's start-up (before TensorFlow is first imported). It imports
pytest, so only tests import it.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> Iterator[None]:
    """The test models are tiny: one thread trains them fastest and does not fight other processes for
    the cores (with two threads on a busy 2-core machine a step can take 50x longer)."""
    try:  # by name: aac-core itself never depends on a framework
        torch = sys.modules.get("torch") or importlib.import_module("torch")
    except ImportError:  # framework-neutral and TensorFlow-only sessions
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def deterministic_frameworks() -> None:
    """Seed torch and Keras before every test (Keras only if a TensorFlow test imported it)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(0)
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.utils.set_random_seed(0)
