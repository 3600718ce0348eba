"""Shared test settings of the integration tests (one torch thread, seeded frameworks, quiet TensorFlow).

``tests/integration/<framework>/`` holds the tests that combine packages - algorithms mixed, NNCF's configs
that name several of them; ``nox -s "integration(<framework>)"`` installs every package of that framework and
runs them. A test that needs only its own package and its backend belongs in that package's tests instead.
"""

from aac.core.pytest_fixtures import deterministic_frameworks, one_torch_thread  # noqa: F401
