"""Shared test settings (one torch thread, seeded frameworks); see aac.core.pytest_fixtures."""

from aac.core.pytest_fixtures import deterministic_frameworks, one_torch_thread  # noqa: F401
