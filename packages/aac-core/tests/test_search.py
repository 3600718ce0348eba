"""The default ``frontier`` search end to end: real levels, probes, early rejection, warm starts, resume.

The model is core's toy with a learning curve: ``skill`` is the rate the network has adapted to.
Validation gives ``1 - SLOPE * max(0, rate - skill)``; an epoch moves ``skill`` towards the current rate by
``SPEED``, but never past ``KNEE`` - the architecture's true limit. With a budget of 0.05 below 1.0, a
rate is feasible once trained if it is at most ``KNEE + 0.05 / SLOPE``: the frontier is ``KNEE`` on the
controller's 0.05 grid, and a probe (no training) shows how far a rate is from the current skill.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest

from aac.core import AacError, Registry, create_accuracy_aware_training_loop, create_compressed_model
from aac.core.config.accuracy_aware import AccuracyAwareParams
from aac.core.testing import ToyModel
from aac.core.training.search import LEVEL_FEASIBLE, LEVEL_REJECTED, FrontierSearch, LevelOutcome, LevelSpace, SearchBounds, to_ticks

KNEE = 0.6
SLOPE = 3.0
SPEED = 0.15
GRID = 0.05


def config(**params: Any) -> dict[str, Any]:
    base = {
        "maximal_absolute_accuracy_degradation": 0.05,
        "initial_training_phase_epochs": 2,
        "patience_epochs": 3,
        "maximal_total_epochs": 40,
    }
    return {
        "accuracy_aware_training": {"mode": "adaptive_compression_level", "params": {**base, **params}},
        "compression": {"algorithm": "toy_pruning", "params": {"target": 0.2, "steps": 2, "grid": GRID}},
    }


class Crash(Exception):
    """A simulated kill."""


class Run:
    """One run of the toy; ``crash_at_call`` raises in the n-th call of train or validate (counted together)."""

    def __init__(self, registry: Registry, cfg: dict[str, Any], crash_at_call: int | None = None) -> None:
        self.controller, self.model = create_compressed_model(ToyModel(skill=0.0), cfg, registry=registry)
        self.loop = create_accuracy_aware_training_loop(cfg, self.controller, 1.0, registry=registry, verbose=False)
        self.calls: list[str] = []
        self.crash_at_call = crash_at_call

    def _call(self, what: str) -> None:
        self.calls.append(what)
        if self.crash_at_call is not None and len(self.calls) == self.crash_at_call:
            raise Crash(f"killed in call {len(self.calls)} ({what})")

    def train(self, controller: Any, model: ToyModel, epoch: int, optimizer: Any, lr_scheduler: Any) -> float:
        self._call("train")
        controller.scheduler.epoch_step()  # as NNCF's examples do: the loop must have frozen the schedule in the search
        model.skill = round(min(model.rate, KNEE, model.skill + SPEED), 6)
        return 0.0

    def validate(self, model: ToyModel, epoch: int) -> float:
        self._call("validate")
        return round(1.0 - SLOPE * max(0.0, model.rate - model.skill), 6)

    def run(self, log_dir: Path) -> Any:
        self.loop.run(self.model, self.train, self.validate, log_dir=log_dir)
        return self.loop.statistics


def trained_levels(statistics: Any) -> list[tuple[float, int, str | None]]:
    """(rate, epochs, why it ended) of every search level, in order."""
    search = [r for r in statistics.history if r.phase == "search"]
    levels = []
    for rate, group in itertools.groupby(search, key=lambda r: r.compression_rate):
        records = list(group)
        levels.append((rate, len(records), records[-1].level_end))
    return levels


def test_frontier_finds_the_knee_on_real_levels_without_training_a_level_twice(registry: Registry, tmp_path: Path) -> None:
    statistics = Run(registry, config()).run(tmp_path)
    assert statistics.feasible and statistics.compression_rate == pytest.approx(KNEE)
    levels = trained_levels(statistics)
    rates = [rate for rate, _, _ in levels]
    assert len(rates) == len(set(rates)), f"a level was trained twice: {levels}"
    assert all(round(rate / GRID, 6).is_integer() for rate in rates), "every trained rate is a real level of the grid"
    assert "frontier is found" in statistics.stop_reason
    # probes are recorded as probes, at real levels, and are not epochs
    probes = [r for r in statistics.history if r.is_probe]
    assert probes and statistics.probes == len(probes)
    assert all(round(r.compression_rate / GRID, 6).is_integer() for r in probes)
    assert statistics.total_epochs == sum(1 for r in statistics.history if not r.is_probe and r.epoch > 0)


def test_frontier_needs_fewer_epochs_than_step_for_at_least_its_rate(registry: Registry, tmp_path: Path) -> None:
    frontier = Run(registry, config()).run(tmp_path / "frontier")
    step = Run(registry, config(search_strategy="step", early_rejection=False)).run(tmp_path / "step")
    assert frontier.compression_rate >= step.compression_rate
    assert frontier.total_epochs < step.total_epochs


def test_early_rejection_ends_a_hopeless_level_and_spares_a_recovering_one(registry: Registry, tmp_path: Path) -> None:
    levels = trained_levels(Run(registry, config()).run(tmp_path))
    # a first step of FIRST_TARGET allowed drops meets the budget in one epoch, so the target doubles: the
    # jump to 0.6 starts 0.25 short after its first epoch but recovers by SPEED per epoch - it is spared
    assert levels[:2] == [(0.35, 1, LEVEL_FEASIBLE), (0.6, 2, LEVEL_FEASIBLE)]
    # a level beyond the knee cannot recover: rejected after its first epoch instead of patience_epochs (3)
    rejected = [level for level in levels if level[2] == LEVEL_REJECTED]
    assert rejected and all(rate > KNEE and epochs == 1 for rate, epochs, _ in rejected)


def test_early_rejection_can_be_switched_off(registry: Registry, tmp_path: Path) -> None:
    levels = trained_levels(Run(registry, config(early_rejection=False)).run(tmp_path))
    assert all(end != LEVEL_REJECTED for _, _, end in levels)
    assert any(rate > KNEE and epochs == 3 for rate, epochs, _ in levels)  # a hopeless level used all its patience


@pytest.mark.parametrize("warm_start", ["current", "best_feasible", "directional"])
def test_warm_start_decides_where_a_level_starts(
    registry: Registry, tmp_path: Path, warm_start: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first jump far past the knee is rejected; the level after it goes down and continues from the failed
    level's weights (``current``, ``directional``) or reloads the best feasible model, the initial phase's
    (``best_feasible``). Its start probe tells which."""
    monkeypatch.setattr(FrontierSearch, "FIRST_TARGET", 100.0)  # the first target lets the search jump to the top
    statistics = Run(registry, config(warm_start=warm_start)).run(tmp_path)
    history = statistics.history
    failed = next(i for i, r in enumerate(history) if r.level_end == LEVEL_REJECTED)
    following = next(i for i in range(failed + 1, len(history)) if history[i].phase == "search")
    start_probe = history[following - 1]
    assert start_probe.is_probe and start_probe.compression_rate == history[following].compression_rate
    assert start_probe.compression_rate < history[failed].compression_rate  # going down
    skill_at_start = round(start_probe.compression_rate - (1.0 - start_probe.metric) / SLOPE, 6)
    if warm_start == "best_feasible":
        assert skill_at_start == pytest.approx(0.2)  # the initial phase's model, the best feasible one
    else:
        assert skill_at_start == pytest.approx(0.2 + SPEED)  # the failed level had trained the skill one epoch further
    assert statistics.feasible


def test_resume_after_a_kill_gives_the_identical_result(registry: Registry, tmp_path: Path) -> None:
    reference_run = Run(registry, config())
    reference = reference_run.run(tmp_path / "reference")
    calls = reference_run.calls
    # every validation is an epoch's, a probe's or (last) the returned model's re-validation
    kinds = iter(["probe" if r.is_probe else "epoch" for r in reference.history if r.metric is not None] + ["final"])
    numbered = [(i + 1, what if what == "train" else next(kinds)) for i, what in enumerate(calls)]
    probes = [n for n, kind in numbered if kind == "probe"]
    trains = [n for n, kind in numbered if kind == "train"]
    # kills: in the initial phase, in the first probe, in the second (the saved state then says the search has
    # begun, while the last checkpoint is the initial phase's, schedule still running), in a probe in the middle
    # of the search, in the last training epoch and in the final re-validation
    kill_points = [trains[1], probes[0], probes[1], probes[len(probes) // 2], trains[-1], len(calls)]
    assert numbered[-1][1] == "final" and len(probes) >= 3
    assert len(set(kill_points)) == len(kill_points)
    for point in kill_points:
        folder = tmp_path / f"killed-at-{point}"
        with pytest.raises(Crash):
            Run(registry, config(), crash_at_call=point).run(folder)
        resumed = Run(registry, config()).run(folder)  # a fresh process: new model, controller and loop
        assert (resumed.compression_rate, resumed.compressed_accuracy, resumed.total_epochs, resumed.stop_reason) == (
            reference.compression_rate,
            reference.compressed_accuracy,
            reference.total_epochs,
            reference.stop_reason,
        ), point
        trained = [(r.epoch, r.compression_rate, r.metric, r.level_end) for r in resumed.history if not r.is_probe]
        assert trained == [(r.epoch, r.compression_rate, r.metric, r.level_end) for r in reference.history if not r.is_probe], point
        probed = [(r.epoch, r.compression_rate, r.metric) for r in resumed.history if r.is_probe]
        assert probed == [(r.epoch, r.compression_rate, r.metric) for r in reference.history if r.is_probe], point


def test_level_space_lists_the_distinct_real_levels_between_two_rates() -> None:
    step = to_ticks(0.125)
    levels = LevelSpace(lambda ticks: round(ticks / step) * step, lambda ticks: 0.0)
    # requests every 0.025 between 0.5 and 0.95 land on three real levels (and the top one, 1.0, is outside)
    assert levels.grid(to_ticks(0.5), to_ticks(0.95), to_ticks(0.025)) == [to_ticks(0.625), to_ticks(0.75), to_ticks(0.875)]
    # on a continuous grid the requests run up from the low end and down from the high one: 0.2006, one resolution
    # below a level that failed at 0.2256, is a candidate, not only 0.2 on the grid anchored at 0.1
    continuous = LevelSpace(lambda ticks: ticks, lambda ticks: 0.0)
    candidates = continuous.grid(to_ticks(0.1), to_ticks(0.2256), to_ticks(0.025))
    assert to_ticks(0.2006) in candidates and to_ticks(0.2) in candidates and max(candidates) == to_ticks(0.2256) - 1


@pytest.mark.parametrize("answer", [float("nan"), 1.5, "0.3", None])
def test_a_controller_answering_an_impossible_real_rate_is_named(registry: Registry, tmp_path: Path, answer: Any) -> None:
    run = Run(registry, config())
    run.controller.reachable_compression_rate = lambda rate: answer  # type: ignore[method-assign]
    with pytest.raises(AacError, match=r"'toy_pruning'.reachable_compression_rate\(.*\) returned .*must return the rate in \[0, 1\]"):
        run.run(tmp_path)


@pytest.mark.parametrize("strategy", ["frontier", "step"])
@pytest.mark.parametrize("early_rejection", [True, False])
def test_every_trained_and_returned_rate_lies_within_the_bounds(
    registry: Registry, tmp_path: Path, strategy: str, early_rejection: bool
) -> None:
    """The initial phase ends at 0.2, above the maximal rate 0.15: the search starts at the bound (its start
    probe already meets the budget; without probes it is trained)."""
    statistics = Run(registry, config(maximal_compression_rate=0.15, search_strategy=strategy, early_rejection=early_rejection)).run(
        tmp_path
    )
    searched = [r.compression_rate for r in statistics.history if r.phase in ("search", "probe")]
    assert searched and all(rate <= 0.15 for rate in searched)
    assert any(r.phase == "search" for r in statistics.history) != early_rejection
    assert statistics.compression_rate == 0.15 and statistics.feasible


@pytest.mark.parametrize(
    ("bounds", "message"),
    [
        ({"minimal_compression_rate": -0.1}, r"minimal_compression_rate must be a rate in \[0, 1\], got -0.1"),
        ({"maximal_compression_rate": float("nan")}, r"maximal_compression_rate must be a rate in \[0, 1\], got nan"),
        ({"maximal_compression_rate": "0.5"}, r"maximal_compression_rate must be a rate in \[0, 1\], got '0.5'"),
    ],
)
def test_bounds_given_to_the_constructor_are_checked_at_once(registry: Registry, bounds: dict[str, Any], message: str) -> None:
    controller, _ = create_compressed_model(ToyModel(), config(), registry=registry)
    with pytest.raises(AacError, match=message):
        create_accuracy_aware_training_loop(config(), controller, 1.0, registry=registry, **bounds)


def _frontier_over(probe_deficit: dict[float, float], allowed_drop: float = 1.0) -> FrontierSearch:
    """A frontier search on a 0.1 grid whose probes return ``-probe_deficit[rate]``."""
    params = AccuracyAwareParams.from_section({"mode": "adaptive_compression_level", "params": {"minimal_compression_rate_step": 0.05}})
    search = FrontierSearch(params)
    search.levels = LevelSpace(
        lambda ticks: round(ticks / to_ticks(0.1)) * to_ticks(0.1),
        lambda ticks: -probe_deficit[round(ticks / GRID_TICKS, 6)],
        allowed_drop=allowed_drop,
    )
    search.start(to_ticks(0.1), SearchBounds(minimum=0, maximum=to_ticks(0.9)))
    return search


GRID_TICKS = to_ticks(1.0)
DEFICITS = {0.2: 1.0, 0.3: 3.0, 0.4: 6.0, 0.5: 10.0, 0.6: 15.0, 0.7: 30.0, 0.8: 50.0}


def test_the_target_starts_at_first_target_allowed_drops_and_doubles_after_a_one_epoch_success() -> None:
    search = _frontier_over(DEFICITS)
    # nothing learnt: the highest level whose probe is within FIRST_TARGET (4) allowed drops
    assert search.next_rate(LevelOutcome(to_ticks(0.1), True, 0.5, 3, ended="initial phase")) == to_ticks(0.3)
    # 0.3 met the budget in one epoch: the target doubles to 8, within reach of 0.4 but not of 0.5
    assert search.next_rate(LevelOutcome(to_ticks(0.3), True, 0.2, 1, start_budget=-3.0)) == to_ticks(0.4)
    # 0.4 needed two epochs: the target holds at 8
    assert search.next_rate(LevelOutcome(to_ticks(0.4), True, 0.2, 2, start_budget=-6.0)) == to_ticks(0.4 + 0.1)
    # once a level failed, the target is the middle of the largest recovered and the smallest failed deficit
    search = _frontier_over(DEFICITS)
    search.next_rate(LevelOutcome(to_ticks(0.1), True, 0.5, 3, ended="initial phase"))
    search.next_rate(LevelOutcome(to_ticks(0.3), True, 0.2, 1, start_budget=-3.0))
    assert search.next_rate(LevelOutcome(to_ticks(0.6), False, -2.0, 3, start_budget=-15.0)) == to_ticks(0.4)  # (3 + 15) / 2 = 9


def test_a_rate_the_initial_phase_met_is_known_feasible_to_the_strategy() -> None:
    """The schedule passed 0.4 within budget and ended at 0.6 outside it: the search looks between them, never below."""
    search = _frontier_over({0.5: 2.0})
    search.observe(LevelOutcome(to_ticks(0.4), True, 0.1, 1, ended="initial phase"))
    assert search.next_rate(LevelOutcome(to_ticks(0.6), False, -4.0, 3, ended="initial phase")) == to_ticks(0.5)
    search.levels = LevelSpace(search.levels.reachable, lambda ticks: math.nan, allowed_drop=1.0)
    assert search.next_rate(LevelOutcome(to_ticks(0.5), False, -3.0, 3, start_budget=-2.0)) is None
    assert "0.4 is within budget and the next reachable rate 0.5 is not" in search.stop_reason


@pytest.mark.parametrize(
    ("budget_after_one_epoch", "rejected"),
    [
        (-0.30, True),  # behind the level that made it (-0.10 after its first epoch): rejected at once
        (-0.08, False),  # ahead of it after one epoch, and its own gain reaches the budget: it trains on
    ],
)
def test_a_level_behind_every_level_that_made_it_epoch_for_epoch_is_rejected(
    registry: Registry, budget_after_one_epoch: float, rejected: bool
) -> None:
    """A level that made it needed two epochs: -0.10 after its first, +0.01 after its second. A new level
    that starts 0.5 short and gains 0.2 in its first epoch could still reach the budget by its own gain
    (0.2 x 1.5 x 2 epochs left); what rejects it is being behind the level that made it at the same point."""
    from aac.core.training.progress import LevelProgress

    loop = create_accuracy_aware_training_loop(
        config(), create_compressed_model(ToyModel(), config(), registry=registry)[0], 1.0, registry=registry
    )
    level = LevelProgress(to_ticks(0.5), start_budget=-0.5)
    level.epochs = 1
    level.validated(budget_after_one_epoch)
    assert loop._hopeless(level, [[[1, -0.10], [2, 0.01]]]) is rejected
    assert loop._hopeless(level, []) is False  # without a level that made it, its own gain keeps it going


def test_a_rate_whose_probe_met_the_budget_is_known_feasible() -> None:
    """0.3's probe met the budget while the search looked for its next level (the loop keeps that model). When
    0.4 then fails, the frontier is found between them, though with the new weights 0.3's probe misses and
    0.2's looks recoverable: the search does not go below a rate known to meet the budget."""
    deficits = {0.2: 0.5, 0.3: -0.2, 0.4: 1.0, 0.5: 5.0, 0.6: 9.0, 0.7: 30.0, 0.8: 50.0}
    search = _frontier_over(deficits)
    assert search.next_rate(LevelOutcome(to_ticks(0.1), True, 0.5, 3, ended="initial phase")) == to_ticks(0.4)
    deficits.update({0.2: 0.3, 0.3: 2.0})  # the weights trained at 0.4
    assert search.next_rate(LevelOutcome(to_ticks(0.4), False, -0.8, 3, start_budget=-1.0)) is None
    assert "0.3 is within budget and the next reachable rate 0.4 is not" in search.stop_reason


@pytest.mark.parametrize(
    ("epochs_to_recover", "next_deficit", "next_rate"),
    [
        (3, 5.0, None),  # 0.3 recovered 3.0 only in its last epoch of patience: 5.0 >= 1.5 x 3.0 is hopeless
        (3, 4.0, 0.4),  # 4.0 is beyond the target (3.0) but within 1.5 x 3.0: worth an epoch
        (2, 5.0, 0.4),  # 0.3 had an epoch to spare: 3.0 does not mark the edge of what training recovers
    ],
)
def test_a_level_that_needed_all_its_patience_bounds_what_is_worth_training(
    epochs_to_recover: int, next_deficit: float, next_rate: float | None
) -> None:
    deficits = {0.2: 0.5, 0.3: 3.0, 0.4: next_deficit, 0.5: 20.0, 0.6: 30.0, 0.7: 40.0, 0.8: 50.0, 0.9: 60.0}
    search = _frontier_over(deficits, allowed_drop=0.5)  # the first target is 4 x 0.5 = 2.0
    search.observe(LevelOutcome(to_ticks(0.2), True, 0.1, 3, start_budget=-0.5))  # a smaller last-epoch recovery
    answer = search.next_rate(LevelOutcome(to_ticks(0.3), True, 0.1, epochs_to_recover, start_budget=-3.0))
    assert answer == (None if next_rate is None else to_ticks(next_rate))
    if next_rate is None:
        assert "0.4 is predicted hopeless" in search.stop_reason
        assert "needed all 3 epochs of patience to recover 3" in search.stop_reason


def test_a_last_epoch_recovery_marks_no_edge_when_a_larger_deficit_was_recovered_sooner() -> None:
    """0.2 needed all 3 epochs to recover 0.5 (a fresh optimizer's first epoch can lose ground from a start one
    image short), but 0.3 recovered 3.0 in two: the edge lies beyond 3.0, and 0.4 (5.0) is worth an epoch."""
    deficits = {0.2: 0.5, 0.3: 3.0, 0.4: 5.0, 0.5: 20.0, 0.6: 30.0, 0.7: 40.0, 0.8: 50.0, 0.9: 60.0}
    search = _frontier_over(deficits, allowed_drop=0.5)
    search.observe(LevelOutcome(to_ticks(0.2), True, 0.1, 3, start_budget=-0.5))
    assert search.next_rate(LevelOutcome(to_ticks(0.3), True, 0.1, 2, start_budget=-3.0)) == to_ticks(0.4)


@pytest.mark.parametrize(("second_epoch", "rejected"), [(-0.04, True), (-0.03, False), (-0.01, False)])
def test_a_near_miss_is_rejected_only_when_it_loses_ground(registry: Registry, second_epoch: float, rejected: bool) -> None:
    """Within one allowed drop (0.05) of the budget a level keeps its patience while it holds or gains; a second
    validation below the first is the one sign that ends it."""
    from aac.core.training.progress import LevelProgress

    loop = create_accuracy_aware_training_loop(
        config(), create_compressed_model(ToyModel(), config(), registry=registry)[0], 1.0, registry=registry
    )
    level = LevelProgress(to_ticks(0.5), start_budget=-0.2)
    for budget in (-0.03, second_epoch):
        level.epochs += 1
        level.validated(budget)
    assert loop._hopeless(level, []) is rejected
