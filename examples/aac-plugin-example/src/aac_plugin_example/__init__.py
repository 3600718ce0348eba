"""aac-plugin-example: a small, complete third-party aac plugin.

It provides one algorithm, ``weight_clipping``, for the ``python`` framework (any model with
``state_dict()``/``load_state_dict()``, run by aac-core's generic backend). Copy this package to start
your own plugin; the README walks through each file.
"""

__version__ = "0.1.0"
