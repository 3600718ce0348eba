"""A user's own compression method, handed to the loops with an ``accuracy_aware_training``-only config.

NNCF's guide lets users write a compression method and pass its controller straight to the loops. Such
a config has no ``compression`` section; it must load, drive both loops end to end, and ``aac validate``
must call it valid while saying that it needs a controller built in code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from aac.core import (
    AdaptiveCompressionTrainingLoop,
    CompressionLoss,
    CompressionScheduler,
    CompressionStage,
    CompressionStatistics,
    ConfigError,
    EarlyExitCompressionTrainingLoop,
    Registry,
    create_accuracy_aware_training_loop,
    load_config,
)
from aac.core.api import CONTROLLER_MEMBERS, CompressionAlgorithm, CompressionController
from aac.core.cli import main
from aac.core.statistics import AlgorithmStatistics
from aac.core.testing import ToyModel, accuracy, train_epoch

KNEE = 0.5
UNCOMPRESSED = 0.95
START_RATE = 0.2


class RampScheduler(CompressionScheduler):
    """Raises the controller's rate to ``target`` over ``steps`` epochs."""

    def __init__(self, controller: MaskController, target: float, steps: int) -> None:
        super().__init__()
        self.controller, self.target, self.steps = controller, target, steps

    def _on_epoch(self) -> None:
        self.controller.compression_rate = self.target * min(1.0, (self.current_epoch + 1) / self.steps)


class MaskController:
    """A user's own method: a plain class with exactly the members of ``CONTROLLER_MEMBERS``, no aac base class."""

    def __init__(self, model: ToyModel, target: float = START_RATE, steps: int = 2) -> None:
        self._model, self._target = model, target
        self._scheduler: CompressionScheduler = RampScheduler(self, target, steps)
        self._scheduler_disabled = False
        self._loss = CompressionLoss()

    @property
    def compression_rate(self) -> float:
        return self._model.rate

    @compression_rate.setter
    def compression_rate(self, value: float) -> None:
        self._model.rate = float(value)

    @property
    def maximal_compression_rate(self) -> float:
        return 0.9

    @property
    def scheduler(self) -> CompressionScheduler:
        return self._scheduler

    @property
    def loss(self) -> CompressionLoss:
        return self._loss

    def statistics(self) -> CompressionStatistics:
        return CompressionStatistics([AlgorithmStatistics("mask", {"rate": self._model.rate})])

    def compression_stage(self) -> CompressionStage:
        if self._scheduler_disabled or self._model.rate >= self._target - 1e-9:
            return CompressionStage.FULLY_COMPRESSED
        return CompressionStage.PARTIALLY_COMPRESSED if self._model.rate > 0 else CompressionStage.UNCOMPRESSED

    def disable_scheduler(self) -> None:
        self._scheduler, self._scheduler_disabled = CompressionScheduler(), True

    def get_state(self) -> dict[str, Any]:
        return {"rate": self._model.rate, "scheduler": self._scheduler.get_state(), "scheduler_disabled": self._scheduler_disabled}

    def load_state(self, state: Mapping[str, Any]) -> None:
        if state["scheduler_disabled"] and not self._scheduler_disabled:
            self.disable_scheduler()
        self._scheduler.load_state(state["scheduler"])
        self._model.rate = float(state["rate"])


def standalone_config(mode: str, **params: Any) -> dict[str, Any]:
    """An ``accuracy_aware_training`` section and nothing else: the controller is built in code."""
    base: dict[str, Any] = {"maximal_absolute_accuracy_degradation": 0.05}
    if mode == "adaptive_compression_level":
        base |= {"initial_training_phase_epochs": 2, "patience_epochs": 2}
    else:
        base |= {"maximal_total_epochs": 10}
    return {"accuracy_aware_training": {"mode": mode, "params": {**base, **params}}}


def run_loop(registry: Registry, mode: str, log_dir: Path, **params: Any) -> tuple[Any, MaskController, ToyModel]:
    model = ToyModel(0.9)
    controller = MaskController(model)
    loop = create_accuracy_aware_training_loop(
        standalone_config(mode, **params), controller, UNCOMPRESSED, registry=registry, verbose=False
    )

    def train(ctrl: Any, m: ToyModel, epoch: int, optimizer: Any, lr_scheduler: Any) -> float:
        assert ctrl is controller
        train_epoch(m)
        return 0.1

    returned = loop.run(model, train, lambda m, epoch: accuracy(m, KNEE), log_dir=log_dir)
    assert returned is model
    return loop, controller, model


def test_the_controller_is_protocol_only() -> None:
    controller = MaskController(ToyModel())
    assert not isinstance(controller, CompressionAlgorithm)
    assert isinstance(controller, CompressionController)
    public = {name for name in dir(MaskController) if not name.startswith("_")}
    assert public == set(CONTROLLER_MEMBERS)


# -- the loops ------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["frontier", "step"])
def test_adaptive_loop_searches_a_controller_built_in_code(registry: Registry, tmp_path: Path, strategy: str) -> None:
    """The protocol has no reachable_compression_rate or adapt_to_compression: real levels are the requested
    rates and probes validate without re-estimating anything."""
    loop, controller, model = run_loop(registry, "adaptive_compression_level", tmp_path, search_strategy=strategy)
    stats = loop.statistics

    assert isinstance(loop, AdaptiveCompressionTrainingLoop)
    assert loop.adaptive_controller is controller
    assert stats.feasible and stats.accuracy_budget >= 0
    assert stats.compression_rate > START_RATE, "the search must move the rate above where the schedule left it"
    assert controller.compression_rate == pytest.approx(stats.compression_rate, abs=1e-9)
    assert model.rate == pytest.approx(stats.compression_rate, abs=1e-9)
    assert stats.compressed_accuracy == pytest.approx(accuracy(model, KNEE))
    assert stats.history and any(r.phase in ("search", "probe") for r in stats.history)
    assert (tmp_path / "state.json").is_file()


def test_early_exit_loop_trains_a_controller_built_in_code(registry: Registry, tmp_path: Path) -> None:
    loop, controller, model = run_loop(registry, "early_exit", tmp_path)
    stats = loop.statistics

    assert isinstance(loop, EarlyExitCompressionTrainingLoop)
    assert stats.feasible and stats.accuracy_budget >= 0
    assert stats.compression_rate == pytest.approx(START_RATE), "early exit returns the fully scheduled rate"
    assert controller.compression_rate == pytest.approx(stats.compression_rate, abs=1e-9)
    assert model.rate == pytest.approx(stats.compression_rate, abs=1e-9)
    assert controller.compression_stage() is CompressionStage.FULLY_COMPRESSED
    assert stats.history and stats.total_epochs > 0
    assert "fully compressed and within budget" in stats.stop_reason


# -- load_config ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["adaptive_compression_level", "early_exit"])
def test_a_config_without_compression_loads_with_a_note(registry: Registry, mode: str) -> None:
    config = load_config(standalone_config(mode), registry=registry)
    assert config.compression_sections() == []
    assert config.accuracy_aware_training is not None and config.accuracy_aware_training.mode == mode
    assert config.notes == (
        f"$.compression is absent; '{mode}' mode needs a compression controller built in code "
        "(pass it to create_accuracy_aware_training_loop)",
    )


def test_an_empty_compression_list_is_still_refused_in_adaptive_mode(registry: Registry) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({**standalone_config("adaptive_compression_level"), "compression": []}, registry=registry)
    assert [(p.path, p.message) for p in info.value.problems] == [
        (
            "$.compression",
            "'adaptive_compression_level' mode needs exactly one adaptive-level algorithm, but the compression list is empty; "
            "add one of: toy_pruning, or leave the 'compression' key out and pass a controller built in code to "
            "create_accuracy_aware_training_loop",
        )
    ]


def test_a_null_compression_is_a_shape_error_not_a_missing_algorithm(registry: Registry) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({**standalone_config("adaptive_compression_level"), "compression": None}, registry=registry)
    assert [(p.path, p.message) for p in info.value.problems] == [
        ("$.compression", "null has the wrong shape (expected an object or an array)")
    ]


def test_an_empty_compression_list_is_fine_in_early_exit_mode_and_not_noted(registry: Registry) -> None:
    config = load_config({**standalone_config("early_exit"), "compression": []}, registry=registry)
    assert config.compression_sections() == [] and config.notes == ()


def test_only_fixed_level_algorithms_are_still_refused_in_adaptive_mode(registry: Registry) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({**standalone_config("adaptive_compression_level"), "compression": {"algorithm": "toy_quant"}}, registry=registry)
    assert [(p.path, p.message) for p in info.value.problems] == [
        (
            "$.compression",
            "'adaptive_compression_level' mode needs exactly one adaptive-level algorithm, but toy_quant cannot have its "
            "level searched; add one of: toy_pruning",
        )
    ]


def test_a_config_with_compression_gets_no_controller_note(registry: Registry) -> None:
    config = load_config(
        {**standalone_config("adaptive_compression_level"), "compression": {"algorithm": "toy_pruning"}}, registry=registry
    )
    assert config.notes == ()


# -- aac validate ---------------------------------------------------------------------------------


def test_validate_accepts_a_standalone_file_and_notes_it(tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "standalone.json"
    path.write_text(json.dumps(standalone_config("adaptive_compression_level")))

    code = main(["validate", str(path)], registry=registry)
    out, err = capsys.readouterr()

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{path}: ok",
        "  note: $.compression is absent; 'adaptive_compression_level' mode needs a compression controller built in code "
        "(pass it to create_accuracy_aware_training_loop)",
    ]


def test_validate_quiet_prints_nothing_for_a_standalone_file(
    tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "standalone.json"
    path.write_text(json.dumps(standalone_config("early_exit")))
    assert main(["validate", "-q", str(path)], registry=registry) == 0
    assert capsys.readouterr() == ("", "")
