"""sklearn's digits as tensors, a small CNN for them, and NNCF-style training callbacks.

Shared by the tests and benchmarks of every torch algorithm package (they all depend on aac-torch).
:func:`digits` needs scikit-learn.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


class DigitsCNN(nn.Module):
    """A small CNN for 8x8 one-channel digits: conv-bn-relu twice, then a linear classifier."""

    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.fc = nn.Linear(2 * width * 16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(x, 1))


def digits(train: int | None = None, seed: int = 0) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """scikit-learn's bundled digits as ``((x_train, y_train), (x_val, y_val))``, ``x`` shaped ``[N, 1, 8, 8]`` in ``[0, 1]``.

    A fixed 75/25 split (shuffled with ``seed``); ``train`` caps the training samples.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    split = int(0.75 * len(x))
    end = split if train is None else min(split, train)
    return (x[:end], y[:end]), (x[split:], y[split:])


def batches(
    x: torch.Tensor, y: torch.Tensor, size: int = 64, shuffle: bool = False, seed: int = 0
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(inputs, targets)`` batches, like a DataLoader."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)) if shuffle else torch.arange(len(x))
    return [(x[order[i : i + size]], y[order[i : i + size]]) for i in range(0, len(x), size)]


class Trainer:
    """The three callbacks of the accuracy-aware loops, with NNCF's signatures, for a classifier.

    ``train_epoch`` calls ``compression_ctrl.scheduler.step()`` before each batch and adds
    ``compression_ctrl.loss()`` to the task loss; ``validate`` returns accuracy in percent.
    """

    def __init__(
        self,
        model: nn.Module,
        train: tuple[torch.Tensor, torch.Tensor],
        val: tuple[torch.Tensor, torch.Tensor],
        lr: float = 0.05,
        batch_size: int = 64,
    ) -> None:
        self.model = model
        self.train_batches = batches(*train, size=batch_size, shuffle=True)
        self.val_batches = batches(*val, size=256)
        self.lr = lr
        self.epochs_trained = 0

    def train_epoch(
        self, compression_ctrl: Any, model: nn.Module, epoch: int | None = None, optimizer: Any = None, lr_scheduler: Any = None
    ) -> float:
        model.train()
        total = 0.0
        for x, y in self.train_batches:
            compression_ctrl.scheduler.step()
            loss = F.cross_entropy(model(x), y) + compression_ctrl.loss()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
        self.epochs_trained += 1
        return total / len(self.train_batches)

    @torch.no_grad()
    def validate(self, model: nn.Module, epoch: int | None = None) -> float:
        model.eval()
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in self.val_batches)
        return 100.0 * correct / sum(len(y) for _, y in self.val_batches)

    def configure_optimizers(self) -> tuple[torch.optim.Optimizer, None]:
        return torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=0.9), None

    def inputs(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The training batches (for ``controller.initialize``)."""
        return iter(self.train_batches)


def pretrain(model: nn.Module, trainer: Trainer, epochs: int = 3) -> float:
    """Train the uncompressed model for a few epochs; returns its validation accuracy."""
    optimizer, _ = trainer.configure_optimizers()

    class _NoCompression:
        class scheduler:
            @staticmethod
            def step() -> None:
                pass

        @staticmethod
        def loss() -> float:
            return 0.0

    for _ in range(epochs):
        trainer.train_epoch(_NoCompression, model, optimizer=optimizer)
    return trainer.validate(model)
