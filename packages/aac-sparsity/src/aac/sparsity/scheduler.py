"""The sparsity scheduler: moves an algorithm's level along its schedule and freezes its masks.

It is framework-neutral: it drives any :class:`LevelTarget` (the torch algorithms, and later the
TensorFlow ones) through three calls - ``set_level``, ``freeze`` and ``measured_level``.

Timing follows NNCF: ``epoch_step`` is called at the *start* of every epoch (epoch 0 first), and the
level of epoch ``e`` is the schedule at ``e``; ``sparsity_freeze_epoch`` freezes the masks at the
start of that epoch. With ``update_per_optimizer_step`` the level also moves at every ``step`` to
the schedule at the fractional epoch ``e + i / steps_per_epoch``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

from aac.core.api import CompressionScheduler
from aac.sparsity.schedules import exponential_level, multistep, polynomial
from aac.sparsity.settings import SparsitySettings

logger = logging.getLogger("aac.sparsity")


class LevelTarget(Protocol):
    """What the scheduler drives."""

    @property
    def frozen(self) -> bool: ...

    def set_level(self, level: float) -> None:
        """Make ``level`` the sparsity level of the sparsified weights (masks recomputed or loss retargeted)."""

    def freeze(self) -> None:
        """Stop changing the masks from now on."""

    def measured_level(self) -> float:
        """The fraction of sparsified weights that are zero right now (the adaptive schedule reads it)."""


class SparsityScheduler(CompressionScheduler):
    """Applies the configured schedule (polynomial, exponential, multistep or adaptive) to a :class:`LevelTarget`."""

    def __init__(self, target: LevelTarget, settings: SparsitySettings) -> None:
        super().__init__()
        self.target = target
        self.settings = settings
        #: optimizer steps per epoch: configured, or counted during the first epoch
        self.steps_per_epoch: int | None = settings.steps_per_epoch
        self._steps_in_epoch = 0
        self._adaptive_level = settings.initial_level
        self._bad_epochs = 0

    # -- the schedule ------------------------------------------------------------------
    @property
    def target_level(self) -> float:
        return self.settings.target_level

    def level_at(self, epoch: float) -> float:
        """The scheduled level at a (fractional) epoch; the adaptive schedule's current level."""
        return round(self._level_at(epoch), 12)  # no 0.09999999999999998 in statistics

    def _level_at(self, epoch: float) -> float:
        s = self.settings
        if epoch < 0:
            return s.initial_level
        if s.schedule == "polynomial":
            return polynomial(s.sparsity_init, s.sparsity_target, epoch, s.sparsity_target_epoch, s.power, s.concave)
        if s.schedule == "exponential":
            return exponential_level(s.sparsity_init, s.sparsity_target, epoch, s.sparsity_target_epoch)
        if s.schedule == "multistep":
            return multistep(s.multistep_steps, s.multistep_sparsity_levels, epoch)
        return self._adaptive_level

    @property
    def current_level(self) -> float:
        """The level of the current position (epoch, plus the step inside it when updating per step)."""
        return self.level_at(self._position())

    def _position(self) -> float:
        if self.current_epoch < 0:
            return -1.0
        if self._per_step and self.steps_per_epoch and self._steps_in_epoch > 0:
            inside = min(self._steps_in_epoch - 1, self.steps_per_epoch - 1)
            return self.current_epoch + inside / self.steps_per_epoch
        return float(self.current_epoch)

    @property
    def _per_step(self) -> bool:
        return self.settings.update_per_optimizer_step and self.settings.schedule != "adaptive"

    # -- events ------------------------------------------------------------------------
    def _on_step(self) -> None:
        self._steps_in_epoch += 1
        if self._per_step and self.steps_per_epoch and self.current_epoch >= 0 and not self.target.frozen:
            self.target.set_level(self.current_level)

    def _on_epoch(self) -> None:
        self._count_steps()
        if self.settings.schedule == "adaptive" and self.current_epoch > 0:
            self._adapt()
        if not self.target.frozen:
            self.target.set_level(self.current_level)
        if self.current_epoch >= self.settings.sparsity_freeze_epoch and not self.target.frozen:
            self.target.freeze()

    def _count_steps(self) -> None:
        counted, self._steps_in_epoch = self._steps_in_epoch, 0
        if not self._per_step or counted == 0:
            return
        if self.steps_per_epoch is None:
            self.steps_per_epoch = counted
            logger.info("[aac] sparsity schedule: counted %d optimizer steps per epoch; the level now moves at every step", counted)
        elif counted != self.steps_per_epoch:
            logger.warning(
                "[aac] sparsity schedule: params.steps_per_epoch is %d but the last epoch had %d scheduler.step() calls; "
                "the level follows the configured value",
                self.steps_per_epoch,
                counted,
            )

    def _adapt(self) -> None:
        """Raise the level once the measured sparsity has kept up with it for ``patience`` epochs."""
        s = self.settings
        if self.target.measured_level() >= self._adaptive_level - s.adaptive_eps:
            self._bad_epochs += 1
        else:
            self._bad_epochs = 0
        if self._bad_epochs >= s.patience:
            self._bad_epochs = 0
            self._adaptive_level = min(self._adaptive_level + s.adaptive_step, s.sparsity_target)

    # -- state -------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {
            **super().get_state(),
            "steps_per_epoch": self.steps_per_epoch,
            "steps_in_epoch": self._steps_in_epoch,
            "adaptive_level": self._adaptive_level,
            "bad_epochs": self._bad_epochs,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        super().load_state(state)
        self.steps_per_epoch = state.get("steps_per_epoch", self.steps_per_epoch)
        self._steps_in_epoch = int(state.get("steps_in_epoch", 0))
        self._adaptive_level = float(state.get("adaptive_level", self._adaptive_level))
        self._bad_epochs = int(state.get("bad_epochs", 0))
