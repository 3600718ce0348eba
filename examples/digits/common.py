"""What the digits demo does the same way on every framework: config, data, the report of a run."""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


def load_config(args: argparse.Namespace, sample_size: list[int] | None = None) -> Any:
    """The config file, with the command line's overrides of the search settings.

    :param sample_size: replaces ``input_info.sample_size`` (the file has PyTorch's NCHW layout; Keras
        models take channels last).
    """
    from aac.core import load_config as load

    config = copy.deepcopy(dict(load(args.config)))
    overrides = {"initial_training_phase_epochs": args.initial_epochs, "patience_epochs": args.patience,
                 "maximal_total_epochs": args.max_epochs}
    config["accuracy_aware_training"]["params"].update({k: v for k, v in overrides.items() if v is not None})
    if sample_size is not None:
        config["input_info"] = {**config.get("input_info", {}), "sample_size": list(sample_size)}
    return load(config)


@dataclass(frozen=True)
class Digits:
    """sklearn's 8x8 digits scaled to [0, 1] (images ``[N, 8, 8]`` float32, labels int64), split 80/20, stratified."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def load_data(seed: int) -> Digits:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    x_train, x_val, y_train, y_val = train_test_split(images, labels, test_size=0.2, random_state=seed, stratify=labels)
    return Digits(x_train, y_train, x_val, y_val)


@dataclass
class DemoResult:
    """What a framework's run hands back for the report (accuracies in percent)."""

    uncompressed_accuracy: float
    pruned_accuracy: float
    compression_rate: float
    parameters: tuple[int, int]  # full, pruned (weights and biases; batch-norm running statistics not counted)
    statistics: str  # the controller's final tables
    loop_statistics: str  # the search's summary
    #: files the run wrote into the run folder besides the loop's own: name -> what it is
    files: dict[str, str] = field(default_factory=dict)


#: what the accuracy-aware loop writes into every run folder
LOOP_FILES = {
    "history.json": "search history (also history.csv)",
    "search.png": "plot of the search",
    "tensorboard": "TensorBoard events (tensorboard --logdir ...)",
}


def write_report(result: DemoResult, framework: str, out: Path) -> None:
    """final_table.txt, summary.json and the closing lines on the console."""
    table = "\n\n".join([result.statistics, result.loop_statistics])
    (out / "final_table.txt").write_text(table + "\n")
    full, pruned = result.parameters
    summary = {"framework": framework, "uncompressed_accuracy": result.uncompressed_accuracy,
               "pruned_accuracy": result.pruned_accuracy, "compression_rate": result.compression_rate,
               "parameters": {"full": full, "pruned": pruned}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(table)
    print(f"\n[demo] accuracy {result.uncompressed_accuracy:.2f}% -> {result.pruned_accuracy:.2f}% at compression rate "
          f"{result.compression_rate:.3f}; parameters of the training model {full} -> of the stripped model {pruned}")
    print(f"[demo] everything is in {out}:")
    files = {**result.files, **LOOP_FILES, "final_table.txt": "final statistics tables", "summary.json": "headline numbers"}
    for name, what in files.items():
        print(f"  {out / name}  - {what}")
