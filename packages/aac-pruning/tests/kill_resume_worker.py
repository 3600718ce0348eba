"""One accuracy-aware filter-pruning run on digits, killed (SIGKILL) right after its n-th checkpoint write.

    python kill_resume_worker.py LOG_DIR RESULT_JSON [KILL_AT]

Without KILL_AT the run goes to the end (or resumes the run in LOG_DIR) and writes the result - rate,
metric, epochs, checkpoint writes and a hash of the weights - to RESULT_JSON. With it,
``dump_checkpoint_fn`` kills the process after that many checkpoint writes, as a crash or an
out-of-memory kill would.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import torch
from sklearn.datasets import load_digits
from torch.nn import functional as F

from aac.core import create_accuracy_aware_training_loop, create_compressed_model
from aac.torch.testing.models import DigitsNet

CONFIG = {
    "input_info": {"sample_size": [1, 1, 8, 8]},
    "compression": {
        "algorithm": "filter_pruning",
        "pruning_init": 0.1,
        "params": {
            "pruning_target": 0.2,
            "pruning_steps": 2,
            "filters_multiple_of": 2,
            "prune_first_conv": True,
            "prune_downsample_convs": True,
        },
    },
    "accuracy_aware_training": {
        "mode": "adaptive_compression_level",
        "params": {
            "maximal_absolute_accuracy_degradation": 3.0,
            "initial_training_phase_epochs": 2,
            "patience_epochs": 2,
            "maximal_total_epochs": 10,
        },
    },
}


def main(log_dir: str, result: str, kill_at: int | None) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = load_digits()
    x = torch.tensor(data.images[:600], dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target[:600])
    batches = [(x[i : i + 50], y[i : i + 50]) for i in range(0, 450, 50)]

    def train_epoch(compression_ctrl: Any, model: torch.nn.Module, epoch: int, optimizer: Any, lr_scheduler: Any) -> None:
        model.train()
        order = torch.randperm(450)  # the loop saves and restores the RNG: a resumed run draws the same orders
        for start in range(0, 450, 50):
            inputs, targets = x[order[start : start + 50]], y[order[start : start + 50]]
            if compression_ctrl is not None:
                compression_ctrl.scheduler.step()
            loss = F.cross_entropy(model(inputs), targets) + (compression_ctrl.loss() if compression_ctrl is not None else 0.0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def validate(model: torch.nn.Module, epoch: int) -> float:
        model.eval()
        with torch.no_grad():
            return 100.0 * float((model(x[450:]).argmax(1) == y[450:]).float().mean())

    model = DigitsNet(width=16)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(10):
        train_epoch(None, model, 0, optimizer, None)
    uncompressed = validate(model, 0)
    controller, model = create_compressed_model(model, CONFIG)
    controller.initialize(batches)
    writes = 0

    def dump_checkpoint_fn(model: torch.nn.Module, controller: object, runner: object, save_dir: str) -> None:
        nonlocal writes
        writes += 1
        if writes == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    loop = create_accuracy_aware_training_loop(CONFIG, controller, uncompressed, verbose=False)
    loop.run(
        model,
        train_epoch,
        validate,
        lambda: (torch.optim.Adam(model.parameters(), lr=3e-3), None),
        dump_checkpoint_fn=dump_checkpoint_fn,
        log_dir=log_dir,
    )
    weights = hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in model.state_dict().values())).hexdigest()
    stats = loop.statistics
    Path(result).write_text(
        json.dumps(
            {
                "rate": stats.compression_rate,
                "metric": stats.compressed_accuracy,
                "epochs": stats.total_epochs,
                "weights": weights,
                "writes": writes,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None)
