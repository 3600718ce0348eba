"""The step search on its own, composite controllers, atomic writes and loop observers from plugins."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from aac.core import (
    AccuracyAwareParams,
    CompositeController,
    CompressionStage,
    LoopObserver,
    Registry,
    create_accuracy_aware_training_loop,
    create_compressed_model,
    get_plugin_manager,
    hookimpl,
)
from aac.core.atomic import atomic_write, atomic_write_json
from aac.core.errors import CompressionRateError
from aac.core.testing import ToyModel, ToyPlugin, accuracy, train_epoch
from aac.core.training.search import LevelOutcome, SearchBounds, StepSearch, to_rate, to_ticks


def drive(search: StepSearch, feasible_below: float, start: float = 0.0) -> list[float]:
    """Run the search against an oracle: rates up to ``feasible_below`` meet the budget."""
    search.start(to_ticks(start), SearchBounds(0, to_ticks(0.95)))
    outcome = LevelOutcome(to_ticks(start), start <= feasible_below, 0.0, 1)
    visited = []
    while (ticks := search.next_rate(outcome)) is not None:
        visited.append(to_rate(ticks))
        outcome = LevelOutcome(ticks, to_rate(ticks) <= feasible_below, 0.0, 1)
    return visited


def test_step_search_follows_the_seed_algorithm_on_an_exact_grid() -> None:
    visited = drive(StepSearch(AccuracyAwareParams(mode="adaptive_compression_level")), feasible_below=0.72, start=0.02)
    assert visited[:8] == [0.12, 0.22, 0.32, 0.42, 0.52, 0.62, 0.72, 0.82]
    assert visited[8:] == [0.77, 0.72, 0.745]  # 0.82 fails: step halves on the flip; 0.72 passes: halves again
    assert all(v == round(v, 6) for v in visited)


def test_step_search_stops_without_a_sub_minimal_probe() -> None:
    search = StepSearch(AccuracyAwareParams(mode="adaptive_compression_level"))
    visited = drive(search, feasible_below=0.72, start=0.02)
    assert visited[-1] == 0.745  # NNCF would still train one epoch at 0.7325 (step 0.0125)
    assert "minimal_compression_rate_step" in search.stop_reason


def test_step_search_state_round_trips() -> None:
    params = AccuracyAwareParams(mode="adaptive_compression_level")
    first = StepSearch(params)
    first.start(to_ticks(0.1), SearchBounds(0, to_ticks(0.95)))
    first.next_rate(LevelOutcome(to_ticks(0.1), True, 0.1, 1))
    second = StepSearch(params)
    second.load_state(first.get_state())
    outcome = LevelOutcome(to_ticks(0.2), False, -0.1, 3)
    assert second.next_rate(outcome) == first.next_rate(outcome)
    assert second.learning_rate_scale == first.learning_rate_scale == 0.5


def test_step_search_clamps_to_bounds_and_stops_there() -> None:
    search = StepSearch(AccuracyAwareParams(mode="adaptive_compression_level"))
    search.start(to_ticks(0.9), SearchBounds(0, to_ticks(0.95)))
    assert search.next_rate(LevelOutcome(to_ticks(0.9), True, 0.1, 1)) == to_ticks(0.95)
    assert search.next_rate(LevelOutcome(to_ticks(0.95), True, 0.1, 1)) is None
    assert "maximal compression rate" in search.stop_reason


def test_composite_rate_is_its_adaptive_child(registry: Registry) -> None:
    config = {"compression": [{"algorithm": "toy_quant"}, {"algorithm": "toy_pruning", "params": {"target": 0.4}}]}
    controller, model = create_compressed_model(ToyModel(), config, registry=registry)
    assert isinstance(controller, CompositeController)
    controller.compression_rate = 0.25
    assert model.rate == 0.25 and controller.compression_rate == 0.25
    controller.scheduler.epoch_step()
    assert controller.compression_stage() == CompressionStage.PARTIALLY_COMPRESSED
    state = controller.get_state()
    clone, clone_model = create_compressed_model(ToyModel(), config, compression_state=state, registry=registry)
    assert clone.get_state() == state


def test_composite_without_adaptive_child_has_no_rate(registry: Registry) -> None:
    controller, _ = create_compressed_model(ToyModel(), {"compression": {"algorithm": "toy_quant"}}, registry=registry)
    with pytest.raises(CompressionRateError, match="toy_quant"):
        _ = controller.compression_rate


def test_adaptive_loop_keeps_other_algorithms_scheduled(registry: Registry, tmp_path: Path) -> None:
    """Only the adaptive child's schedule is disabled; quantization-like children keep stepping."""
    config = {
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {
                "maximal_absolute_accuracy_degradation": 0.05,
                "initial_training_phase_epochs": 1,
                "patience_epochs": 1,
                "maximal_total_epochs": 4,
                "search_strategy": "step",
                "early_rejection": False,
            },
        },
        "compression": [{"algorithm": "toy_quant"}, {"algorithm": "toy_pruning"}],
    }
    controller, model = create_compressed_model(ToyModel(), config, registry=registry)
    loop = create_accuracy_aware_training_loop(config, controller, 0.95, registry=registry, verbose=False)
    # nothing costs accuracy (knee 1.0): the search climbs, so the returned model is the last epoch's
    loop.run(model, lambda c, m, epoch, optimizer, lr_scheduler: train_epoch(m), lambda m, epoch: accuracy(m, knee=1.0), log_dir=tmp_path)
    quant, pruning = controller.children
    assert pruning.scheduler_disabled and not quant.scheduler_disabled
    assert quant.scheduler.current_epoch == 3  # stepped in every one of the 4 epochs


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    atomic_write_json(target, {"epoch": 1})

    def crash(handle: Any) -> None:
        handle.write(b'{"epoch": ')
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, crash)
    assert target.read_text().strip().replace(" ", "").replace("\n", "") == '{"epoch":1}'
    assert os.listdir(tmp_path) == ["state.json"]  # no temporary file left behind


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_honour_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    """Checkpoints, history and plots are readable by whoever the umask lets read them (mkstemp alone gives 0600)."""
    previous = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "state.json", {"epoch": 1})
    finally:
        os.umask(previous)
    assert (tmp_path / "state.json").stat().st_mode & 0o777 == mode


@pytest.mark.parametrize(("setting", "flushes"), [(None, 1), ("1", 1), ("0", 0)])
def test_atomic_writes_flush_to_disk_unless_aac_fsync_is_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str | None, flushes: int
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", calls.append)
    if setting is None:
        monkeypatch.delenv("AAC_FSYNC", raising=False)
    else:
        monkeypatch.setenv("AAC_FSYNC", setting)
    atomic_write_json(tmp_path / "state.json", {"epoch": 1})
    assert len(calls) == flushes and json.loads((tmp_path / "state.json").read_text()) == {"epoch": 1}


def test_a_resumed_run_removes_files_its_state_does_not_name(registry: Registry, tmp_path: Path) -> None:
    """A best checkpoint written just before a kill (the state never switched to it) and a killed atomic write's temporary file."""
    config = {
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {
                "maximal_absolute_accuracy_degradation": 0.05,
                "initial_training_phase_epochs": 1,
                "patience_epochs": 1,
                "maximal_total_epochs": 3,
            },
        },
        "compression": {"algorithm": "toy_pruning"},
    }
    controller, model = create_compressed_model(ToyModel(), config, registry=registry)
    loop = create_accuracy_aware_training_loop(config, controller, 0.95, registry=registry, verbose=False)
    loop.run(model, lambda c, m, epoch, optimizer, lr_scheduler: train_epoch(m), lambda m, epoch: accuracy(m), log_dir=tmp_path)
    state = (tmp_path / "state.json").read_text()
    kept = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    (tmp_path / "checkpoints" / "best_rate_0.400000_00042.json").write_text("{}")
    (tmp_path / "checkpoints" / ".best_rate_0.400000_00043.json.x1y2.tmp").write_text("{")
    (tmp_path / "checkpoints" / "my_own_notes.txt").write_text("a user's dump_checkpoint_fn wrote this")
    again = create_accuracy_aware_training_loop(config, controller, 0.95, registry=registry, verbose=False)
    again.run(model, lambda c, m, epoch, optimizer, lr_scheduler: train_epoch(m), lambda m, epoch: accuracy(m), log_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == sorted([*kept, "my_own_notes.txt"])
    assert (tmp_path / "state.json").read_text() == state


class RecordingObserver(LoopObserver):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_run_start(self, context: Any, resumed_history: Any) -> None:
        self.events.append("start")

    def on_epoch_end(self, record: Any) -> None:
        self.events.append(f"epoch{record.epoch}")

    def on_run_end(self, statistics: Any) -> None:
        self.events.append("end")


def test_loop_observers_come_from_plugins(tmp_path: Path) -> None:
    observer = RecordingObserver()

    class ObserverPlugin:
        @hookimpl
        def aac_loop_observers(self, context: Any) -> list[LoopObserver]:
            return [observer]

    registry = Registry(get_plugin_manager(autoload=False, plugins=[ToyPlugin(), ObserverPlugin()]))
    config = {
        "accuracy_aware_training": {"mode": "early_exit", "params": {"maximal_absolute_accuracy_degradation": 0.05}},
        "compression": {"algorithm": "toy_pruning", "params": {"target": 0.1, "steps": 1}},
    }
    controller, model = create_compressed_model(ToyModel(), config, registry=registry)
    loop = create_accuracy_aware_training_loop(config, controller, 0.95, registry=registry, verbose=False)
    loop.run(model, lambda c, m, epoch, optimizer, lr_scheduler: train_epoch(m), lambda m, epoch: accuracy(m), log_dir=tmp_path)
    assert observer.events == ["start", "epoch0", "epoch1", "end"]
