"""The cross-field rules a JSON Schema cannot express, one test per rule.

Each test asserts the exact JSON path and the part of the message a user acts on, because those are
what ``aac validate`` prints; a rule that fires at the wrong path is as unhelpful as a missing one.
"""

from __future__ import annotations

from typing import Any

import pytest

from aac.core import ConfigError, ConfigProblem, Registry, load_config
from aac.core.config import ADAPTIVE, EARLY_EXIT

PARAMS = "$.accuracy_aware_training.params"


def config(mode: str = ADAPTIVE, compression: Any = None, **params: Any) -> dict[str, Any]:
    params.setdefault("maximal_relative_accuracy_degradation", 1.0)
    data: dict[str, Any] = {"accuracy_aware_training": {"mode": mode, "params": params}}
    data["compression"] = {"algorithm": "toy_pruning"} if compression is None else compression
    return data


def problems(data: Any, registry: Registry) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        load_config(data, registry=registry)
    return info.value.problems


def only_problem(data: Any, registry: Registry) -> ConfigProblem:
    found = problems(data, registry)
    assert len(found) == 1, found
    return found[0]


# -- accuracy budget -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [ADAPTIVE, EARLY_EXIT])
@pytest.mark.parametrize(
    ("given", "count"),
    [({}, 0), ({"maximal_relative_accuracy_degradation": 1.0, "maximal_absolute_accuracy_degradation": 0.5}, 2)],
    ids=["none", "both"],
)
def test_exactly_one_degradation_kind(registry: Registry, mode: str, given: dict[str, float], count: int) -> None:
    data = config(mode)
    data["accuracy_aware_training"]["params"] = given
    problem = only_problem(data, registry)
    assert problem.path == PARAMS
    assert (
        "give exactly one of 'maximal_relative_accuracy_degradation' (percent) and 'maximal_absolute_accuracy_degradation'"
        in problem.message
    )
    assert problem.message.endswith(f"found {count}")


@pytest.mark.parametrize("kind", ["maximal_relative_accuracy_degradation", "maximal_absolute_accuracy_degradation"])
def test_either_degradation_kind_alone_is_valid(registry: Registry, kind: str) -> None:
    data = config()
    data["accuracy_aware_training"]["params"] = {kind: 0.5}
    assert load_config(data, registry=registry).accuracy_aware_training is not None


# -- mode-specific keys ----------------------------------------------------------------------------


def test_adaptive_only_keys_are_rejected_in_early_exit_mode(registry: Registry) -> None:
    """They would be silently ignored; every one of them is reported, at its own path."""
    adaptive_only = {
        "initial_training_phase_epochs": 5,
        "patience_epochs": 3,
        "minimal_compression_rate_step": 0.05,
        "maximal_compression_rate": 0.8,
        "search_strategy": "step",
    }
    found = problems(config(EARLY_EXIT, **adaptive_only), registry)

    assert sorted(p.path for p in found) == sorted(f"{PARAMS}.{key}" for key in adaptive_only)
    assert all(p.message.endswith("is only used in 'adaptive_compression_level' mode, not in 'early_exit'") for p in found)


def test_shared_keys_are_fine_in_early_exit_mode(registry: Registry) -> None:
    data = config(EARLY_EXIT, maximal_total_epochs=20, validate_every_n_epochs=2, metric_mode="min")
    params = load_config(data, registry=registry).accuracy_aware_training
    assert params is not None and params.mode == EARLY_EXIT and params.metric_mode == "min"


def test_a_mistyped_mode_is_reported_once_without_mode_specific_noise(registry: Registry) -> None:
    problem = only_problem(config("adaptive", patience_epochs=3), registry)
    assert problem.path == "$.accuracy_aware_training.mode"
    assert "'adaptive' is not one of" in problem.message


# -- algorithms ------------------------------------------------------------------------------------


def test_an_algorithm_may_appear_only_once(registry: Registry) -> None:
    data = {"compression": [{"algorithm": "toy_quant"}, {"algorithm": "toy_pruning"}, {"algorithm": "toy_quant"}]}
    problem = only_problem(data, registry)
    assert problem == ConfigProblem(
        "$.compression[2].algorithm",
        "algorithm 'toy_quant' is configured twice (also at $.compression[0]); merge the two sections",
    )


def test_unknown_algorithm_gets_a_close_match(registry: Registry) -> None:
    problem = only_problem({"compression": [{"algorithm": "toy_prunning"}]}, registry)
    assert problem.path == "$.compression[0].algorithm"
    assert problem.message.startswith("unknown algorithm 'toy_prunning' (did you mean 'toy_pruning'?); known algorithms: ")


def test_unknown_algorithm_without_a_close_match_lists_the_known_ones(registry: Registry) -> None:
    problem = only_problem({"compression": {"algorithm": "zzz"}}, registry)
    assert "did you mean" not in problem.message
    assert all(name in problem.message for name in ("toy_pruning", "toy_quant", "filter_pruning", "quantization"))


@pytest.mark.parametrize(
    ("name", "package"),
    [
        ("filter_pruning", "aac-pruning"),
        ("magnitude_sparsity", "aac-sparsity"),
        ("rb_sparsity", "aac-sparsity"),
        ("const_sparsity", "aac-sparsity"),
        ("quantization", "aac-quant"),
    ],
)
def test_known_nncf_algorithm_names_the_package_to_install(registry: Registry, name: str, package: str) -> None:
    problem = only_problem({"compression": {"algorithm": name}}, registry)
    assert problem == ConfigProblem(
        "$.compression.algorithm", f"algorithm '{name}' is provided by {package}, which is not installed: pip install {package}"
    )


@pytest.mark.parametrize("value", [["toy_pruning"], {"name": "toy_pruning"}, 3])
def test_a_non_string_algorithm_is_a_type_problem_not_a_crash(registry: Registry, value: Any) -> None:
    problem = only_problem(config(compression=[{"algorithm": value}]), registry)
    assert problem.path == "$.compression[0].algorithm"
    assert "is not of type 'string'" in problem.message


def test_a_section_without_algorithm(registry: Registry) -> None:
    problem = only_problem({"compression": [{"params": {}}]}, registry)
    assert problem == ConfigProblem("$.compression[0]", "'algorithm' is a required property")


@pytest.mark.parametrize("compression", ["toy_pruning", 3])
def test_compression_of_the_wrong_shape(registry: Registry, compression: Any) -> None:
    problem = only_problem({"compression": compression}, registry)
    assert problem.path == "$.compression"
    assert problem.message.endswith("has the wrong shape (expected an object or an array)")


# -- one adaptive-level algorithm ------------------------------------------------------------------


def test_one_adaptive_and_fixed_level_algorithms_are_fine(nncf_registry: Registry) -> None:
    """Seed 001: quantization + filter pruning is supported, the pruning level is searched."""
    data = config(compression=[{"algorithm": "quantization"}, {"algorithm": "filter_pruning"}])
    assert [s.name for s in load_config(data, registry=nncf_registry).compression_sections()] == ["quantization", "filter_pruning"]


@pytest.mark.parametrize("compression", [[{"algorithm": "quantization"}], []], ids=["fixed-only", "empty-list"])
def test_adaptive_mode_without_an_adaptive_algorithm(nncf_registry: Registry, compression: Any) -> None:
    """A ``compression`` key that names no adaptive algorithm is refused; without the key, the controller
    is built in code (test_standalone_controller.py)."""
    problem = only_problem(config(compression=compression), nncf_registry)
    assert problem.path == "$.compression"
    assert problem.message.startswith("'adaptive_compression_level' mode needs exactly one adaptive-level algorithm, but ")
    expected = "quantization cannot have its level searched" if compression else "the compression list is empty"
    assert expected in problem.message
    assert "add one of: filter_pruning, rb_sparsity, toy_pruning" in problem.message


def test_two_adaptive_algorithms_name_every_offender(nncf_registry: Registry) -> None:
    """Seed 001: filter pruning + sparsity is not supported - both adaptive, only one can be searched."""
    data = config(
        compression=[
            {"algorithm": "filter_pruning"},
            {"algorithm": "quantization"},
            {"algorithm": "rb_sparsity"},
            {"algorithm": "toy_pruning"},
        ]
    )
    problem = only_problem(data, nncf_registry)
    assert problem.path == "$.compression"
    offenders = problem.message.split("3 adaptive-level algorithms are configured: ", 1)[1].split(". Keep", 1)[0]
    assert offenders == "filter_pruning, rb_sparsity, toy_pruning", "every adaptive one, and not the fixed-level quantization"


def test_adaptivity_comes_from_the_plugins_flag_not_the_name(nncf_registry: Registry) -> None:
    """``toy_quant`` is fixed-level because its plugin says so; two of them would still need an adaptive one."""
    problem = only_problem(config(compression=[{"algorithm": "toy_quant"}, {"algorithm": "quantization"}]), nncf_registry)
    assert "toy_quant, quantization cannot have its level searched" in problem.message


def test_adaptive_rule_waits_for_unknown_names(registry: Registry) -> None:
    """With an unknown algorithm adaptivity cannot be judged; only the unknown name is reported."""
    problem = only_problem(config(compression=[{"algorithm": "toy_quant"}, {"algorithm": "mystery"}]), registry)
    assert problem.path == "$.compression[1].algorithm"


def test_early_exit_does_not_need_an_adaptive_algorithm(nncf_registry: Registry) -> None:
    load_config(config(EARLY_EXIT, compression={"algorithm": "quantization"}), registry=nncf_registry)


# -- unknown keys and search settings ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "path", "suggestion"),
    [
        (config(patience_epoch=3), f"{PARAMS}.patience_epoch", "patience_epochs"),
        (config(compression={"algorithm": "toy_pruning", "params": {"targett": 0.3}}), "$.compression.params.targett", "target"),
        (config(compression=[{"algorithm": "toy_pruning", "paramz": {}}]), "$.compression[0].paramz", "params"),
        ({"accuracy_aware_training": {"mode": EARLY_EXIT, "parms": {}}}, "$.accuracy_aware_training.parms", "params"),
        ({"input_info": {"sample_sizes": [1, 3]}}, "$.input_info.sample_sizes", "sample_size"),
    ],
    ids=["aa-params", "section-params", "section-key", "aa-section", "input-info"],
)
def test_unknown_keys_get_did_you_mean(registry: Registry, data: dict[str, Any], path: str, suggestion: str) -> None:
    found = {p.path: p.message for p in problems(data, registry)}
    key = path.rsplit(".", 1)[1]
    assert found[path].startswith(f"unknown key '{key}' (did you mean '{suggestion}'?); allowed: ")


def test_minimal_rate_above_maximal_rate(registry: Registry) -> None:
    problem = only_problem(config(minimal_compression_rate=0.6, maximal_compression_rate=0.4), registry)
    assert problem == ConfigProblem(f"{PARAMS}.minimal_compression_rate", "0.6 is above maximal_compression_rate 0.4")


def test_minimal_rate_is_also_checked_against_the_default_maximum(registry: Registry) -> None:
    assert only_problem(config(minimal_compression_rate=0.97), registry).message == "0.97 is above maximal_compression_rate 0.95"


def test_minimal_step_above_initial_step(registry: Registry) -> None:
    problem = only_problem(config(minimal_compression_rate_step=0.2), registry)
    assert problem.path == f"{PARAMS}.minimal_compression_rate_step"
    assert problem.message.startswith("0.2 is above initial_compression_rate_step 0.1")


def test_equal_rates_and_steps_are_allowed(registry: Registry) -> None:
    load_config(
        config(
            minimal_compression_rate=0.3,
            maximal_compression_rate=0.3,
            minimal_compression_rate_step=0.05,
            initial_compression_rate_step=0.05,
        ),
        registry=registry,
    )


def test_unknown_search_strategy(registry: Registry) -> None:
    problem = only_problem(config(search_strategy="stepp"), registry)
    assert problem == ConfigProblem(
        f"{PARAMS}.search_strategy", "unknown search strategy 'stepp' (did you mean 'step'?); installed: frontier, step"
    )


def test_every_section_accepts_nncf_common_keys(registry: Registry) -> None:
    """NNCF lets every algorithm section carry scopes, validate_scopes, compression_lr_multiplier and a
    batch-norm adaptation initializer; a plugin schema that leaves them out still accepts them."""
    section = {
        "algorithm": "toy_pruning",
        "ignored_scopes": ["a"],
        "validate_scopes": False,
        "compression_lr_multiplier": 2.0,
        "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 64}},
    }
    config = load_config({"compression": section}, registry=registry)
    (parsed,) = config.compression_sections()
    assert parsed.validate_scopes is False and parsed.batchnorm_adaptation_samples == 64
    with pytest.raises(ConfigError, match=r"\$\.compression\.initializer\.batchnorm_adaptation\.num_samples"):
        load_config({"compression": {**section, "initializer": {"batchnorm_adaptation": {"num_samples": 1}}}}, registry=registry)


def test_batchnorm_adaptation_defaults_follow_nncf(registry: Registry) -> None:
    plain = load_config({"compression": {"algorithm": "toy_pruning"}}, registry=registry).compression_sections()[0]
    asked = load_config(
        {"compression": {"algorithm": "toy_pruning", "initializer": {"batchnorm_adaptation": {}}}}, registry=registry
    ).compression_sections()[0]
    assert (plain.batchnorm_adaptation_samples, asked.batchnorm_adaptation_samples) == (0, 2000)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_numbers_that_are_not_numbers_are_refused_where_they_stand(registry: Registry, literal: str) -> None:
    """Python's JSON reader accepts NaN and Infinity, and no schema bound fails for NaN."""
    text = (
        '{"accuracy_aware_training": {"mode": "adaptive_compression_level", "params": {'
        f'"maximal_absolute_accuracy_degradation": 1.0, "compression_rate_step_reduction_factor": {literal}}}}},'
        '"compression": {"algorithm": "toy_pruning"}}'
    )
    with pytest.raises(ConfigError) as error:
        load_config(text, registry=registry)
    assert any(
        p.path == "$.accuracy_aware_training.params.compression_rate_step_reduction_factor"
        and p.message.startswith("must be a finite number")
        for p in error.value.problems
    )
