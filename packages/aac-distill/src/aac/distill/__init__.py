"""Knowledge distillation for aac: ``knowledge_distillation``, a loss from the uncompressed model.

The settings are framework-neutral; :mod:`aac.distill.torch` is the PyTorch part (NNCF offered
knowledge distillation for PyTorch only, and so does aac). Importing this package imports no framework.
"""

from aac.distill._version import __version__

__all__ = ["__version__"]
