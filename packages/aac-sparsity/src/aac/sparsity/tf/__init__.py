"""The TensorFlow/Keras implementations of ``magnitude_sparsity``, ``rb_sparsity`` and ``const_sparsity``.

Each is the framework-neutral controller of :mod:`aac.sparsity.algorithm` plus :class:`~aac.sparsity.tf.base.TFSparsity`
(masks as :mod:`aac.tf.transforms` on the kernels of the user's layers). Each module has a
``create(prepared, section, config)`` factory that aac-core calls (see :mod:`aac.sparsity.plugin`).
"""

try:
    import aac.tf  # noqa: F401 - without TensorFlow, its ImportError says what to install
except ModuleNotFoundError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        'sparsity for Keras models needs aac-tf: pip install "aac-sparsity[tf]" next to your TensorFlow (or add "aac-tf[cpu]")'
    ) from exc
