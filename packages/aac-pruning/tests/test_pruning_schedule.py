"""Pruning schedules and the scheduler's warm-up and freezing."""

import math

import pytest

from aac.pruning.schedule import (
    SCHEDULES,
    BaselineSchedule,
    ExponentialSchedule,
    ExponentialWithBiasSchedule,
    PruningScheduler,
)


def test_baseline_is_the_target_at_once():
    assert [BaselineSchedule(0.4).level(i) for i in range(3)] == [0.4, 0.4, 0.4]


def test_exponential_decays_the_kept_fraction():
    schedule = ExponentialSchedule(0.1, 0.5, steps=5)
    levels = [schedule.level(i) for i in range(6)]
    assert levels[0] == pytest.approx(0.1) and levels[4] == pytest.approx(0.5) and levels[5] == 0.5
    kept = [1 - level for level in levels[:5]]
    ratios = [b / a for a, b in zip(kept, kept[1:], strict=False)]
    assert all(r == pytest.approx(ratios[0]) for r in ratios)  # geometric decay of the kept fraction
    assert ExponentialSchedule(0.1, 0.5, steps=1).level(0) == 0.5


def test_exponential_with_bias_meets_its_three_conditions():
    schedule = ExponentialWithBiasSchedule(0.0, 0.6, steps=9)  # 8 epochs: 1/8 of the schedule is epoch 1
    assert schedule.level(0) == pytest.approx(0.0, abs=1e-9)
    assert schedule.level(1) == pytest.approx(0.75 * 0.6)
    assert schedule.level(8) == pytest.approx(0.6)
    levels = [schedule.level(i) for i in range(9)]
    assert levels == sorted(levels) and schedule.level(20) == pytest.approx(0.6)


def test_exponential_with_bias_from_a_high_start_is_a_straight_line():
    schedule = ExponentialWithBiasSchedule(0.5, 0.6, steps=5)
    assert [schedule.level(i) for i in range(5)] == pytest.approx([0.5, 0.525, 0.55, 0.575, 0.6])


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_ends_at_the_target(name):
    schedule = SCHEDULES[name](0.1, 0.5, 4)
    assert schedule.level(3) == pytest.approx(0.5) and all(0 <= schedule.level(i) <= 0.5 for i in range(10))


def test_scheduler_warms_up_applies_and_freezes():
    applied = []
    scheduler = PruningScheduler(ExponentialSchedule(0.2, 0.5, 3), num_init_steps=2, pruning_steps=3, apply=applied.append)
    for _ in range(8):
        scheduler.epoch_step()
    assert applied[:2] == [0.0, 0.0]
    assert applied[2] == pytest.approx(0.2) and applied[4] == pytest.approx(0.5)
    assert len(applied) == 6 and scheduler.frozen  # frozen after epoch num_init_steps + pruning_steps = 5
    state = scheduler.get_state()
    fresh = PruningScheduler(ExponentialSchedule(0.2, 0.5, 3), 2, 3, apply=applied.append)
    fresh.load_state(state)
    assert fresh.frozen and fresh.current_epoch == 7 and math.isclose(fresh.current_level, 0.5)


def test_baseline_scheduler_freezes_after_the_first_pruned_epoch():
    applied = []
    scheduler = PruningScheduler(BaselineSchedule(0.5), 1, 10, applied.append, freeze_immediately=True)
    for _ in range(4):
        scheduler.epoch_step()
    assert applied == [0.0, 0.5] and scheduler.frozen
