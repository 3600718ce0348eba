"""The digits demo in one process, with short training: what its report says and what its run folder holds.

The demo runs as a user runs it (a subprocess of ``examples/digits/run.py``); the assertions are about the
report, not about how well a few epochs train.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"
#: a couple of epochs everywhere: the whole run takes a few seconds
QUICK = ["--epochs", "2", "--initial-epochs", "1", "--patience", "1", "--max-epochs", "2", "--latency-runs", "2"]
#: a hang guard, far above the few seconds the run needs
TIMEOUT_S = 240


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("demo") / "run"
    done = subprocess.run(
        [sys.executable, str(DIGITS / "run.py"), "--out", str(out), *QUICK],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=out.parent,
    )
    assert done.returncode == 0, f"the demo failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return {"out": out, "stdout": done.stdout, "stderr": done.stderr, "summary": json.loads((out / "summary.json").read_text())}


def test_the_closing_lines_give_test_accuracy_before_and_after_as_in_summary_json(demo: dict[str, Any]) -> None:
    summary = demo["summary"]
    found = re.search(
        r"^\[demo\] test accuracy \((\d+) held-out images, unseen by the search\): ([\d.]+)% -> ([\d.]+)%$", demo["stdout"], re.M
    )
    assert found, "no line with the test accuracy before and after"
    assert int(found.group(1)) == summary["images"]["test"]
    assert (found.group(2), found.group(3)) == (
        f"{summary['test_accuracy']['original']:.2f}",
        f"{summary['test_accuracy']['compressed']:.2f}",
    )
    assert summary["images"]["test"] == summary["images"]["validation"] == 360  # 20% each of sklearn's 1797 digits


def test_the_closing_lines_compare_size_work_and_latency_of_original_and_stripped_model(demo: dict[str, Any]) -> None:
    summary, stdout = demo["summary"], demo["stdout"]
    for quantity in ("parameters", "macs"):
        numbers = summary[quantity]
        assert 0 < numbers["compressed"] < numbers["original"], f"the stripped model is not smaller in {quantity}: {numbers}"
    assert f"[demo] parameters: {summary['parameters']['original']:,} -> {summary['parameters']['compressed']:,}" in stdout
    assert f"[demo] MACs per image: {summary['macs']['original']:,} -> {summary['macs']['compressed']:,}" in stdout
    latency = summary["latency_ms"]
    assert latency["measured_with"].startswith("onnxruntime") and latency["runs"] == 2
    for batch in (1, 256):
        assert all(latency[f"batch_{batch}"][model] > 0 for model in ("original", "compressed"))
        assert re.search(rf"^\[demo\]   batch +{batch}: +[\d.]+ ms -> +[\d.]+ ms", stdout, re.M)


def test_each_table_is_printed_exactly_once(demo: dict[str, Any]) -> None:
    """The loop prints its final table; the demo prints the controller's statistics; neither twice."""
    tables = (demo["out"] / "final_table.txt").read_text()
    loop_row = next(line for line in tables.splitlines() if "stopped because" in line)
    assert demo["stdout"].count(loop_row) == 1
    assert demo["stdout"].count("Statistics of filter_pruning") == 1


def test_the_printed_file_list_is_every_file_of_the_run_folder_described(demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(DIGITS))
    from report import UNDESCRIBED

    out, stdout = demo["out"], demo["stdout"]
    listing = stdout.split(f"[demo] the run folder {out} holds:\n", 1)[1].splitlines()
    printed = dict(line.strip().split("  ", 1) for line in listing)
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert set(printed) == on_disk == set(demo["summary"]["files"])
    assert {"digits_original.onnx", "digits_pruned.onnx", "digits_pruned.pt", "state.json", "summary.json"} <= on_disk
    assert {path: what.strip() for path, what in printed.items()} == demo["summary"]["files"]
    undescribed = [path for path, what in printed.items() if UNDESCRIBED in what]
    assert not undescribed, f"add a description of these files to examples/digits: {undescribed}"


def test_the_demo_raises_no_warning(demo: dict[str, Any]) -> None:
    warnings = [line for line in (demo["stdout"] + demo["stderr"]).splitlines() if "Warning" in line]
    assert not warnings, "\n".join(warnings)
