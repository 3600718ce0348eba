"""Both accuracy-aware loops, end to end, on a pure-Python model through core's generic backend."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from aac.core import (
    AdaptiveCompressionTrainingLoop,
    CallbackError,
    CheckpointError,
    ConfigError,
    EarlyExitCompressionTrainingLoop,
    Registry,
    create_accuracy_aware_training_loop,
    create_compressed_model,
)
from aac.core.testing import ToyModel, accuracy, train_epoch


def adaptive_config(**params: Any) -> dict[str, Any]:
    """NNCF's search (``step``, no early rejection): these tests pin its exact path; test_search.py tests the default."""
    base = {
        "maximal_absolute_accuracy_degradation": 0.05,
        "initial_training_phase_epochs": 2,
        "patience_epochs": 2,
        "search_strategy": "step",
        "early_rejection": False,
    }
    return {
        "accuracy_aware_training": {"mode": "adaptive_compression_level", "params": {**base, **params}},
        "compression": {"algorithm": "toy_pruning", "params": {"target": 0.2, "steps": 2}},
    }


def early_exit_config(**params: Any) -> dict[str, Any]:
    base = {"maximal_absolute_accuracy_degradation": 0.05, "maximal_total_epochs": 20}
    return {
        "accuracy_aware_training": {"mode": "early_exit", "params": {**base, **params}},
        "compression": {"algorithm": "toy_pruning", "params": {"target": 0.3, "steps": 3}},
    }


class Harness:
    """Builds model + controller + loop and counts the callbacks the loop makes."""

    def __init__(
        self,
        registry: Registry,
        config: dict[str, Any],
        uncompressed: float = 0.95,
        skill: float = 0.9,
        knee: float = 0.5,
        slope: float = 1.0,
        crash_at_epoch: int | None = None,
        **loop_kwargs: Any,
    ) -> None:
        self.model = ToyModel(skill)
        self.controller, self.model = create_compressed_model(self.model, config, registry=registry)
        self.loop = create_accuracy_aware_training_loop(config, self.controller, uncompressed, registry=registry, **loop_kwargs)
        self.knee, self.slope, self.crash_at_epoch = knee, slope, crash_at_epoch
        self.trained = self.validated = 0

    def train(self, controller: Any, model: ToyModel, epoch: int, optimizer: Any, lr_scheduler: Any) -> float:
        if self.crash_at_epoch is not None and epoch == self.crash_at_epoch:
            raise KeyboardInterrupt("simulated crash")
        self.trained += 1
        train_epoch(model)
        return 0.1

    def validate(self, model: ToyModel, epoch: int) -> float:
        self.validated += 1
        return accuracy(model, self.knee, self.slope)

    def run(self, log_dir: Path, **kwargs: Any) -> ToyModel:
        return self.loop.run(self.model, self.train, self.validate, log_dir=log_dir, **kwargs)


def assert_consistent(h: Harness) -> None:
    """Returned weights, controller and reported rate agree (NNCF left the controller elsewhere)."""
    stats = h.loop.statistics
    assert stats is not None
    assert h.model.rate == pytest.approx(stats.compression_rate, abs=1e-9)
    assert h.controller.compression_rate == pytest.approx(stats.compression_rate, abs=1e-9)
    assert stats.compressed_accuracy == pytest.approx(accuracy(h.model, h.knee, h.slope))


# -- adaptive ---------------------------------------------------------------------------------


def test_adaptive_climbs_then_brackets_the_highest_feasible_rate(registry: Registry, tmp_path: Path) -> None:
    h = Harness(registry, adaptive_config(), verbose=False)
    h.run(tmp_path)
    stats = h.loop.statistics
    assert stats.feasible and stats.accuracy_budget >= 0
    assert stats.compression_rate == pytest.approx(0.575)
    search_rates = [r.compression_rate for r in stats.history if r.phase == "search"]
    assert search_rates[:3] == [0.3, 0.4, 0.5]  # climb by the initial step
    assert search_rates[3:] == [0.6, 0.6, 0.55, 0.575]  # 0.6 fails for its patience, then bracket with halved steps
    # NNCF would go back to 0.6 (a level that already failed); aac answers the step search with the recorded
    # failure instead, which flips the direction and ends the search
    assert stats.stop_reason.startswith("the step fell below")
    assert_consistent(h)
    # every rate is on the exact grid and has its own checkpoint file
    kept = json.loads((tmp_path / "state.json").read_text())["kept"]
    assert all(round(v["rate"] * 1e6) == v["rate"] * 1e6 for v in kept.values())
    assert len({v["file"] for v in kept.values()}) == len(kept)


def test_adaptive_unreachable_budget_returns_smallest_drop_without_raising(registry: Registry, tmp_path: Path) -> None:
    h = Harness(
        registry,
        adaptive_config(maximal_absolute_accuracy_degradation=0.001),
        uncompressed=0.99,
        skill=0.5,
        knee=0.0,
        slope=0.2,
        verbose=False,
    )
    h.run(tmp_path)
    stats = h.loop.statistics
    assert not stats.feasible and stats.accuracy_budget < 0
    assert "no rate met the budget" in stats.stop_reason
    assert stats.compression_rate >= 0.0  # never a negative rate (NNCF reported -0.09)
    best_metric = max(r.metric for r in stats.history if r.metric is not None)
    assert stats.compressed_accuracy == pytest.approx(best_metric)
    assert_consistent(h)


def test_adaptive_trains_the_maximal_bound_before_returning_it(registry: Registry, tmp_path: Path) -> None:
    config = adaptive_config()
    config["compression"]["params"]["max_rate"] = 0.55
    h = Harness(registry, config, knee=1.0, verbose=False)  # nothing costs accuracy
    h.run(tmp_path)
    stats = h.loop.statistics
    assert h.loop.maximal_compression_rate == pytest.approx(0.55)
    assert stats.compression_rate == pytest.approx(0.55)
    trained_at_max = [r for r in stats.history if r.compression_rate == pytest.approx(0.55) and r.epoch > 0]
    assert trained_at_max, "the bound must be trained and validated before it is returned"
    assert "maximal compression rate" in stats.stop_reason
    assert_consistent(h)


def test_adaptive_respects_the_epoch_cap(registry: Registry, tmp_path: Path) -> None:
    h = Harness(registry, adaptive_config(maximal_total_epochs=5), verbose=False)
    h.run(tmp_path)
    stats = h.loop.statistics
    assert stats.total_epochs == 5 and h.trained == 5
    assert "maximal_total_epochs" in stats.stop_reason
    assert stats.feasible
    assert_consistent(h)


def test_adaptive_honours_validate_every_n_epochs(registry: Registry, tmp_path: Path) -> None:
    h = Harness(registry, adaptive_config(validate_every_n_epochs=2, patience_epochs=3, initial_training_phase_epochs=3), verbose=False)
    h.run(tmp_path)
    history = h.loop.statistics.history
    for record in history[1:]:
        last_of_level = record.level_epoch == 3
        assert (record.metric is not None) == (
            record.level_epoch % 2 == 0 or last_of_level or record.budget is not None and record.budget >= 0
        )
    skipped = [r for r in history if r.metric is None]
    assert skipped, "some epochs must go unvalidated"
    # initial validation + validated epochs + the final re-validation of the returned model
    assert h.validated == 1 + sum(r.metric is not None for r in history[1:]) + 1


def test_adaptive_lower_is_better_metric(registry: Registry, tmp_path: Path) -> None:
    config = adaptive_config(metric_mode="min", maximal_absolute_accuracy_degradation=0.05)
    h = Harness(registry, config, uncompressed=0.05, verbose=False)
    h.validate = lambda model, epoch: round(1.0 - accuracy(model), 6)  # type: ignore[method-assign]
    h.run(tmp_path)
    stats = h.loop.statistics
    assert stats.feasible and stats.compressed_accuracy <= 0.10 + 1e-9
    assert stats.compression_rate == pytest.approx(0.575)
    assert stats.absolute_accuracy_degradation == pytest.approx(stats.compressed_accuracy - 0.05)


def test_adaptive_resumes_after_a_crash_with_the_same_result(registry: Registry, tmp_path: Path) -> None:
    reference = Harness(registry, adaptive_config(), verbose=False)
    reference.run(tmp_path / "reference")

    crashing = Harness(registry, adaptive_config(), crash_at_epoch=7, verbose=False)
    with pytest.raises(KeyboardInterrupt):
        crashing.run(tmp_path / "resumed")
    resumed = Harness(registry, adaptive_config(), verbose=False)  # a fresh process: new model and controller
    resumed.run(tmp_path / "resumed")

    assert resumed.trained == reference.trained - 7  # epochs 0..6 were not trained again
    ref, got = reference.loop.statistics, resumed.loop.statistics
    assert (got.compression_rate, got.compressed_accuracy, got.total_epochs) == (
        ref.compression_rate,
        ref.compressed_accuracy,
        ref.total_epochs,
    )
    assert [r.compression_rate for r in got.history] == [r.compression_rate for r in ref.history]
    assert [r.metric for r in got.history] == [r.metric for r in ref.history]
    assert_consistent(resumed)


def test_a_finished_run_is_restored_without_training(registry: Registry, tmp_path: Path) -> None:
    first = Harness(registry, adaptive_config(), verbose=False)
    first.run(tmp_path)
    again = Harness(registry, adaptive_config(), verbose=False)
    again.run(tmp_path)
    assert again.trained == 0
    assert again.loop.statistics.compression_rate == first.loop.statistics.compression_rate
    assert_consistent(again)


def test_resuming_with_other_settings_is_refused(registry: Registry, tmp_path: Path) -> None:
    Harness(registry, adaptive_config(maximal_total_epochs=3), verbose=False).run(tmp_path)
    with pytest.raises(CheckpointError, match=r"different settings \(params.maximal_total_epochs: 3 -> 4\)"):
        Harness(registry, adaptive_config(maximal_total_epochs=4), verbose=False).run(tmp_path)


def test_resuming_with_another_compression_section_is_refused(registry: Registry, tmp_path: Path) -> None:
    """The fingerprint covers the compression sections: another schedule target would mix two experiments."""
    Harness(registry, adaptive_config(maximal_total_epochs=3), verbose=False).run(tmp_path)
    changed = adaptive_config(maximal_total_epochs=3)
    changed["compression"]["params"]["target"] = 0.25
    with pytest.raises(CheckpointError, match=r"compression.params.target: 0.2 -> 0.25"):
        Harness(registry, changed, verbose=False).run(tmp_path)


def test_run_writes_history_plot_and_tensorboard_events(registry: Registry, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    h = Harness(registry, adaptive_config(), verbose=True)
    h.run(tmp_path)
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history) == len(h.loop.statistics.history)
    assert (tmp_path / "history.csv").read_text().splitlines()[0].startswith("epoch,phase,compression_rate")
    assert (tmp_path / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert "val/accuracy_aware/metric_value" in events.Tags()["scalars"]
    assert "compression/statistics/toy_pruning/rate" in events.Tags()["scalars"]


# -- early exit -------------------------------------------------------------------------------


def test_early_exit_stops_once_fully_compressed_within_budget(registry: Registry, tmp_path: Path) -> None:
    h = Harness(registry, early_exit_config(), verbose=False)
    h.run(tmp_path)
    stats = h.loop.statistics
    assert isinstance(h.loop, EarlyExitCompressionTrainingLoop)
    assert h.trained == 3  # the schedule needs three epochs to reach its target
    assert stats.feasible and stats.compression_rate == pytest.approx(0.3)
    assert_consistent(h)


def test_early_exit_without_training_when_already_within_budget(registry: Registry, tmp_path: Path) -> None:
    config = early_exit_config()
    config["compression"]["params"] = {"target": 0.0, "steps": 1}
    h = Harness(registry, config, verbose=False)
    h.run(tmp_path)
    assert h.trained == 0
    assert "before any training" in h.loop.statistics.stop_reason


def test_early_exit_falls_back_to_partial_model_when_schedule_never_completes(registry: Registry, tmp_path: Path) -> None:
    config = early_exit_config(maximal_total_epochs=2)
    h = Harness(registry, config, verbose=False)
    h.run(tmp_path)
    stats = h.loop.statistics
    assert "never completed" in stats.stop_reason
    assert stats.compression_rate == pytest.approx(0.2)
    assert_consistent(h)


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, "0.9", float("nan"), [0.9]])
def test_bad_validate_fn_results_are_named(registry: Registry, tmp_path: Path, bad: Any) -> None:
    if bad == "0.9":
        bad = object()
    h = Harness(registry, adaptive_config(), verbose=False)
    h.validate = lambda model, epoch: bad  # type: ignore[method-assign]
    with pytest.raises(CallbackError, match="validate_fn"):
        h.run(tmp_path)


def test_configure_optimizers_fn_must_return_a_pair(registry: Registry, tmp_path: Path) -> None:
    h = Harness(registry, adaptive_config(), verbose=False)
    with pytest.raises(CallbackError, match=r"\(optimizer, lr_scheduler\)"):
        h.run(tmp_path, configure_optimizers_fn=lambda: "sgd")


def test_loop_class_must_match_the_config_mode(registry: Registry) -> None:
    h = Harness(registry, adaptive_config(), verbose=False)
    with pytest.raises(ConfigError, match="create_accuracy_aware_training_loop"):
        EarlyExitCompressionTrainingLoop(adaptive_config(), h.controller, 0.95, registry=registry)
    assert isinstance(h.loop, AdaptiveCompressionTrainingLoop)


def test_learning_rate_is_reset_and_cut_on_direction_changes(registry: Registry, tmp_path: Path) -> None:
    class Optimizer:
        def __init__(self) -> None:
            self.param_groups = [{"lr": 1.0}]

    created: list[Optimizer] = []

    def configure() -> tuple[Optimizer, None]:
        created.append(Optimizer())
        return created[-1], None

    h = Harness(registry, adaptive_config(), verbose=False)
    h.run(tmp_path, configure_optimizers_fn=configure)
    lrs = [o.param_groups[0]["lr"] for o in created]
    assert lrs[0] == 1.0 and len(created) > 3  # a fresh optimizer per level
    assert min(lrs) < 1.0 and all(math.log2(lr).is_integer() for lr in lrs)  # halved on flips (lr_reduction_factor 0.5)


@pytest.mark.parametrize("compression", [{"algorithm": "toy_quant"}, None], ids=["fixed-level", "no-compression"])
def test_early_exit_runs_a_controller_without_compression_rate(registry: Registry, tmp_path: Path, compression: Any) -> None:
    """Reading ``compression_rate`` of a fixed-level algorithm raises; the loop must not need it."""
    config = early_exit_config(maximal_total_epochs=3)
    config.pop("compression")
    if compression is not None:
        config["compression"] = compression
    h = Harness(registry, config, verbose=False)
    h.run(tmp_path)
    stats = h.loop.statistics
    assert stats.feasible and stats.compression_rate == 0.0
    assert h.trained == 0  # already within budget and (trivially) fully compressed


def test_changed_settings_resume_only_when_allowed(registry: Registry, tmp_path: Path) -> None:
    crashing = Harness(registry, adaptive_config(maximal_total_epochs=6), crash_at_epoch=3, verbose=False)
    with pytest.raises(KeyboardInterrupt):
        crashing.run(tmp_path)
    with pytest.raises(CheckpointError, match="or pass allow_changed_settings=True to run"):
        Harness(registry, adaptive_config(maximal_total_epochs=8), verbose=False).run(tmp_path)
    resumed = Harness(registry, adaptive_config(maximal_total_epochs=8), verbose=False)
    resumed.run(tmp_path, allow_changed_settings=True)
    assert resumed.trained == resumed.loop.statistics.total_epochs - 3  # carried on after epoch 3, under the new cap
    assert resumed.loop.statistics.total_epochs <= 8
    Harness(registry, adaptive_config(maximal_total_epochs=8), verbose=False).run(tmp_path)  # the new settings are the folder's now
