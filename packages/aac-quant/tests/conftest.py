"""Shared test settings (one torch thread, seeded frameworks, quiet TensorFlow); see aac.core.pytest_fixtures.

Works with torch, TensorFlow or both installed: ``tests(aac-quant)`` has torch only (it does not
collect the ``test_quant_tf_*`` modules), ``tests(aac-quant-tf)`` has TensorFlow only and runs just those.
"""

from aac.core.pytest_fixtures import deterministic_frameworks, one_torch_thread  # noqa: F401
