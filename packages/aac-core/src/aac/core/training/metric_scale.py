"""Catch a metric and a budget on different scales before the search trusts them.

The loops compare numbers the user hands over in three places: ``uncompressed_model_accuracy``, the
budget in the config and whatever ``validate_fn`` returns. Nothing ties their scales together, and
the classic slip - accuracy as a 0-1 fraction with ``maximal_absolute_accuracy_degradation: 1.0``
meant as "one percentage point" - makes every model "within budget": the loop then happily returns
the most compressed, ruined model. A silent wrong answer is worse than an error, so the checks here
raise :class:`MetricScaleError`, which names the likely mistake and its fix; a user whose numbers
really are like that passes ``check_metric_scale=False`` to the loop.

Two checks, each cheap and made once:

* **the budget against the uncompressed metric** (at loop construction): a budget that lets a
  higher-is-better metric lose more than half of its value is not a budget;
* **the first validated metric against the uncompressed one** (epoch 0): one in [0, 1], the other in
  (1, 100] and about 100 times the first (within :data:`PERCENT_TOLERANCE`) is a fraction against a
  percentage. A compressed model that merely collapsed (0.3 % against 76 %) is not taken for one.
"""

from __future__ import annotations

from aac.core.config.accuracy_aware import AccuracyAwareParams
from aac.core.errors import MetricScaleError

#: the largest share of a higher-is-better metric a budget may allow to lose
MAX_DROP_SHARE = 0.5
#: a fraction ``f`` and a percentage ``p`` are taken for the same quantity when ``p / (100 f)`` is within this factor
PERCENT_TOLERANCE = 2.0
SILENCE = "pass check_metric_scale=False to create_accuracy_aware_training_loop() if these numbers are meant"


def check_budget_scale(params: AccuracyAwareParams, uncompressed_metric: float) -> None:
    """Raise if the budget allows a higher-is-better metric to lose more than half of its value."""
    if not params.higher_is_better or uncompressed_metric <= 0:
        return
    drop = params.allowed_drop(uncompressed_metric)
    if drop <= MAX_DROP_SHARE * uncompressed_metric:
        return
    tolerable = params.minimal_tolerable_metric(uncompressed_metric)
    what = (
        f"the budget ({params.allowed_drop_text()}) lets the metric fall from {uncompressed_metric:g} to {tolerable:g}, "
        f"{100 * drop / uncompressed_metric:.0f}% of its value"
    )
    absolute = params.maximal_absolute_accuracy_degradation
    if absolute is not None and uncompressed_metric <= 1.0:
        fix = (
            f"uncompressed_model_accuracy {uncompressed_metric:g} looks like a 0-1 fraction while "
            f"maximal_absolute_accuracy_degradation {absolute:g} reads as percentage points: give the budget on the "
            f"metric's scale ({absolute / 100:g}) or the metrics in percent ({100 * uncompressed_metric:g})"
        )
    else:
        fix = "lower the budget in accuracy_aware_training.params, or check uncompressed_model_accuracy"
    raise MetricScaleError(f"{what}, so almost any model would count as within budget. {fix}; {SILENCE}")


def check_first_metric_scale(uncompressed_metric: float, metric: float) -> None:
    """Raise if ``validate_fn``'s first result and ``uncompressed_model_accuracy`` look like fraction and percentage."""
    fraction, percent = sorted((uncompressed_metric, metric))
    if not (0 < fraction <= 1.0 < percent <= 100.0 and 1 / PERCENT_TOLERANCE <= percent / (100 * fraction) <= PERCENT_TOLERANCE):
        return
    if metric == fraction:
        fix = (
            f"validate_fn returned {metric:g} at epoch 0 but uncompressed_model_accuracy is {uncompressed_metric:g}: "
            "validate_fn looks like it returns a 0-1 fraction while the uncompressed accuracy is in percent. "
            "Return percent from validate_fn (x100), or pass the uncompressed accuracy as a fraction"
        )
    else:
        fix = (
            f"validate_fn returned {metric:g} at epoch 0 but uncompressed_model_accuracy is {uncompressed_metric:g}: "
            "validate_fn looks like it returns percent while the uncompressed accuracy is a 0-1 fraction. "
            "Pass the uncompressed accuracy in percent (x100), or return a fraction from validate_fn"
        )
    raise MetricScaleError(f"{fix}; measure both with the same function; {SILENCE}")
