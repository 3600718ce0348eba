"""What aac-tf needs installed (issue 11): TensorFlow through extras or the user's own, Keras within a tested bound."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path

import pytest

from aac.tf import requirements

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _dependencies() -> str:
    text = PYPROJECT.read_text(encoding="utf-8")
    return text[text.index("dependencies = [") : text.index("]", text.index("dependencies = ["))]


def test_the_keras_bound_is_the_one_tested_and_holds() -> None:
    bound = re.search(r'"keras>=(\d+)\.(\d+),<(\d+)\.(\d+)"', _dependencies())
    assert bound is not None, "pyproject.toml must bound keras: keras>=X.Y,<X.Z"
    low, high = (int(bound[1]), int(bound[2])), (int(bound[3]), int(bound[4]))
    assert requirements.KERAS_VERSIONS == (low, high)
    installed = requirements._version(importlib.metadata.version("keras"))
    assert low <= installed < high


def test_no_tensorflow_distribution_is_a_dependency() -> None:
    """A dependency on tensorflow or tensorflow-cpu would make pip replace the build the user has; extras choose one."""
    assert "tensorflow" not in _dependencies()
    text = PYPROJECT.read_text(encoding="utf-8")
    assert re.search(r'^cpu = \[\n\s+"tensorflow-cpu>=2\.16; ', text, re.M) and re.search(
        r'^gpu = \[\n\s+"tensorflow\[and-cuda\]>=2\.16; ', text, re.M
    )


def test_without_tensorflow_the_import_error_says_what_to_install(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorflow" else real(name, *a))
    with pytest.raises(ImportError, match=r'aac-tf needs TensorFlow .*pip install "aac-tf\[cpu\]" .*never replaces it'):
        requirements.check()


def test_keras_2_is_refused_and_an_untested_keras_warns(monkeypatch) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.15.0")
    with pytest.raises(ImportError, match="aac-tf needs Keras 3"):
        requirements.check()
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "3.16.0")
    with pytest.warns(requirements.KerasVersionWarning, match=r'tested with Keras below 3\.16 .*pip install "keras<3\.16"'):
        requirements.check()


def test_keras_src_is_used_only_behind_aac_tf_helpers() -> None:
    """Every import of Keras' private modules is in aac.tf.keras_internals (all packages' sources)."""
    packages = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(packages))
        for path in packages.glob("*/src/**/*.py")
        if "keras.src" in path.read_text(encoding="utf-8") and path.name != "keras_internals.py"
    ]
    assert offenders == []
