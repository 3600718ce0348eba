"""Weight sparsity for aac: ``magnitude_sparsity``, ``rb_sparsity`` and ``const_sparsity``.

The schedule, settings and level modules are framework-neutral (NumPy only) so that every backend
shares them; :mod:`aac.sparsity.torch` is the thin PyTorch part. Importing this package imports
neither torch nor NumPy.
"""

from aac.sparsity._version import __version__

__all__ = ["__version__"]
