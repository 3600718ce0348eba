"""The optimizer side of staged quantization for torch training scripts, as NNCF's staged sample had it.

The quantization section's ``params`` switch quantizers on at given epochs (the controller's scheduler
does that); the same ``params`` also describe how the sample trained, which these helpers reproduce::

    optimizer = make_optimizer(model.parameters(), config)          # Adam(base_lr, weight_decay=base_wd)
    lr_schedule = PolyLRDropScheduler(optimizer, config)
    accumulate = GradientAccumulator(optimizer, config)             # batch_multiplier
    for epoch in range(epochs):
        controller.scheduler.epoch_step()
        for i, (x, y) in enumerate(loader):
            controller.scheduler.step()
            accumulate(loss_fn(model(x), y))                         # backward; a step every batch_multiplier batches
            lr_schedule.step(i / len(loader))
        lr_schedule.epoch_step()

Unlike NNCF's sample, :class:`GradientAccumulator` averages the accumulated gradients and steps after
the last batch of a group (the sample cleared them before each step and so kept one batch's).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from aac.quant.settings import StagedSettings
from aac.quant.staged import OptimizerSchedule, staged_settings


def make_optimizer(parameters: Iterable[Any], config: Mapping[str, Any] | StagedSettings) -> torch.optim.Adam:
    """Adam with ``base_lr`` and ``base_wd`` (NNCF's sample's optimizer for staged quantization)."""
    settings = staged_settings(config)
    return torch.optim.Adam(parameters, lr=settings.base_lr, weight_decay=settings.base_wd)


class PolyLRDropScheduler:
    """Sets the optimizer's learning rate and weight decay per :class:`aac.quant.staged.OptimizerSchedule`.

    ``step(fraction)`` is called after each batch with the fraction of the epoch done, ``epoch_step()`` at
    the end of each epoch; ``state_dict``/``load_state_dict`` resume it.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config: Mapping[str, Any] | StagedSettings) -> None:
        self.optimizer = optimizer
        self.schedule = OptimizerSchedule(staged_settings(config))
        self.last_epoch = 0

    def step(self, epoch_fraction: float = 0.0) -> None:
        epoch = self.last_epoch + epoch_fraction
        rate, decay = self.schedule.learning_rate(epoch), self.schedule.weight_decay(epoch)
        for group in self.optimizer.param_groups:
            if rate is not None:
                group["lr"] = rate
            if decay is not None:
                group["weight_decay"] = decay

    def epoch_step(self, epoch: int | None = None) -> None:
        self.last_epoch = (self.last_epoch if epoch is None else epoch) + 1

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.last_epoch = int(state["last_epoch"])


class GradientAccumulator:
    """``batch_multiplier``: backward on every batch, an optimizer step (and zeroed gradients) every ``batch_multiplier`` batches.

    Each loss is divided by ``batch_multiplier``, so a step sees the mean gradient of its batches.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config: Mapping[str, Any] | StagedSettings) -> None:
        self.optimizer = optimizer
        self.batch_multiplier = max(1, staged_settings(config).batch_multiplier)
        self.batches = 0

    def __call__(self, loss: torch.Tensor) -> bool:
        """Backward ``loss``; True if this batch completed a group and the optimizer stepped."""
        (loss / self.batch_multiplier).backward()
        self.batches += 1
        if self.batches % self.batch_multiplier:
            return False
        self.optimizer.step()
        self.optimizer.zero_grad()
        return True
