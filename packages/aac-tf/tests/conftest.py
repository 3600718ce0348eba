"""Shared fixtures of aac-tf's tests. TensorFlow is imported quietly (set before the first import)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras
import numpy as np
import pytest

import aac.tf.plugin
from aac.core import Registry, get_plugin_manager
from aac.tf.testing import TFToyPlugin, make_data


@pytest.fixture
def registry() -> Registry:
    """The TensorFlow backend and the toy TF algorithm, registered through real pluggy plugins."""
    return Registry(get_plugin_manager(autoload=False, plugins=[aac.tf.plugin, TFToyPlugin()]))


@pytest.fixture(autouse=True)
def _seed() -> None:
    keras.utils.set_random_seed(0)


@pytest.fixture(scope="session")
def blobs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_val, y_val): noisy Gaussian blobs, 8 features, 3 classes."""
    x, y = make_data(480, noise=1.6, seed=3)
    return x[:320], y[:320], x[320:], y[320:]
