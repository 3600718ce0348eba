"""Shared fixtures: a registry with core's toy algorithms registered through a real pluggy plugin."""

from __future__ import annotations

import pytest

from aac.core import Registry, get_plugin_manager
from aac.core.testing import ToyPlugin


@pytest.fixture
def registry() -> Registry:
    return Registry(get_plugin_manager(autoload=False, plugins=[ToyPlugin()]))
