"""Small models, data and NNCF-style training callbacks for tests, benchmarks and examples.

It imports torch (and scikit-learn for :func:`digits`), so only tests and examples import it; the
plugin never does. (aac-sparsity's ``testing`` module has the same digits helpers: each package's
tests must run with only that package installed.)
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


def batches(x: torch.Tensor, y: torch.Tensor, size: int = 64, shuffle: bool = False, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(inputs, targets)`` batches, like a DataLoader."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)) if shuffle else torch.arange(len(x))
    return [(x[order[i:i + size]], y[order[i:i + size]]) for i in range(0, len(x), size)]


class Trainer:
    """The three callbacks of the accuracy-aware loops, with NNCF's signatures, for a classifier.

    ``train_epoch`` calls ``compression_ctrl.scheduler.step()`` before each batch and adds
    ``compression_ctrl.loss()`` to the task loss; ``validate`` returns accuracy in percent.
    """

    def __init__(self, model: nn.Module, train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, torch.Tensor],
                 lr: float = 0.05, batch_size: int = 64) -> None:
        self.model = model
        self.train_batches = batches(*train, size=batch_size, shuffle=True)
        self.val_batches = batches(*val, size=256)
        self.lr = lr
        self.epochs_trained = 0

    def train_epoch(self, compression_ctrl: Any, model: nn.Module, epoch: int | None = None, optimizer: Any = None,
                    lr_scheduler: Any = None) -> float:
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


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand, 3x3 depthwise, 1x1 project, residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int = 2) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """A very small MobileNetV2 with torchvision's module names, so NNCF scopes such as
    ``MobileNetV2/Sequential[features]/Sequential[0]/Conv2d[0]`` (NNCF's config example) resolve.

    ``features[0]`` is a stride-4 stem so that 224x224 inputs stay cheap.
    """

    def __init__(self, classes: int = 10, width: int = 8) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, width, 3, 4, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU6(inplace=True)),
            InvertedResidual(width, width, 1),
            InvertedResidual(width, 2 * width, 2),
            InvertedResidual(2 * width, 2 * width, 1),
            nn.Sequential(nn.Conv2d(2 * width, 4 * width, 1, bias=False), nn.BatchNorm2d(4 * width), nn.ReLU6(inplace=True)),
        )
        self.classifier = nn.Sequential(nn.Dropout(0.1), nn.Linear(4 * width, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))
