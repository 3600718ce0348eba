"""The PyTorch digits demo under ``torchrun`` with two CPU processes (gloo, DistributedDataParallel), short training.

Both processes must take part (each trains on its shard), rank 0 alone must report, and what it reports
must hold: the stripped ONNX file loads in onnxruntime and scores the test accuracy summary.json gives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"
PROCESSES = 2
#: a couple of epochs everywhere: the run takes well under a minute
QUICK = ["--epochs", "2", "--initial-epochs", "1", "--patience", "1", "--max-epochs", "2", "--latency-runs", "2"]
#: a hang guard (a process stuck in a collective would otherwise wait for gloo's 30-minute timeout)
TIMEOUT_S = 240


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("torchrun") / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(PROCESSES),
        str(DIGITS / "run.py"),
        "--out",
        str(out),
        *QUICK,
    ]
    # its own session: on a timeout the launcher and the workers it started are killed together
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=out.parent,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"torchrun did not finish in {TIMEOUT_S} s:\n{stdout[-4000:]}\n{stderr[-4000:]}")
    assert process.returncode == 0, f"torchrun failed:\n{stdout[-4000:]}\n{stderr[-4000:]}"
    return {"out": out, "stdout": stdout, "summary": json.loads((out / "summary.json").read_text())}


def test_both_processes_trained_each_on_its_shard(run: dict[str, Any]) -> None:
    summary = run["summary"]
    shard = summary["images"]["train"] // PROCESSES
    for rank in range(PROCESSES):
        assert f"[demo] process {rank}/{PROCESSES} on cpu: trains on {shard} of {summary['images']['train']}" in run["stdout"]
    # gathered from every process after the search, so each one was alive and in the group to the end
    assert summary["processes"] == {
        "world_size": PROCESSES,
        "backend": "gloo",
        "device": "cpu",
        "train_images_per_process": [shard] * PROCESSES,
    }


def test_rank_zero_alone_reports_and_writes(run: dict[str, Any]) -> None:
    stdout, out = run["stdout"], run["out"]
    assert stdout.count("[demo] test accuracy (") == 1
    assert stdout.count("[demo] the run folder") == 1
    loop_row = next(line for line in (out / "final_table.txt").read_text().splitlines() if "stopped because" in line)
    assert stdout.count(loop_row) == 1  # the loop's final table: its console reporter runs on rank 0 only
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == set(run["summary"]["files"])


def test_the_stripped_onnx_runs_in_onnxruntime_and_scores_the_reported_test_accuracy(
    run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime

    monkeypatch.syspath_prepend(str(DIGITS))
    from common import load_data

    data = load_data(seed=0)  # the demo's default seed: the same split it tested on
    summary = run["summary"]
    for name, model in (("digits_pruned.onnx", "compressed"), ("digits_original.onnx", "original")):
        session = onnxruntime.InferenceSession(str(run["out"] / name), providers=["CPUExecutionProvider"])
        (logits,) = session.run(None, {session.get_inputs()[0].name: data.x_test[:, None]})
        accuracy = 100.0 * int(np.sum(np.argmax(logits, axis=1) == data.y_test)) / len(data.y_test)
        assert accuracy == pytest.approx(summary["test_accuracy"][model], abs=100.0 / len(data.y_test)), name  # one image


def test_summary_numbers_agree_with_the_search_and_with_each_other(run: dict[str, Any]) -> None:
    summary = run["summary"]
    search = json.loads((run["out"] / "statistics.json").read_text())
    assert summary["compression_rate"] == search["compression_rate"] > 0
    assert summary["validation_accuracy"] == {"original": search["uncompressed_accuracy"], "compressed": search["compressed_accuracy"]}
    for quantity in ("parameters", "macs"):
        assert 0 < summary[quantity]["compressed"] < summary[quantity]["original"], quantity
    for batch in (1, 256):
        assert all(summary["latency_ms"][f"batch_{batch}"][model] > 0 for model in ("original", "compressed"))
