"""Repository-wide test policy: a test never skips because a sibling aac package is missing; no fsync.

A skip like ``importorskip("aac.pruning")`` hides a wrong test matrix (the session did not install
what the test needs) behind a green run. Such skips are turned into failures that name the missing
package, at collection time (module-level ``importorskip``) and at run time alike. Skips for other
reasons (an optional third-party tool, a platform) are left alone.

Atomic writes skip their flush to disk (``AAC_FSYNC=0``, inherited by the subprocesses tests start):
a killed process leaves whole files without it, and the suite writes thousands of them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator
from typing import Any

import pytest

os.environ.setdefault("AAC_FSYNC", "0")

#: the skip reasons ``pytest.importorskip`` and an ``ImportError`` give for an aac module
MISSING_AAC_MODULE = re.compile(r"(could not import|No module named) '(aac\.[\w.]+)'")


def _missing_aac_module(report: Any) -> str | None:
    if not report.skipped or not isinstance(report.longrepr, tuple):
        return None
    match = MISSING_AAC_MODULE.search(str(report.longrepr[2]))
    return match.group(2) if match else None


def _fail(report: Any, module: str) -> None:
    report.outcome = "failed"
    report.longrepr = (
        f"skipped because {module} is not installed: the test session must install it (a sibling aac package "
        "is never optional for a test: its package's pyproject.toml must require it, or the test belongs in tests/integration/<framework>)"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    module = _missing_aac_module(report)
    if module:
        _fail(report, module)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    report = yield
    module = _missing_aac_module(report)
    if module:
        _fail(report, module)
    return report
