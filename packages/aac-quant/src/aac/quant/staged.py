"""Staged quantization (the ``params`` of a quantization section), framework-neutral.

NNCF's staged scheduler trains the model in float first and switches quantizers on at given epochs:
activations at ``activations_quant_start_epoch``, weights at ``weights_quant_start_epoch`` (both 1 by
default: the first epoch is float). When a group switches on, the ranges are initialized again from
the data given to ``initialize()``, since the float epochs moved the weights and activations.

NNCF's staged training *sample* also dropped the learning rate and weight decay on a schedule and
accumulated gradients; :class:`OptimizerSchedule` is that schedule's arithmetic, which the framework
helpers (``aac.quant.torch.staged``, ``aac.quant.tf.staged``) apply to an optimizer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aac.core.api import CompressionScheduler, CompressionStage
from aac.core.errors import AacError
from aac.quant.settings import ACTIVATIONS, WEIGHTS, StagedSettings

#: NNCF's exponent of the polynomial learning-rate drop
LR_DROP_POWER = 2.1


class Switchable(Protocol):
    """What the scheduler needs of a controller."""

    def set_group_enabled(self, group: str, enabled: bool) -> None: ...

    def reinitialize_ranges(self, groups: tuple[str, ...]) -> None: ...


class StagedQuantizationScheduler(CompressionScheduler):
    """Switches activation and weight quantizers on at their start epochs (``epoch_step`` counts epochs from 0).

    Before the first ``epoch_step`` the model is in epoch 0's state; a restored scheduler (``load_state``)
    sets the quantizers for its epoch without initializing ranges again (they come with the checkpoint).
    """

    def __init__(self, controller: Switchable, settings: StagedSettings) -> None:
        super().__init__()
        self.controller = controller
        self.starts = {ACTIVATIONS: settings.activations_quant_start_epoch, WEIGHTS: settings.weights_quant_start_epoch}
        self._apply()

    def enabled(self, group: str) -> bool:
        return max(self.current_epoch, 0) >= self.starts[group]

    def _apply(self) -> None:
        for group in self.starts:
            self.controller.set_group_enabled(group, self.enabled(group))

    def _on_epoch(self) -> None:
        starting = tuple(group for group, start in self.starts.items() if start == self.current_epoch and start > 0)
        self._apply()
        if starting:
            self.controller.reinitialize_ranges(starting)

    def load_state(self, state: Mapping[str, Any]) -> None:
        super().load_state(state)
        self._apply()

    def stage(self) -> CompressionStage:
        on = [self.enabled(group) for group in self.starts]
        if all(on):
            return CompressionStage.FULLY_COMPRESSED
        return CompressionStage.PARTIALLY_COMPRESSED if any(on) else CompressionStage.UNCOMPRESSED


@dataclass(frozen=True)
class OptimizerSchedule:
    """The learning rate and weight decay of NNCF's staged training sample at a fractional epoch.

    The learning rate starts at ``base_lr``; from ``lr_poly_drop_start_epoch`` it is
    ``base_lr * ((start + duration - epoch) / duration) ** 2.1`` for ``lr_poly_drop_duration_epochs``
    epochs, then stays where the drop ended. Weight decay starts at ``base_wd`` and is 0 after
    ``disable_wd_start_epoch``. None means "leave the optimizer's value as it is".
    """

    settings: StagedSettings

    def learning_rate(self, epoch: float) -> float | None:
        s = self.settings
        if s.lr_poly_drop_start_epoch is None:
            return None
        finish = s.lr_poly_drop_start_epoch + s.lr_poly_drop_duration_epochs
        if not s.lr_poly_drop_start_epoch <= epoch < finish:
            return None
        return s.base_lr * ((finish - epoch) / s.lr_poly_drop_duration_epochs) ** LR_DROP_POWER

    def weight_decay(self, epoch: float) -> float | None:
        s = self.settings
        return 0.0 if s.disable_wd_start_epoch is not None and epoch > s.disable_wd_start_epoch else None


def staged_settings(config: Mapping[str, Any] | StagedSettings) -> StagedSettings:
    """The ``params`` of the config's quantization section (NNCF's defaults where a key is missing).

    :param config: a loaded config (:func:`aac.core.load_config`) or a plain dict with ``compression``;
        settings read already are returned as they are (what the torch and Keras training helpers accept).
    """
    if isinstance(config, StagedSettings):
        return config
    sections = config.get("compression") or []
    sections = [sections] if isinstance(sections, Mapping) else list(sections)
    quantization = [s for s in sections if isinstance(s, Mapping) and s.get("algorithm") == "quantization"]
    if not quantization:
        raise AacError("the config has no quantization section, whose 'params' the staged training helpers read")
    return StagedSettings.from_params(quantization[0].get("params") or {})
