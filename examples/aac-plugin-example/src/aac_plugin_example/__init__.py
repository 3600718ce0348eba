"""aac-plugin-example: a small, complete third-party aac plugin.

It provides one adaptive-level algorithm, ``weight_clipping``, for PyTorch models (the ``torch``
framework of aac-torch): the accuracy-aware loop searches the fraction of each layer's weights that is
clipped. Copy this package to start your own plugin; docs/plugins.md walks through each file.
"""

__version__ = "0.1.0"
