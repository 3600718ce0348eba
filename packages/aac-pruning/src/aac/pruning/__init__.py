"""Filter pruning for aac.

The analysis, importance, schedule, level and cost modules are framework-neutral (NumPy and
:mod:`aac.core.graph`); :mod:`aac.pruning.torch` and :mod:`aac.pruning.tf` are the thin PyTorch and
TensorFlow/Keras parts.
"""

from aac.pruning._version import __version__

__all__ = ["__version__"]
