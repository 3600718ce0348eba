"""Test-wide settings: the tiny test models train fastest on one thread, and one thread does not
fight other processes for the cores (with two threads on a busy 2-core machine a step can take 50x longer)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    try:
        import torch
    except ImportError:  # the framework-neutral tests run without torch
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
