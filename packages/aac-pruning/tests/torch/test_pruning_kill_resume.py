"""A real process, killed with SIGKILL right after a checkpoint write, resumes to the identical result.

The worker (``kill_resume_worker.py``) runs the adaptive loop with filter pruning on digits; its
``dump_checkpoint_fn`` kills it after the n-th write - every epoch's training checkpoint and every new
best model, probes' included. Rerun on the same folder, it must end with the same rate, metric, epochs
and weights (a hash of every tensor) as a run that was never killed. CI samples the kill points;
``benchmarks/kill_resume.py`` sweeps all of them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).parents[1] / "kill_resume_worker.py"  # in tests/: benchmarks/kill_resume.py runs it too


def run_worker(log_dir: Path, result: Path, kill_at: int | None = None) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(WORKER), str(log_dir), str(result), *([] if kill_at is None else [str(kill_at)])]
    return subprocess.run(args, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONHASHSEED": "0"})


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("reference")
    done = run_worker(folder / "run", folder / "result.json")
    assert done.returncode == 0, done.stderr
    return json.loads((folder / "result.json").read_text())


def sampled(writes: int) -> list[int]:
    """The first write, two in the middle and the last (the final re-validation comes after it)."""
    return sorted({1, writes // 3, 2 * writes // 3, writes})


def test_the_reference_run_searches(reference: dict) -> None:
    assert reference["writes"] >= 8 and reference["epochs"] >= 3


@pytest.mark.parametrize("point", range(4))
def test_a_kill_after_a_checkpoint_write_resumes_to_the_identical_result(reference: dict, tmp_path: Path, point: int) -> None:
    kill_at = sampled(reference["writes"])[point]
    killed = run_worker(tmp_path / "run", tmp_path / "killed.json", kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (tmp_path / "killed.json").exists()
    resumed = run_worker(tmp_path / "run", tmp_path / "resumed.json")
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads((tmp_path / "resumed.json").read_text())
    for key in ("rate", "metric", "epochs", "weights"):
        assert result[key] == reference[key], f"killed after write {kill_at}: {key} differs"
    leftovers = [p.name for p in (tmp_path / "run" / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
