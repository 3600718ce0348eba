"""What aac-tf needs installed, checked when ``aac.tf`` is imported - without importing TensorFlow.

aac-tf does not depend on a TensorFlow distribution: TensorFlow ships as several mutually exclusive
packages (``tensorflow``, ``tensorflow-cpu``, vendor and nightly builds), and a dependency on one
would make pip install it over the one you have. The extras pick one for a fresh environment
(``aac-tf[cpu]``, ``aac-tf[gpu]``); an existing TensorFlow is used as it is. Keras comes with
TensorFlow; aac-tf bounds its version (``pyproject.toml``, repeated in :data:`KERAS_VERSIONS`)
because :mod:`aac.tf.keras_internals` relies on private Keras modules that were tested only there.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import warnings

#: the Keras versions aac-tf is tested with: ``>= first, < second`` (the bound in pyproject.toml)
KERAS_VERSIONS: tuple[tuple[int, int], tuple[int, int]] = ((3, 0), (3, 16))

INSTALL_HINT = (
    'pip install "aac-tf[cpu]" (or "aac-tf[gpu]" for the CUDA build), or install the TensorFlow build you '
    "want (tensorflow>=2.16); aac-tf uses whichever is installed and never replaces it"
)


class KerasVersionWarning(UserWarning):
    """The installed Keras is newer than the versions aac-tf was tested with."""


def _version(text: str) -> tuple[int, int]:
    numbers = [int(n) for n in re.findall(r"\d+", text)[:2]]
    return (numbers + [0, 0])[0], (numbers + [0, 0])[1]


def check() -> None:
    """Raise ``ImportError`` saying what to install if TensorFlow or Keras 3 is missing; warn for an untested Keras."""
    if importlib.util.find_spec("tensorflow") is None:
        raise ImportError(f"aac-tf needs TensorFlow (>= 2.16, which brings Keras 3) and none is installed: {INSTALL_HINT}")
    try:
        keras_version = importlib.metadata.version("keras")
    except importlib.metadata.PackageNotFoundError:  # keras-nightly or a vendored build: nothing to compare
        return
    low, high = KERAS_VERSIONS
    found = _version(keras_version)
    if found < low:
        raise ImportError(f"aac-tf needs Keras 3 (TensorFlow >= 2.16) but Keras {keras_version} is installed: {INSTALL_HINT}")
    if found >= high:
        warnings.warn(
            f"aac-tf is tested with Keras below {high[0]}.{high[1]} and Keras {keras_version} is installed: its private "
            'modules that aac.tf.keras_internals uses may have moved; pip install "keras<'
            f'{high[0]}.{high[1]}" if anything fails',
            KerasVersionWarning,
            stacklevel=3,
        )
