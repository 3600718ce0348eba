"""The PyTorch implementations of ``magnitude_sparsity``, ``rb_sparsity`` and ``const_sparsity``.

Each module has a ``create(model, section, config)`` factory that aac-core calls (see
:mod:`aac.sparsity.plugin`); the classes can also be used directly.
"""
