"""The demo's report: what a framework's run measured, the closing lines, ``summary.json`` and the run folder's files."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import Digits

#: what the accuracy-aware loop writes into every run folder (patterns of paths relative to it)
LOOP_FILES = {
    "state.json": "the search's state: run again with the same --out to resume an interrupted run",
    "checkpoints/best_rate_*": "best weights and compression state at the rate in its name",
    "checkpoints/best_full_*": "best weights and compression state once fully compressed (early exit)",
    "checkpoints/best_partial_*": "best weights and compression state before the schedule completed (early exit)",
    "checkpoints/last_epoch*": "training state of the latest epoch, for resuming",
    "history.json": "every epoch and probe of the search",
    "history.csv": "the same history as a table",
    "statistics.json": "the search's result (its final table as JSON)",
    "search.png": "plot of the search: rate and validation accuracy per epoch, the probes, the tolerable accuracy",
    "tensorboard/*": "TensorBoard events (tensorboard --logdir <run folder>/tensorboard)",
}
FINAL_TABLE = "final_table.txt"
SUMMARY = "summary.json"
REPORT_FILES = {FINAL_TABLE: "the compression statistics and the search's final table", SUMMARY: "the numbers of this report"}
#: the description of a file no pattern matches (the report test fails on it)
UNDESCRIBED = "not described by the demo"


@dataclass(frozen=True)
class Comparison:
    """One quantity of the original model and of the compressed, stripped one."""

    original: float
    compressed: float

    def to_dict(self) -> dict[str, float]:
        return {"original": self.original, "compressed": self.compressed}

    @property
    def ratio(self) -> float:
        """original / compressed: how many times smaller (or faster) the compressed model is."""
        return self.original / self.compressed if self.compressed else float("inf")


@dataclass
class DemoResult:
    """What a framework's run hands to the report (accuracies in percent, latencies in milliseconds)."""

    test_accuracy: Comparison
    validation_accuracy: Comparison  # the search's own numbers: it chose the rate on them
    compression_rate: float
    parameters: Comparison
    macs: Comparison  # multiply-accumulates of one image
    macs_counted_by: str
    latency_ms: dict[int, Comparison]  # batch size -> median latency
    latency_measured_with: str
    latency_runs: int
    statistics: str  # the controller's compression statistics
    loop_statistics: str  # the search's final table (the loop prints it itself)
    #: the framework's own files in the run folder: path pattern -> what it is
    files: dict[str, str]
    #: how the run was spread over processes: world_size, backend (None for one process), device,
    #: train_images_per_process (gathered from every process)
    processes: dict[str, Any]


def describe_run_folder(out: Path, descriptions: dict[str, str]) -> dict[str, str]:
    """Every file under ``out`` (relative POSIX path) with the description of the first pattern it matches."""
    paths = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    return {path: next((what for pattern, what in descriptions.items() if fnmatch.fnmatch(path, pattern)), UNDESCRIBED) for path in paths}


def write_report(result: DemoResult, framework: str, data: Digits, out: Path) -> None:
    """final_table.txt and summary.json in ``out``; on the console the compression statistics and the closing lines.

    The search's final table is not printed here: the loop's console reporter has printed it already.
    """
    (out / FINAL_TABLE).write_text(f"{result.statistics}\n\n{result.loop_statistics}\n")
    files = describe_run_folder(out, {**result.files, **LOOP_FILES, **REPORT_FILES})
    files[SUMMARY] = REPORT_FILES[SUMMARY]
    summary = {
        "framework": framework,
        "images": {"train": len(data.y_train), "validation": len(data.y_val), "test": len(data.y_test)},
        "compression_rate": result.compression_rate,
        "test_accuracy": result.test_accuracy.to_dict(),
        "validation_accuracy": result.validation_accuracy.to_dict(),
        "parameters": result.parameters.to_dict(),
        "macs": {**result.macs.to_dict(), "counted_by": result.macs_counted_by},
        "latency_ms": {
            "measured_with": result.latency_measured_with,
            "runs": result.latency_runs,
            **{f"batch_{batch}": times.to_dict() for batch, times in result.latency_ms.items()},
        },
        "processes": result.processes,
        "files": dict(sorted(files.items())),
    }
    (out / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    print(result.statistics)
    print("\n".join(closing_lines(result, data, summary["files"], out)))


def closing_lines(result: DemoResult, data: Digits, files: dict[str, str], out: Path) -> list[str]:
    test, val, params, macs = result.test_accuracy, result.validation_accuracy, result.parameters, result.macs
    lines = [
        "",
        f"[demo] test accuracy ({len(data.y_test)} held-out images, unseen by the search): {test.original:.2f}% -> {test.compressed:.2f}%",
        f"[demo] validation accuracy ({len(data.y_val)} images, on which the search chose the rate): "
        f"{val.original:.2f}% -> {val.compressed:.2f}%",
        f"[demo] compression rate {result.compression_rate:.3f}",
        f"[demo] parameters: {params.original:,.0f} -> {params.compressed:,.0f} ({params.ratio:.2f}x fewer)",
        f"[demo] MACs per image: {macs.original:,.0f} -> {macs.compressed:,.0f} ({macs.ratio:.2f}x fewer; {result.macs_counted_by})",
        f"[demo] latency, original -> compressed ({result.latency_measured_with}; median of {result.latency_runs} runs):",
        *(
            f"[demo]   batch {batch:4d}: {times.original:8.3f} ms -> {times.compressed:8.3f} ms ({times.ratio:.2f}x faster)"
            for batch, times in result.latency_ms.items()
        ),
    ]
    processes = result.processes
    if processes["world_size"] > 1:
        shards = " + ".join(str(images) for images in processes["train_images_per_process"])
        lines.append(
            f"[demo] trained by {processes['world_size']} processes ({processes['backend']}, {processes['device']}) "
            f"on shards of {shards} training images per epoch"
        )
    width = max(len(path) for path in files)
    lines.append(f"[demo] the run folder {out} holds:")
    lines += [f"  {path:<{width}}  {what}" for path, what in files.items()]
    return lines
