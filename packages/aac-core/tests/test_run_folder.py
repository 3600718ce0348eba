"""A damaged, mixed or unusable run folder, and misbehaving callbacks and observers, get clear errors - never a
raw traceback from deep inside and never a silent wrong result."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from aac.core import (
    AacError,
    CallbackError,
    CheckpointError,
    LoopObserver,
    Registry,
    create_accuracy_aware_training_loop,
    create_compressed_model,
    get_plugin_manager,
    hookimpl,
)
from aac.core.testing import ToyModel, ToyPlugin, accuracy, train_epoch
from aac.core.training.progress import LoopState

CONFIG = {
    "accuracy_aware_training": {
        "mode": "adaptive_compression_level",
        "params": {
            "maximal_absolute_accuracy_degradation": 0.05,
            "initial_training_phase_epochs": 2,
            "patience_epochs": 1,
            "maximal_total_epochs": 5,
        },
    },
    "compression": {"algorithm": "toy_pruning", "params": {"target": 0.2, "steps": 2}},
}


def run(registry: Registry, log_dir: Path, validate: Any = None, **kwargs: Any) -> Any:
    controller, model = create_compressed_model(ToyModel(), CONFIG, registry=registry)
    loop = create_accuracy_aware_training_loop(CONFIG, controller, 0.95, registry=registry, verbose=False)
    loop.run(
        model,
        lambda c, m, epoch, optimizer, lr_scheduler: train_epoch(m),
        validate or (lambda m, epoch: accuracy(m)),
        log_dir=log_dir,
        **kwargs,
    )
    return loop.statistics


@pytest.fixture
def finished(registry: Registry, tmp_path: Path) -> Path:
    run(registry, tmp_path)
    return tmp_path


def edit_state(folder: Path, change: Any) -> None:
    state = json.loads((folder / "state.json").read_text())
    (folder / "state.json").write_text(json.dumps(change(state)))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "state.json").write_bytes(b"\xff\xfe\x00garbage"), "is corrupt"),
        (lambda f: (f / "state.json").write_text("[]"), "damaged: it holds a JSON list, not an object"),
        (lambda f: (f / "state.json").write_text("null"), "damaged: it holds a JSON NoneType, not an object"),
        (lambda f: edit_state(f, lambda s: {k: v for k, v in s.items() if k != "fingerprint"}), "missing key 'fingerprint'"),
        (lambda f: edit_state(f, lambda s: {**s, "surprise": 1}), "unknown key 'surprise'"),
        (lambda f: edit_state(f, lambda s: {**s, "phase": "serch"}), "unknown phase 'serch'"),
        (lambda f: edit_state(f, lambda s: {**s, "result": None}), "marked done but names no kept checkpoint"),
        (lambda f: edit_state(f, lambda s: {**s, "epochs": "5"}), "'epochs' is str, not int"),
        (lambda f: edit_state(f, lambda s: {**s, "version": 99}), "is not an aac run state of version"),
        (lambda f: edit_state(f, lambda s: {**s, "loop": {**s["loop"], "level": 5}}), "its loop state: 'level' is int, not an object"),
        (
            lambda f: edit_state(f, lambda s: {**s, "loop": {**s["loop"], "trained": {"100": {"ticks": 100}}}}),
            "its loop state: 'trained.100' has no 'feasible', no 'best_budget', no 'epochs'",
        ),
        (lambda f: edit_state(f, lambda s: {**s, "loop": {**s["loop"], "probes": {"1@e2": "x"}}}), "'probes.1@e2' is str, not a number"),
        (lambda f: edit_state(f, lambda s: {**s, "loop": {**s["loop"], "lvl": None}}), "its loop state: unknown key 'lvl'"),
    ],
    ids=["garbage", "list", "null", "missing", "extra", "phase", "result", "type", "version", "level", "outcome", "probe", "loop-key"],
)
def test_a_damaged_state_file_is_a_clear_checkpoint_error(registry: Registry, finished: Path, damage: Any, message: str) -> None:
    damage(finished)
    with pytest.raises(CheckpointError, match=message) as error:
        run(registry, finished)
    assert "start the run afresh" in str(error.value)


def test_a_swapped_best_checkpoint_is_refused(registry: Registry, finished: Path) -> None:
    """A best file replaced by another rate's must not give statistics at one rate and a controller at another."""
    state = json.loads((finished / "state.json").read_text())
    kept = state["kept"]
    result, other = state["result"]["key"], next(k for k in kept if k != state["result"]["key"])
    (finished / "checkpoints" / kept[result]["file"]).write_bytes((finished / "checkpoints" / kept[other]["file"]).read_bytes())
    with pytest.raises(CheckpointError, match="says it holds"):
        run(registry, finished)


def test_a_checkpoint_without_weights_is_refused(registry: Registry, finished: Path) -> None:
    state = json.loads((finished / "state.json").read_text())
    path = finished / "checkpoints" / state["kept"][state["result"]["key"]]["file"]
    payload = json.loads(path.read_text())
    del payload["model"]
    path.write_text(json.dumps(payload))
    with pytest.raises(CheckpointError, match="is damaged: it has no model"):
        run(registry, finished)


def test_a_stale_training_checkpoint_is_refused(registry: Registry, tmp_path: Path) -> None:
    """state.json says 3 epochs were trained; the training checkpoint it names holds epoch 2."""

    class Killed(Exception):
        pass

    def validate(model: ToyModel, epoch: int) -> float:
        if epoch == 3:
            raise Killed
        return accuracy(model)

    with pytest.raises(Killed):
        run(registry, tmp_path, validate)
    state = json.loads((tmp_path / "state.json").read_text())
    edit_state(tmp_path, lambda s: {**s, "epochs": s["epochs"] + 1})
    assert state["last_checkpoint"]
    with pytest.raises(CheckpointError, match=r"holds \{'epoch': 2\} but .* says it holds \{'epoch': 3\}"):
        run(registry, tmp_path)


def test_a_finished_run_is_measured_again_when_restored(registry: Registry, finished: Path) -> None:
    again = run(registry, finished, lambda m, epoch: round(accuracy(m) - 0.01, 6))
    assert again.compressed_accuracy == pytest.approx(run(registry, finished).compressed_accuracy - 0.01)


def test_a_log_dir_that_is_a_file_is_refused_before_training(registry: Registry, tmp_path: Path) -> None:
    (tmp_path / "run").write_text("not a folder")
    trained: list[int] = []
    controller, model = create_compressed_model(ToyModel(), CONFIG, registry=registry)
    loop = create_accuracy_aware_training_loop(CONFIG, controller, 0.95, registry=registry, verbose=False)
    with pytest.raises(AacError, match="is a file, not a folder"):
        loop.run(
            model,
            lambda c, m, epoch, optimizer, lr_scheduler: trained.append(epoch),
            lambda m, epoch: accuracy(m),
            log_dir=tmp_path / "run",
        )
    with pytest.raises(AacError, match="cannot create log_dir"):
        loop.run(
            model,
            lambda c, m, epoch, optimizer, lr_scheduler: trained.append(epoch),
            lambda m, epoch: accuracy(m),
            log_dir=tmp_path / "run" / "below",
        )
    assert trained == []


@pytest.mark.parametrize("value", ["97.5", True, 10**400, float("inf"), [0.9]], ids=["str", "bool", "huge", "inf", "list"])
def test_validate_fn_must_return_a_real_finite_number(registry: Registry, tmp_path: Path, value: Any) -> None:
    with pytest.raises(CallbackError, match=r"validate_fn \(epoch 0\) returned"):
        run(registry, tmp_path, lambda m, epoch: value)


class Exploding(LoopObserver):
    def on_epoch_end(self, record: Any) -> None:
        if record.epoch == 2:
            raise RuntimeError("the dashboard is down")


def test_an_observer_that_raises_is_dropped_and_training_goes_on(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class ObserverPlugin:
        @hookimpl
        def aac_loop_observers(self, context: Any) -> list[LoopObserver]:
            return [Exploding()]

    registry = Registry(get_plugin_manager(autoload=False, plugins=[ToyPlugin(), ObserverPlugin()]))
    with caplog.at_level(logging.WARNING, logger="aac.training"):
        statistics = run(registry, tmp_path)
    assert statistics.total_epochs >= 3
    assert any("Exploding raised in on_epoch_end and is dropped" in r.getMessage() for r in caplog.records)


def test_an_uncompressed_metric_far_below_the_first_validation_is_warned_about(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """uncompressed_model_accuracy 0.2 while the model validates at 0.9: another metric, or a wrong number."""
    controller, model = create_compressed_model(ToyModel(), CONFIG, registry=registry)
    loop = create_accuracy_aware_training_loop(CONFIG, controller, 0.2, registry=registry, verbose=False)
    with caplog.at_level(logging.WARNING, logger="aac.training"):
        loop.run(model, lambda c, m, epoch, optimizer, lr_scheduler: train_epoch(m), lambda m, epoch: accuracy(m), log_dir=tmp_path)
    assert any("far better than uncompressed_model_accuracy 0.2" in r.getMessage() for r in caplog.records)


def test_a_plugin_whose_observer_hook_raises_is_skipped_for_the_run(tmp_path: Path) -> None:
    class BrokenReporting:
        @hookimpl
        def aac_loop_observers(self, context: Any) -> list[LoopObserver]:
            raise ConnectionError("dashboard unreachable")

    registry = Registry(get_plugin_manager(autoload=False, plugins=[ToyPlugin(), BrokenReporting()]))
    with pytest.warns(UserWarning, match=r"gives no loop observers for this run: aac_loop_observers\(\) raised ConnectionError"):
        statistics = run(registry, tmp_path)
    assert statistics.total_epochs >= 3 and (tmp_path / "history.json").exists()  # core's reporters still ran


def test_a_loop_state_of_the_first_format_reads_back() -> None:
    """Version 1 kept the initial phase's epoch count in ``level``; a run interrupted then resumes."""
    state = LoopState.from_dict({"level": {"epochs": 2}, "stop_reason": ""})
    assert state.initial_epochs == 2 and state.level is None
    level = {
        "ticks": 5,
        "epochs": 1,
        "best_budget": -0.5,
        "feasible": False,
        "done": False,
        "budgets": [[1, -0.5]],
        "start_budget": -2.0,
        "ended": "",
    }
    state = LoopState.from_dict({"level": level, "trained": {"5": {"ticks": 5, "feasible": True, "best_budget": 0.1, "epochs": 2}}})
    assert state.level is not None and state.level.outcome().start_budget == -2.0
    assert LoopState.from_dict(state.to_dict()) == state
