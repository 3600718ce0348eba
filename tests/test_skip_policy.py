"""The root conftest turns a skip for a missing aac package into a failure (and leaves other skips alone).

The inner test modules skip with the reason ``pytest.importorskip`` gives for a missing module
(``could not import 'aac.x': No module named 'aac.x'``), at module level and inside a test: that reason
is what the conftest reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
MISSING = "could not import '{0}': No module named '{0}'"


def test_a_missing_sibling_fails_and_other_skips_stay_skips(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(ROOT_CONFTEST.read_text(encoding="utf-8"))
    module_level = MISSING.format("aac.not_installed_module")
    inside = MISSING.format("aac.another_missing_one")
    pytester.makepyfile(
        test_module_level=f"import pytest\npytest.skip({module_level!r}, allow_module_level=True)\ndef test_a():\n    pass\n",
        test_inside=f"import pytest\ndef test_b():\n    pytest.skip({inside!r})\ndef test_c():\n    pytest.skip('needs a GPU')\n",
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--continue-on-collection-errors")
    result.assert_outcomes(failed=1, skipped=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*skipped because aac.not_installed_module is not installed*", "*skipped because aac.another_missing_one is not installed*"]
    )
