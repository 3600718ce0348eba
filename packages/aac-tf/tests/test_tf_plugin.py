"""The plugin: which models the TensorFlow backend claims, and that importing aac.tf stays cheap."""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np

import aac.tf
from aac.core import create_compressed_model, default_registry
from aac.tf.backend import TFBackend
from aac.tf.plugin import claims
from aac.tf.testing import SubclassedModel, functional_model, sequential_model


def test_claims_the_three_keras_styles_and_nothing_else() -> None:
    subclassed = SubclassedModel()
    subclassed(np.zeros((1, 8), "float32"))
    assert claims(sequential_model())
    assert claims(functional_model())
    assert claims(subclassed)
    assert not claims(keras.layers.Dense(2))  # a layer is not a model
    assert not claims(object())
    assert not claims({"state_dict": None})


def test_the_installed_entry_point_selects_the_tf_backend() -> None:
    spec = default_registry().backend_for(sequential_model())
    assert spec.name == "tf" and spec.package == "aac-tf"
    assert isinstance(spec.create(), TFBackend)


def test_importing_aac_tf_and_listing_plugins_does_not_import_tensorflow() -> None:
    code = (
        "import sys, aac.tf, aac.tf.plugin\n"
        "from aac.core import default_registry\n"
        "registry = default_registry()\n"
        "assert 'tf' in registry.backends\n"
        "assert not registry.backends['tf'].claims(object())\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, sorted(m for m in sys.modules if 'tensorflow' in m)[:3]\n"
        "print(aac.tf.__version__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0.1.0"


def test_lazy_exports_resolve() -> None:
    for name in aac.tf.__all__:
        assert getattr(aac.tf, name) is not None


def test_a_config_without_compression_gives_a_no_compression_controller(registry) -> None:
    model = sequential_model()
    controller, compressed = create_compressed_model(model, {}, registry=registry)
    assert compressed is model
    assert controller.name == "no_compression"
