"""Schedules, settings and the scheduler: framework-neutral, no torch."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest

from aac.core.errors import ConfigError
from aac.sparsity.scheduler import SparsityScheduler
from aac.sparsity.schedules import exponential_decay, exponential_level, multistep, polynomial, progress
from aac.sparsity.settings import SparsitySettings


def settings(sparsity_init: float | None = None, default_schedule: str = "polynomial", **params: Any) -> SparsitySettings:
    raw: dict[str, Any] = {"params": params}
    if sparsity_init is not None:
        raw["sparsity_init"] = sparsity_init
    return SparsitySettings.from_section(raw, "$.compression", default_schedule=default_schedule)


class FakeTarget:
    """A LevelTarget that records what the scheduler does; ``measured`` is what the adaptive schedule reads."""

    def __init__(self, measured: float = 0.0) -> None:
        self.levels: list[float] = []
        self.frozen = False
        self.measured = measured

    def set_level(self, level: float) -> None:
        self.levels.append(level)

    def freeze(self) -> None:
        self.frozen = True

    def measured_level(self) -> float:
        return self.measured


def run_epochs(scheduler: SparsityScheduler, epochs: int) -> list[float]:
    out = []
    for _ in range(epochs):
        scheduler.epoch_step()
        out.append(round(scheduler.current_level, 6))
    return out


# -- pure schedule functions --------------------------------------------------------------------
def test_progress_clamps_and_handles_zero_length() -> None:
    assert progress(-1, 10) == 0.0
    assert progress(5, 10) == 0.5
    assert progress(20, 10) == 1.0
    assert progress(0, 0) == 1.0


@pytest.mark.parametrize("concave", [True, False])
def test_polynomial_ends_and_shape(concave: bool) -> None:
    assert polynomial(0.1, 0.5, 0, 10, 0.9, concave) == pytest.approx(0.1)
    assert polynomial(0.1, 0.5, 10, 10, 0.9, concave) == pytest.approx(0.5)
    assert polynomial(0.1, 0.5, 50, 10, 0.9, concave) == pytest.approx(0.5)
    middle = polynomial(0.0, 1.0, 5, 10, 2.0, concave)
    assert middle == pytest.approx(0.75 if concave else 0.25)  # concave: 1 - 0.5^2, convex: 0.5^2


def test_polynomial_power_one_is_linear() -> None:
    assert polynomial(0.2, 0.6, 3, 4, 1.0, True) == pytest.approx(0.5)
    assert polynomial(0.2, 0.6, 3, 4, 1.0, False) == pytest.approx(0.5)


def test_exponential_decays_density_geometrically() -> None:
    assert exponential_decay(1.0, 0.25, 1, 2) == pytest.approx(0.5)
    assert exponential_level(0.0, 0.75, 1, 2) == pytest.approx(0.5)
    assert exponential_level(0.0, 0.75, 5, 2) == pytest.approx(0.75)
    assert exponential_decay(1.0, 0.0, 1, 2) == pytest.approx(0.5)  # towards zero: linear, reaches it at the end
    assert exponential_decay(1.0, 0.0, 2, 2) == 0.0
    assert exponential_decay(0.0, 0.5, 1, 2) == 0.0


def test_multistep_selects_by_epoch_and_checks_lengths() -> None:
    assert [multistep([2, 4], [0.1, 0.3, 0.5], e) for e in (0, 1.9, 2, 3, 4, 10)] == [0.1, 0.1, 0.3, 0.3, 0.5, 0.5]
    with pytest.raises(ValueError, match="one more value"):
        multistep([2], [0.1], 0)


# -- settings -----------------------------------------------------------------------------------
def test_defaults_are_nncf_defaults() -> None:
    s = settings()
    assert (s.sparsity_init, s.schedule, s.sparsity_target, s.sparsity_target_epoch, s.sparsity_freeze_epoch) == (
        0.0,
        "polynomial",
        0.5,
        90,
        100,
    )
    assert (s.power, s.concave, s.update_per_optimizer_step, s.steps_per_epoch) == (0.9, True, False, None)
    assert (s.multistep_steps, s.multistep_sparsity_levels, s.patience) == ((90,), (0.1, 0.5), 1)
    assert (s.adaptive_step, s.adaptive_eps, s.sparsity_level_setting_mode, s.weight_importance) == (0.05, 0.03, "global", "normed_abs")
    assert settings(default_schedule="exponential").schedule == "exponential"


@pytest.mark.parametrize(
    ("params", "init", "path", "text"),
    [
        (
            {"schedule": "multistep", "multistep_steps": [2, 4], "multistep_sparsity_levels": [0.1, 0.5]},
            None,
            "$.compression.params.multistep_sparsity_levels",
            "one more entry",
        ),
        (
            {"schedule": "multistep", "multistep_steps": [4, 2], "multistep_sparsity_levels": [0.1, 0.3, 0.5]},
            None,
            "$.compression.params.multistep_steps",
            "strictly increasing",
        ),
        ({"sparsity_target": 0.3}, 0.4, "$.compression.sparsity_init", "above params.sparsity_target"),
        ({"schedule": "adaptive", "sparsity_target": 0.3}, 0.4, "$.compression.sparsity_init", "above"),
        (
            {"sparsity_target_epoch": 10, "sparsity_freeze_epoch": 5},
            None,
            "$.compression.params.sparsity_freeze_epoch",
            "before sparsity_target_epoch",
        ),
        ({"schedule": "adaptive", "update_per_optimizer_step": True}, None, "$.compression.params.update_per_optimizer_step", "adaptive"),
        ({"sparsity_level_setting_mode": "local", "schedule": "polynomial"}, None, "$.compression.params.schedule", "local"),
    ],
)
def test_inconsistent_settings_are_reported_with_paths(params: dict[str, Any], init: float | None, path: str, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings(init, **params)
    assert [p.path for p in info.value.problems] == [path]
    assert text in info.value.problems[0].message


def test_adaptive_step_and_eps_keys() -> None:
    s = settings(schedule="adaptive", step=0.1, eps=0.01)
    assert (s.adaptive_step, s.adaptive_eps) == (0.1, 0.01)


# -- scheduler ----------------------------------------------------------------------------------
def test_polynomial_scheduler_per_epoch_and_freeze() -> None:
    target = FakeTarget()
    s = SparsityScheduler(target, settings(0.1, sparsity_target=0.5, sparsity_target_epoch=4, sparsity_freeze_epoch=5, power=1.0))
    assert s.current_level == pytest.approx(0.1)  # before the first epoch: sparsity_init
    assert run_epochs(s, 7) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.5]
    assert target.frozen
    assert len(target.levels) == 6  # epochs 0..5 applied: epoch 5 sets its level, then freezes the masks


def test_concave_false_and_power_change_the_curve() -> None:
    concave = run_epochs(SparsityScheduler(FakeTarget(), settings(0.0, sparsity_target=0.8, sparsity_target_epoch=4, power=2.0)), 3)
    convex = run_epochs(
        SparsityScheduler(FakeTarget(), settings(0.0, sparsity_target=0.8, sparsity_target_epoch=4, power=2.0, concave=False)), 3
    )
    assert concave == [0.0, pytest.approx(0.35), pytest.approx(0.6)]
    assert convex == [0.0, pytest.approx(0.05), pytest.approx(0.2)]


def test_exponential_scheduler() -> None:
    s = SparsityScheduler(FakeTarget(), settings(0.0, schedule="exponential", sparsity_target=0.75, sparsity_target_epoch=2))
    assert run_epochs(s, 4) == [0.0, 0.5, 0.75, 0.75]


def test_multistep_scheduler_uses_first_level_when_init_is_absent() -> None:
    target = FakeTarget()
    s = SparsityScheduler(target, settings(schedule="multistep", multistep_steps=[1, 3], multistep_sparsity_levels=[0.2, 0.4, 0.6]))
    assert s.current_level == 0.2 and s.target_level == 0.6
    assert run_epochs(s, 5) == [0.2, 0.4, 0.4, 0.6, 0.6]
    explicit = SparsityScheduler(
        FakeTarget(), settings(0.05, schedule="multistep", multistep_steps=[1], multistep_sparsity_levels=[0.2, 0.4])
    )
    assert explicit.current_level == 0.05


def test_per_step_updates_with_configured_steps_per_epoch() -> None:
    target = FakeTarget()
    s = SparsityScheduler(
        target, settings(0.0, sparsity_target=0.4, sparsity_target_epoch=2, power=1.0, update_per_optimizer_step=True, steps_per_epoch=4)
    )
    s.epoch_step()
    for _ in range(4):
        s.step()
    assert [round(v, 6) for v in target.levels] == [0.0, 0.0, 0.05, 0.1, 0.15]


def test_per_step_updates_count_steps_in_the_first_epoch(caplog: pytest.LogCaptureFixture) -> None:
    target = FakeTarget()
    s = SparsityScheduler(target, settings(0.0, sparsity_target=0.4, sparsity_target_epoch=2, power=1.0, update_per_optimizer_step=True))
    s.epoch_step()
    for _ in range(2):
        s.step()
    assert target.levels == [0.0]  # the first epoch is counted, not stepped
    with caplog.at_level(logging.INFO, logger="aac.sparsity"):
        s.epoch_step()
    assert s.steps_per_epoch == 2 and "counted 2" in caplog.text
    s.step()
    s.step()
    assert [round(v, 6) for v in target.levels] == [0.0, 0.2, 0.2, 0.3]


def test_mismatched_step_count_warns(caplog: pytest.LogCaptureFixture) -> None:
    s = SparsityScheduler(FakeTarget(), settings(0.0, update_per_optimizer_step=True, steps_per_epoch=5))
    s.epoch_step()
    s.step()
    with caplog.at_level(logging.WARNING, logger="aac.sparsity"):
        s.epoch_step()
    assert "steps_per_epoch is 5" in caplog.text


def test_adaptive_raises_the_level_after_patience_epochs() -> None:
    target = FakeTarget(measured=0.0)
    s = SparsityScheduler(target, settings(0.1, schedule="adaptive", sparsity_target=0.3, patience=2, step=0.1, eps=0.03))
    assert run_epochs(s, 3) == [0.1, 0.1, 0.1]  # the measured sparsity lags: no raise
    target.measured = 0.09  # within eps of 0.1
    assert run_epochs(s, 4) == [0.1, 0.2, 0.2, 0.2]
    target.measured = 0.5
    assert run_epochs(s, 4) == [0.2, 0.3, 0.3, 0.3]  # capped at the target


def test_scheduler_state_round_trip() -> None:
    s = SparsityScheduler(FakeTarget(0.5), settings(0.0, schedule="adaptive", sparsity_target=0.5, patience=3))
    run_epochs(s, 3)
    state = s.get_state()
    fresh = SparsityScheduler(FakeTarget(), settings(0.0, schedule="adaptive", sparsity_target=0.5, patience=3))
    fresh.load_state(state)
    assert fresh.get_state() == state
    assert fresh.current_level == s.current_level and fresh.current_epoch == 2
    assert not math.isnan(fresh.current_level)
