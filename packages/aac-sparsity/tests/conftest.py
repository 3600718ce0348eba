"""Test-wide settings: the tiny test models train fastest on one thread, and one thread does not
fight other processes for the cores (with two threads on a busy 2-core machine a step can take 50x longer).

Works with torch, TensorFlow or both installed: ``tests(aac-sparsity)`` has torch only (the
``test_sparsity_tf_*`` modules skip), ``tests(aac-sparsity-tf)`` has TensorFlow only and runs just those.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is first imported
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    try:
        import torch
    except ImportError:  # the framework-neutral and TensorFlow tests run without torch
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _keras_seed() -> None:
    keras = sys.modules.get("keras")  # imported by the TensorFlow tests only
    if keras is not None:
        keras.utils.set_random_seed(0)
