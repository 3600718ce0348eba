"""Config rules that a JSON Schema cannot express (or could only express with unreadable errors)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from aac.core.config.accuracy_aware import ADAPTIVE, ADAPTIVE_ONLY_KEYS, EARLY_EXIT
from aac.core.config.catalog import AlgorithmCatalog
from aac.core.config.sections import section_paths
from aac.core.errors import ConfigProblem, did_you_mean


def check_finite(value: Any, path: str = "$") -> list[ConfigProblem]:
    """NaN and Infinity (which Python's JSON reader accepts) anywhere in the config.

    A JSON Schema bound never fails for NaN, so without this a NaN budget or step factor would pass
    validation and break the run many epochs later.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return [ConfigProblem(path, f"must be a finite number, got {value}")]
    if isinstance(value, Mapping):
        return [p for key, item in value.items() for p in check_finite(item, f"{path}.{key}")]
    if isinstance(value, (list, tuple)):
        return [p for i, item in enumerate(value) for p in check_finite(item, f"{path}[{i}]")]
    return []


def check_algorithms(data: Mapping[str, Any], catalog: AlgorithmCatalog) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    seen: dict[str, str] = {}
    for path, section in section_paths(data):
        name = section.get("algorithm") if isinstance(section, Mapping) else None
        if not isinstance(name, str):
            continue
        spec = catalog.algorithms.get(name)
        if spec is None:
            problems.append(ConfigProblem(f"{path}.algorithm", catalog.unknown_algorithm_message(name)))
        elif spec.check is not None:
            problems.extend(spec.check(section, path))
        if name in seen:
            problems.append(
                ConfigProblem(f"{path}.algorithm", f"algorithm '{name}' is configured twice (also at {seen[name]}); merge the two sections")
            )
        seen.setdefault(name, path)
    return problems


def check_accuracy_aware(data: Mapping[str, Any], catalog: AlgorithmCatalog) -> list[ConfigProblem]:
    section = data.get("accuracy_aware_training")
    if not isinstance(section, Mapping) or not isinstance(section.get("params", {}), Mapping):
        return []
    mode = section.get("mode")
    params: Mapping[str, Any] = section.get("params", {})
    where = "$.accuracy_aware_training.params"
    problems: list[ConfigProblem] = []
    degradations = [k for k in ("maximal_relative_accuracy_degradation", "maximal_absolute_accuracy_degradation") if k in params]
    if len(degradations) != 1:
        problems.append(
            ConfigProblem(
                where,
                "give exactly one of 'maximal_relative_accuracy_degradation' (percent) and "
                f"'maximal_absolute_accuracy_degradation' (metric units); found {len(degradations)}",
            )
        )
    if mode not in (ADAPTIVE, EARLY_EXIT):
        return problems  # the schema reports the mode; judging keys against a mistyped mode would only add noise
    if mode == EARLY_EXIT:
        problems += [
            ConfigProblem(f"{where}.{key}", f"'{key}' is only used in 'adaptive_compression_level' mode, not in '{mode}'")
            for key in params
            if key in ADAPTIVE_ONLY_KEYS
        ]
        return problems
    low, high = params.get("minimal_compression_rate", 0.0), params.get("maximal_compression_rate", 0.95)
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
        problems.append(ConfigProblem(f"{where}.minimal_compression_rate", f"{low} is above maximal_compression_rate {high}"))
    min_step, first_step = params.get("minimal_compression_rate_step", 0.025), params.get("initial_compression_rate_step", 0.1)
    if isinstance(min_step, (int, float)) and isinstance(first_step, (int, float)) and min_step > first_step:
        problems.append(
            ConfigProblem(
                f"{where}.minimal_compression_rate_step",
                f"{min_step} is above initial_compression_rate_step {first_step}: the search would stop before it starts",
            )
        )
    strategy = params.get("search_strategy")
    if isinstance(strategy, str) and strategy not in catalog.search_strategies:
        known = list(catalog.search_strategies)
        problems.append(
            ConfigProblem(
                f"{where}.search_strategy",
                f"unknown search strategy '{strategy}'{did_you_mean(strategy, known)}; installed: {', '.join(known)}",
            )
        )
    problems += _check_one_adaptive(data, catalog)
    return problems


def _check_one_adaptive(data: Mapping[str, Any], catalog: AlgorithmCatalog) -> list[ConfigProblem]:
    """One adaptive-level algorithm among those the config names.

    A config without a ``compression`` key names none: it is used with a controller built in code
    (:func:`standalone_notes` says so), and the loop finds the adaptive part of that controller
    itself. A ``compression`` key that is present is judged, so an empty list is refused.
    """
    if not isinstance(data.get("compression"), (list, Mapping)):
        return []  # absent: a controller built in code; any other value: the schema reports its shape
    names = [s.get("algorithm") if isinstance(s, Mapping) else None for _, s in section_paths(data)]
    known = [n for n in names if isinstance(n, str) and n in catalog.algorithms]
    if len(known) != len(names):
        return []  # unknown names and malformed sections are already reported; adaptivity cannot be judged
    adaptive = [n for n in known if catalog.algorithms[n].adaptive]
    if len(adaptive) == 1:
        return []
    candidates = sorted(n for n, s in catalog.algorithms.items() if s.adaptive)
    if not known:  # only an empty list gets here: an object is always one (judged) section
        message = (
            "'adaptive_compression_level' mode needs exactly one adaptive-level algorithm, but the compression list "
            f"is empty; add one of: {', '.join(candidates) or '(none installed)'}, or leave the 'compression' key out "
            "and pass a controller built in code to create_accuracy_aware_training_loop"
        )
    elif not adaptive:
        message = (
            f"'adaptive_compression_level' mode needs exactly one adaptive-level algorithm, but {', '.join(known)} "
            f"cannot have its level searched; add one of: {', '.join(candidates) or '(none installed)'}"
        )
    else:
        message = (
            f"'adaptive_compression_level' mode searches the level of exactly one algorithm, but "
            f"{len(adaptive)} adaptive-level algorithms are configured: {', '.join(adaptive)}. Keep one of them "
            "(non-adaptive algorithms such as quantization can stay)"
        )
    return [ConfigProblem("$.compression", message)]


def standalone_notes(data: Mapping[str, Any]) -> list[str]:
    """Notes (not problems) for a config that only an in-code controller can use.

    A config with an ``accuracy_aware_training`` section and no ``compression`` key is valid: a user
    who wrote their own compression method hands its controller to the loops directly. Validating
    such a file alone should still say that it is half of a run.
    """
    section = data.get("accuracy_aware_training")
    mode = section.get("mode") if isinstance(section, Mapping) else None
    if "compression" in data or mode not in (ADAPTIVE, EARLY_EXIT):
        return []
    return [
        f"$.compression is absent; '{mode}' mode needs a compression controller built in code "
        "(pass it to create_accuracy_aware_training_loop)"
    ]
