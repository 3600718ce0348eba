"""The root conftest turns a skip for a missing aac package into a failure (and leaves other skips alone)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


def test_a_missing_sibling_fails_and_other_skips_stay_skips(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(ROOT_CONFTEST.read_text(encoding="utf-8"))
    pytester.makepyfile(
        test_module_level="import pytest\npytest.importorskip('aac.not_installed_module')\ndef test_a():\n    pass\n",
        test_inside="import pytest\n"
        "def test_b():\n    pytest.importorskip('aac.another_missing_one')\n"
        "def test_c():\n    pytest.skip('needs a GPU')\n",
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--continue-on-collection-errors")
    result.assert_outcomes(failed=1, skipped=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*skipped because aac.not_installed_module is not installed*", "*skipped because aac.another_missing_one is not installed*"]
    )
