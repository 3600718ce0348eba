"""Quantization-aware training for aac: the ``quantization`` algorithm.

The settings, grid and range modules are framework-neutral (NumPy only) so that every backend
shares them; :mod:`aac.quant.torch` is the thin PyTorch part. Importing this package imports
neither torch nor NumPy.
"""

from aac.quant._version import __version__

__all__ = ["__version__"]
