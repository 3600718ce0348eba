"""A metric and a budget on different scales are refused with the likely mistake and its fix (issue 10)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aac.core import MetricScaleError, Registry, create_accuracy_aware_training_loop, create_compressed_model
from aac.core.testing import ToyModel, accuracy, train_epoch


def config(mode: str = "early_exit", **params: Any) -> dict[str, Any]:
    budget = params or {"maximal_absolute_accuracy_degradation": 1.0}
    return {
        "accuracy_aware_training": {"mode": mode, "params": {**budget, "maximal_total_epochs": 2}},
        "compression": {"algorithm": "toy_pruning", "params": {"target": 0.2, "steps": 2}},
    }


def loop_for(registry: Registry, cfg: dict[str, Any], uncompressed: float, **kwargs: Any) -> Any:
    controller, model = create_compressed_model(ToyModel(), cfg, registry=registry)
    return create_accuracy_aware_training_loop(cfg, controller, uncompressed, registry=registry, verbose=False, **kwargs), model


def run(loop: Any, model: Any, log_dir: Path, scale: float = 1.0) -> Any:
    return loop.run(
        model, lambda c, m, epoch, optimizer, lr_scheduler: train_epoch(m), lambda m, epoch: scale * accuracy(m), log_dir=log_dir
    )


@pytest.mark.parametrize("mode", ["early_exit", "adaptive_compression_level"])
def test_a_fraction_with_a_budget_in_points_is_refused_with_the_fix(registry: Registry, mode: str) -> None:
    """0.95 with an absolute budget of 1.0 would make every model, even a ruined one, 'within budget'."""
    with pytest.raises(MetricScaleError) as error:
        loop_for(registry, config(mode), 0.95)
    message = str(error.value)
    assert "from 0.95 to -0.05" in message and "0-1 fraction" in message
    assert "(0.01)" in message and "(95)" in message and "check_metric_scale=False" in message


def test_a_budget_of_more_than_half_the_metric_is_refused_on_any_scale(registry: Registry) -> None:
    with pytest.raises(MetricScaleError, match=r"from 40 to 15, 62% of its value"):
        loop_for(registry, config(maximal_absolute_accuracy_degradation=25.0), 40.0)
    with pytest.raises(MetricScaleError, match=r"relative drop <= 60%"):
        loop_for(registry, config(maximal_relative_accuracy_degradation=60.0), 90.0)


def test_sensible_budgets_pass_on_either_scale(registry: Registry) -> None:
    loop_for(registry, config(maximal_absolute_accuracy_degradation=0.01), 0.95)
    loop_for(registry, config(maximal_absolute_accuracy_degradation=1.0), 95.0)
    loop_for(registry, config(maximal_relative_accuracy_degradation=1.0), 0.95)
    # lower is better (a loss, an error rate): an increase is not bounded by the metric's value
    loop_for(registry, config(maximal_absolute_accuracy_degradation=1.0, metric_mode="min"), 0.3)


def test_the_check_can_be_silenced(registry: Registry, tmp_path: Path) -> None:
    loop, model = loop_for(registry, config(), 0.95, check_metric_scale=False)
    run(loop, model, tmp_path)
    assert loop.statistics.feasible


@pytest.mark.parametrize("mode", ["early_exit", "adaptive_compression_level"])
def test_validate_fn_returning_a_fraction_against_a_percent_baseline_is_refused(registry: Registry, tmp_path: Path, mode: str) -> None:
    loop, model = loop_for(registry, config(mode), 90.0)
    with pytest.raises(MetricScaleError, match=r"validate_fn returned 0\.9 at epoch 0 but uncompressed_model_accuracy is 90"):
        run(loop, model, tmp_path)


def test_validate_fn_returning_percent_against_a_fraction_baseline_is_refused(registry: Registry, tmp_path: Path) -> None:
    loop, model = loop_for(registry, config(maximal_absolute_accuracy_degradation=0.01), 0.9)
    with pytest.raises(MetricScaleError, match=r"returns percent while the uncompressed accuracy is a 0-1 fraction"):
        run(loop, model, tmp_path, scale=100.0)


def test_a_collapsed_compressed_model_is_not_taken_for_a_scale_mismatch(registry: Registry, tmp_path: Path) -> None:
    """76 % uncompressed, 0.3 % after compression: bad, but on the same scale - the search must go on."""
    loop, model = loop_for(registry, config(), 76.0)
    run(loop, model, tmp_path, scale=1 / 300)
    assert not loop.statistics.feasible
