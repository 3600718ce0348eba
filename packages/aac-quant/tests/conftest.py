"""Shared test settings (one torch thread, seeded frameworks, quiet TensorFlow); see aac.core.pytest_fixtures.

``tests/`` runs in both of aac-quant's sessions, ``tests/torch/`` with torch only and ``tests/tf/`` with TensorFlow only.
"""

from aac.core.pytest_fixtures import deterministic_frameworks, one_torch_thread  # noqa: F401
