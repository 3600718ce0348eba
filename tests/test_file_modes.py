"""Everything a run writes is readable by whoever the umask allows (issue 10): a teammate, a TensorBoard server.

A cross-package test (core's writes, torch's export, TensorBoard's event files): it runs where all are installed.

``mkstemp`` alone gives owner-only files; under umask 022 every file of the run folder and both
exports must come out 0644, every folder 0755.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from aac.core import create_accuracy_aware_training_loop, create_compressed_model
from aac.torch.testing.digits import DigitsCNN, Trainer, digits, pretrain

CONFIG = {
    "input_info": {"sample_size": [1, 1, 8, 8]},
    "compression": {
        "algorithm": "filter_pruning",
        "pruning_init": 0.1,
        "params": {"pruning_target": 0.3, "pruning_steps": 1, "filters_multiple_of": 2},
    },
    "accuracy_aware_training": {
        "mode": "adaptive_compression_level",
        "params": {
            "maximal_absolute_accuracy_degradation": 5.0,
            "initial_training_phase_epochs": 1,
            "patience_epochs": 1,
            "maximal_total_epochs": 3,
        },
    },
}


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def modes(root: Path) -> dict[str, int]:
    return {str(path.relative_to(root)): stat.S_IMODE(path.stat().st_mode) for path in root.rglob("*")}  # root: pytest's own 0700 folder


def test_run_folder_and_exports_are_0644_under_umask_022(tmp_path: Path, umask_022: None) -> None:
    torch.manual_seed(0)
    (x_train, y_train), (x_val, y_val) = digits(train=256)
    model = DigitsCNN()
    trainer = Trainer(model, (x_train, y_train), (x_val, y_val))
    baseline = pretrain(model, trainer, epochs=2)
    controller, model = create_compressed_model(model, CONFIG)
    trainer.model = model
    loop = create_accuracy_aware_training_loop(CONFIG, controller, baseline, verbose=True)
    run_dir = tmp_path / "run"
    loop.run(model, trainer.train_epoch, trainer.validate, trainer.configure_optimizers, log_dir=run_dir)
    controller.export_model(tmp_path / "exports" / "model.pt")
    controller.export_model(tmp_path / "exports" / "model.onnx")

    found = modes(tmp_path)
    files = {name for name in found if (tmp_path / name).is_file()}
    assert {
        "run/state.json",
        "run/history.json",
        "run/history.csv",
        "run/statistics.json",
        "exports/model.pt",
        "exports/model.onnx",
    } <= files
    assert any(name.startswith("run/checkpoints/best_rate_") for name in files)
    assert any(name.startswith("run/tensorboard/") for name in files)
    wrong = {name: oct(mode) for name, mode in found.items() if mode != (0o644 if name in files else 0o755)}
    assert wrong == {}
