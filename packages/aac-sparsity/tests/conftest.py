"""Shared test settings (one torch thread, seeded frameworks, quiet TensorFlow); see aac.core.pytest_fixtures.

Works with torch, TensorFlow or both installed: ``tests(aac-sparsity)`` has torch only (it does not
collect the ``test_sparsity_tf_*`` modules), ``tests(aac-sparsity-tf)`` has TensorFlow only and runs just those.
"""

from aac.core.pytest_fixtures import deterministic_frameworks, one_torch_thread  # noqa: F401
