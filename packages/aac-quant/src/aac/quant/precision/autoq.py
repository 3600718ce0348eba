"""aac's AutoQ: bit widths for a model-size budget, chosen by measuring the user's metric.

NNCF's AutoQ trains a DDPG agent over hundreds of episodes. aac keeps its contract - the keys, the
budget (quantized weights at most ``compression_ratio`` of their float32 size) and the objective (the
user's ``eval_fn``) - with a cheaper, deterministic search:

1. **sensitivity**: starting from every weight at the highest bit width, each weight in turn (largest
   first) is lowered alone to each lower bit width and the metric is measured - at most ``iter_number``
   measurements; a weight the budget does not reach keeps the highest bit width;
2. **choice**: from the starting point, the step (one weight, one bit width down) that loses the least
   metric per bit saved is taken, again and again, until the size fits the budget (steps that *raise*
   the metric go first);
3. the result is measured once more and reported.

If the measured weights alone cannot fit the budget, the unmeasured ones are lowered by size, largest
first, and the report says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aac.quant.precision.hawq import PrecisionError
from aac.quant.precision.inventory import Inventory


@dataclass
class AutoqResult:
    """What the search measured and chose."""

    bits: dict[str, int]
    size_ratio: float
    base_metric: float
    metric: float
    #: weight key -> bit width -> metric with only that weight lowered
    measured: dict[str, dict[int, float]] = field(default_factory=dict)
    #: weights lowered without a measurement because the budget ran out
    unmeasured_lowered: list[str] = field(default_factory=list)
    evaluations: int = 0


def search_bits(
    inventory: Inventory,
    bits: Sequence[int],
    compression_ratio: float,
    evaluate: Callable[[Mapping[str, int]], float],
    budget: int | None = None,
) -> AutoqResult:
    """Search bit widths for the weights of ``inventory`` (see the module docstring).

    :param evaluate: the metric (higher is better) of the model with these weight bit widths.
    :param budget: most sensitivity measurements (None: all of them); the start and the result are measured besides.
    """
    options = sorted(set(bits), reverse=True)
    top, lowest = options[0], options[-1]
    weights = sorted(inventory.weights, key=lambda w: -w.numel)
    start = {w.key: top for w in weights}
    smallest = inventory.model_size_ratio({w.key: lowest for w in weights})
    if smallest > compression_ratio * (1 + 1e-9):
        raise PrecisionError(
            f"autoq cannot reach compression_ratio {compression_ratio:g} with bits {sorted(options)}: "
            f"even all weights at {lowest} bits leave {smallest:.4f} of the float32 size"
        )
    base = evaluate(start)
    result = AutoqResult(dict(start), inventory.model_size_ratio(start), base, base, evaluations=1)
    if result.size_ratio <= compression_ratio:
        return result
    remaining = budget
    for weight in weights:
        for b in options[1:]:
            if remaining is not None and remaining <= 0:
                break
            result.measured.setdefault(weight.key, {})[b] = evaluate({**start, weight.key: b})
            result.evaluations += 1
            remaining = None if remaining is None else remaining - 1
    chosen = dict(start)
    numel = {w.key: w.numel for w in weights}
    while inventory.model_size_ratio(chosen) > compression_ratio * (1 + 1e-9):
        steps = []
        for key, measured in result.measured.items():
            lower = [b for b in options if b < chosen[key] and b in measured]
            if lower:
                b = lower[0]
                loss = (base - measured[b]) - (base - measured.get(chosen[key], base))
                steps.append((loss / (numel[key] * (chosen[key] - b)), key, b))
        if steps:
            _, key, b = min(steps)
        else:  # the measured weights are at their lowest: lower the largest unmeasured one
            key = next(w.key for w in weights if chosen[w.key] > lowest)
            b = next(o for o in options if o < chosen[key])
            result.unmeasured_lowered.append(key)
        chosen[key] = b
    result.bits = chosen
    result.unmeasured_lowered = list(dict.fromkeys(result.unmeasured_lowered))
    result.size_ratio = inventory.model_size_ratio(chosen)
    result.metric = evaluate(chosen)
    result.evaluations += 1
    return result
