"""``load_config``: every source kind, NNCF's commented JSON, exact error positions and the typed views.

NNCF users bring files with comments and trailing commas (seed 004), so the loader must accept them,
and when a file is broken the position must be that of the user's file - not of a cleaned-up copy.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jstyleson
import pytest

import aac.core.config.catalog
from aac.core import AccuracyAwareParams, AlgorithmCatalog, AlgorithmSpec, Config, ConfigError, ConfigProblem, Registry, load_config
from aac.core.config import ADAPTIVE, EARLY_EXIT
from aac.core.config.parsing import MAX_DEPTH

COMMENTED = """\
{
    /* Training hyperparameters
       spanning two lines */
    "batch_size": 256, // a training key: the root is open
    "log_dir": "http://host//not/a/comment/*either*/",
    "compression": [
        {
            "algorithm": "toy_pruning", // the adaptive toy
            "params": {"target": 0.4, "steps": 3,},  // trailing comma inside
        },
    ],
}
"""


def degradation_params(**extra: Any) -> dict[str, Any]:
    return {"maximal_relative_accuracy_degradation": 1.0, **extra}


def adaptive_section(**params: Any) -> dict[str, Any]:
    return {"mode": ADAPTIVE, "params": degradation_params(**params)}


# -- sources -------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_path", [str, Path], ids=["str-path", "pathlib"])
def test_file_with_comments_and_trailing_commas(tmp_path: Path, registry: Registry, as_path: type) -> None:
    path = tmp_path / "commented.json"
    path.write_text(COMMENTED, encoding="utf-8")

    config = load_config(as_path(path), registry=registry)

    assert config.source == str(path)
    assert config["batch_size"] == 256
    assert config["log_dir"] == "http://host//not/a/comment/*either*/", "comment markers inside strings are text"
    assert config["compression"] == [{"algorithm": "toy_pruning", "params": {"target": 0.4, "steps": 3}}]


def test_file_starting_with_a_byte_order_mark(tmp_path: Path, registry: Registry) -> None:
    """Windows editors save UTF-8 with a BOM; NNCF choked on it, aac reads it."""
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + COMMENTED.encode())
    assert load_config(path, registry=registry)["batch_size"] == 256


def test_json_string_and_dict_give_the_same_config(registry: Registry) -> None:
    from_text = load_config(COMMENTED, registry=registry)
    from_dict = load_config(dict(from_text), registry=registry)

    assert from_text == from_dict
    assert from_text.source is None
    assert isinstance(from_dict, Config)


def test_dict_source_is_not_modified(nncf_registry: Registry) -> None:
    """Aliases are applied to a copy: the caller's dict (often reused for several runs) stays as written."""
    data = {
        "accuracy_aware_training": {"mode": EARLY_EXIT, "params": {"maximal_accuracy_degradation": 1.0}},
        "compression": {"algorithm": "filter_pruning", "params": {"weight_importance": "L2"}},
    }
    original = copy.deepcopy(data)

    config = load_config(data, registry=nncf_registry)

    assert data == original
    assert "maximal_relative_accuracy_degradation" in config["accuracy_aware_training"]["params"]


def test_an_already_loaded_config_is_returned_as_is(registry: Registry) -> None:
    config = load_config({"compression": {"algorithm": "toy_quant"}}, registry=registry)
    assert load_config(config) is config


@dataclass(frozen=True)
class FixedCatalog:
    """A catalog written by hand: the two toy algorithms and one search strategy, nothing discovered."""

    algorithms: Mapping[str, AlgorithmSpec]
    search_strategies: Mapping[str, object] = field(default_factory=lambda: {"frontier": None})

    def unknown_algorithm_message(self, name: str) -> str:
        return f"'{name}' is not in this catalog"


def test_a_catalog_passed_in_needs_no_plugin_discovery(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """``load_config(catalog=...)`` validates against exactly that catalog and never asks for the installed plugins."""
    catalog: AlgorithmCatalog = FixedCatalog(dict(registry.algorithms))

    def no_discovery(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("load_config looked for plugins")

    monkeypatch.setattr(aac.core.config.catalog, "_default", no_discovery)
    monkeypatch.setattr(importlib.metadata, "entry_points", no_discovery)
    data = {"compression": {"algorithm": "toy_pruning"}, "accuracy_aware_training": {"mode": ADAPTIVE, "params": degradation_params()}}

    assert load_config(data, catalog=catalog).compression_sections()[0].name == "toy_pruning"
    with pytest.raises(ConfigError) as info:
        load_config({"compression": {"algorithm": "filter_pruning"}}, catalog=catalog)
    assert info.value.problems == [ConfigProblem("$.compression.algorithm", "'filter_pruning' is not in this catalog")]


def test_without_a_catalog_the_installed_plugins_are_used(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aac.core.config.catalog, "_default", lambda: registry)
    assert load_config({"compression": {"algorithm": "toy_quant"}}).compression_sections()[0].name == "toy_quant"
    with pytest.raises(TypeError, match="not both"):
        load_config({}, catalog=registry, registry=registry)


def test_missing_file_is_a_config_error_naming_the_path(tmp_path: Path, registry: Registry) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as info:
        load_config(missing, registry=registry)
    assert info.value.source == str(missing)
    assert [(p.path, p.message) for p in info.value.problems] == [("$", f"config file {missing} does not exist")]


def assert_not_an_object(source: Any, registry: Registry) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(source, registry=registry)
    (problem,) = info.value.problems
    assert problem.path == "$" and problem.message.startswith("a config must be a JSON object, not ")


@pytest.mark.parametrize("text", ["[1, 2]", "42", '"text"', "null"])
def test_a_file_holding_no_object_is_rejected(tmp_path: Path, registry: Registry, text: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(text)
    assert_not_an_object(path, registry)


@pytest.mark.parametrize("text", ["[1, 2]", "  [1, 2]"])
def test_a_json_array_string_is_parsed_not_taken_for_a_path(registry: Registry, text: str) -> None:
    assert_not_an_object(text, registry)


def test_an_unsupported_source_type_is_a_type_error(registry: Registry) -> None:
    with pytest.raises(TypeError, match="path, a JSON string or a dict"):
        load_config(42, registry=registry)  # type: ignore[arg-type]


# -- malformed JSON ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "column", "what"),
    [
        ('{"a": 1,\n  "b": }', 2, 8, "Expecting value"),
        ('{\n  // one comment\n  /* and\n     another */\n  "a": 1\n  "b": 2\n}', 6, 3, "Expecting ',' delimiter"),
        ('/* header */ {"a": [1, 2,],\n "b" 3}', 2, 6, "Expecting ':' delimiter"),
        ('{"url": "x//y", // comment\n "b": tru}', 2, 7, "Expecting value"),
        ('{"a": 1}\n// trailing comment\n}', 3, 1, "Extra data"),
    ],
    ids=["missing-value", "after-comments", "after-trailing-comma", "slashes-in-string", "extra-data"],
)
def test_malformed_json_reports_the_position_in_the_users_file(
    tmp_path: Path, registry: Registry, text: str, line: int, column: int, what: str
) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, registry=registry)
    (problem,) = info.value.problems
    assert problem.path == "$"
    assert problem.message == f"malformed JSON at line {line}, column {column}: {what}"
    assert info.value.source == str(path)


# -- duplicate keys, nesting depth, comment edges (#9) -------------------------------------------


def problems_from_text_and_file(text: str, tmp_path: Path, registry: Registry) -> list[tuple[str, str]]:
    """The problems of ``text`` loaded as a JSON string, checked to be those of the same text in a file."""
    with pytest.raises(ConfigError) as from_text:
        load_config(text, registry=registry)
    path = tmp_path / "config.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as from_file:
        load_config(path, registry=registry)
    assert from_file.value.source == str(path) and from_text.value.source is None
    problems = [(p.path, p.message) for p in from_text.value.problems]
    assert [(p.path, p.message) for p in from_file.value.problems] == problems
    assert all("\n" not in message for _, message in problems), "one line per problem"
    return problems


def loaded_from_text_and_file(text: str, tmp_path: Path, registry: Registry) -> Config:
    config = load_config(text, registry=registry)
    path = tmp_path / "config.json"
    path.write_text(text, encoding="utf-8")
    assert load_config(path, registry=registry) == config
    return config


DUPLICATED = """\
{
  "accuracy_aware_training": {
    "mode": "early_exit",
    "params": {
      "maximal_absolute_accuracy_degradation": 1.0,
      // "maximal_absolute_accuracy_degradation": 7.0,  (a comment: not a key)
      /* "maximal_absolute_accuracy_degradation": 8.0, */
      "log_note": "\\"maximal_absolute_accuracy_degradation\\": 9.0",
      "maximal_absolute_accuracy_degradation": 50.0,
    },
  },
  "compression": [{"algorithm": "toy_pruning", "params": {}}, {"algorithm": "toy_quant", "algorithm": "toy_pruning"}],
  "input_info": {"sample_size": [1, 3]},
  "\\u0069nput_info": {"sample_size": [1, 4]},
  "a": {"x": 1}, "b": {"x": 2},
  "c": 1,
  "c": 2,
  "c": 3
}
"""


def test_duplicate_keys_are_reported_with_path_and_lines(tmp_path: Path, registry: Registry) -> None:
    """Python's json keeps the last value: a budget of 1.0 silently became 50.0. Every duplicate is named."""
    assert problems_from_text_and_file(DUPLICATED, tmp_path, registry) == [
        ("$.accuracy_aware_training.params", "key 'maximal_absolute_accuracy_degradation' appears twice (lines 5 and 9)"),
        ("$.compression[1]", "key 'algorithm' appears twice (line 12 column 64 and line 12 column 90)"),
        ("$", "key 'input_info' appears twice (lines 13 and 14)"),  # an escaped spelling is the same key
        ("$", "key 'c' appears three times (lines 16, 17 and 18)"),
    ]


def test_duplicate_key_holding_a_newline_stays_on_one_line(tmp_path: Path, registry: Registry) -> None:
    assert problems_from_text_and_file('{"x": {"a\\nb": 1, "a\\nb": 2}}', tmp_path, registry) == [
        ("$.x", "key 'a\\nb' appears twice (line 1 column 8 and line 1 column 19)")
    ]


def test_same_key_in_separate_objects_is_no_duplicate(tmp_path: Path, registry: Registry) -> None:
    text = '{"a": {"x": 1}, "b": [{"x": 2}, {"x": 3, "y": {"x": 4}}], "x": "\\"x\\": 5"}'
    assert loaded_from_text_and_file(text, tmp_path, registry)["b"][1] == {"x": 3, "y": {"x": 4}}


def nested(depth: int) -> str:
    """``depth`` levels: objects and arrays alternating, the root an object."""
    opening = "".join('{"a": ' if level % 2 == 0 else "[" for level in range(depth))
    closing = "".join("}" if level % 2 == 0 else "]" for level in reversed(range(depth)))
    return opening + "1" + closing


def test_nesting_up_to_the_limit_is_read(tmp_path: Path, registry: Registry) -> None:
    config = loaded_from_text_and_file(nested(MAX_DEPTH), tmp_path, registry)
    assert load_config(dict(config), registry=registry) == config


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
def test_nesting_past_the_limit_is_a_config_error(tmp_path: Path, registry: Registry, depth: int) -> None:
    """Not a RecursionError from deep inside the JSON reader (``aac validate`` printed one)."""
    column = len(nested(MAX_DEPTH).partition("1")[0]) + 1
    assert problems_from_text_and_file(nested(depth), tmp_path, registry) == [
        ("$", f"nested more than {MAX_DEPTH} levels deep (level {MAX_DEPTH + 1} opens at line 1, column {column})")
    ]


def test_brackets_in_strings_and_comments_do_not_count_as_nesting(tmp_path: Path, registry: Registry) -> None:
    text = '{"a": "' + "[{" * 200 + '", /* ' + "[" * 200 + " */ // " + "{" * 200 + "\n}"
    assert loaded_from_text_and_file(text, tmp_path, registry)["a"] == "[{" * 200


def deep_mapping(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    current = root
    for _ in range(depth - 1):
        current["a"] = {}
        current = current["a"]
    return root


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
def test_mapping_nested_past_the_limit_is_a_config_error(registry: Registry, depth: int) -> None:
    """Checked before the recursive walks (aliases, schema, rules), which would raise RecursionError."""
    with pytest.raises(ConfigError) as info:
        load_config(deep_mapping(depth), registry=registry)
    assert [(p.path, p.message) for p in info.value.problems] == [("$", f"nested more than {MAX_DEPTH} levels deep")]
    load_config(deep_mapping(MAX_DEPTH), registry=registry)


def test_mapping_that_contains_itself_is_a_config_error(registry: Registry) -> None:
    data: dict[str, Any] = {"batch_size": 1, "optimizer": []}
    data["optimizer"].append(data)
    with pytest.raises(ConfigError, match="nested more than"):
        load_config(data, registry=registry)


@pytest.mark.parametrize(
    "text",
    [
        '{"batch_size": 1} // the end',
        '{"batch_size": 1}\n// the end',
        '{"batch_size": 1,} /* the end */',
        '{"batch_size": 1} // "unclosed string and /* unclosed comment',
        '// only a header\n{"batch_size": 1}//',
    ],
    ids=["same-line", "own-line", "block", "markers-inside", "empty-comment"],
)
def test_a_file_may_end_in_a_comment_without_a_final_newline(tmp_path: Path, registry: Registry, text: str) -> None:
    assert loaded_from_text_and_file(text, tmp_path, registry) == {"batch_size": 1}


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ('{"batch_size": 1}\n  /* forgot to close', 2, 3),
        ('{"batch_size": /* forgot\n   to close 1}', 1, 16),
        ('{"url": "http://x/*y", /* real */ "b": 1 /*/ }', 1, 42),
        ('{"batch_size": 1} /* first */ /* second */ /*', 1, 44),
    ],
    ids=["after-the-object", "inside-the-object", "after-markers-in-a-string", "last-of-several"],
)
def test_unterminated_block_comment_is_reported_where_it_starts(
    tmp_path: Path, registry: Registry, text: str, line: int, column: int
) -> None:
    assert problems_from_text_and_file(text, tmp_path, registry) == [
        ("$", f"unterminated /* comment starting at line {line}, column {column}")
    ]


# Strings and keys that look like comments, escapes, brackets and commas, to trip a careless scanner.
TRICKY_STRINGS = [
    "plain",
    "",
    "//",
    "/*",
    "*/",
    "a // b",
    "x /* y */ z",
    '"',
    "\\",
    "\\n",
    "}",
    "]",
    ",",
    ":",
    "[{,}]",
    "ünïcødé",
    "tab\there",
    "line\nbreak",
    "http://host//path/*x*/",
]
FILLERS = [
    "",
    " ",
    "\n",
    '  // a line comment, with "quotes" and /* markers\n',
    "/* block */",
    "/* two\n lines */",
    "/**/",
    "/* ** stars ** */",
    "\t",
]


def random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.choice(["dict", "list", "scalar"] if depth < 5 else ["scalar"])
    if kind == "dict":
        keys = rng.sample(TRICKY_STRINGS + [f"k{i}" for i in range(8)], rng.randint(0, 5))
        return {key: random_value(rng, depth + 1) for key in keys}
    if kind == "list":
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return rng.choice(
        [rng.randint(-(10**6), 10**6), rng.uniform(-1e3, 1e3), rng.random() * 1e-9, True, False, None, rng.choice(TRICKY_STRINGS)]
    )


def commented_json(value: Any, rng: random.Random) -> str:
    """``value`` as JSON with a random comment or whitespace between every two tokens, and trailing commas."""

    def fill() -> str:
        return rng.choice(FILLERS)

    if isinstance(value, dict):
        items = [fill() + json.dumps(k) + fill() + ":" + fill() + commented_json(v, rng) for k, v in value.items()]
    elif isinstance(value, list):
        items = [fill() + commented_json(v, rng) for v in value]
    else:
        return json.dumps(value)
    trailing = "," if items and rng.random() < 0.3 else ""
    opening, closing = "{}" if isinstance(value, dict) else "[]"
    return opening + fill() + ",".join(items) + trailing + fill() + closing


def test_random_commented_configs_load_back_equal(tmp_path: Path, registry: Registry) -> None:
    """Property: any nested data, written with comments between tokens, trailing commas and a final
    ``// comment`` without newline, loads back equal - through a string and a file - and equal to what
    NNCF's reader (jstyleson) makes of it once that comment has its newline."""
    rng = random.Random(20240609)
    path = tmp_path / "random.json"
    for _ in range(300):
        data = {f"key{i}": random_value(rng, 1) for i in range(rng.randint(0, 4))}
        text = rng.choice(FILLERS) + commented_json(data, rng) + rng.choice(FILLERS) + "// the end, no newline"
        assert load_config(text, registry=registry) == data, text
        path.write_text(text, encoding="utf-8")
        assert load_config(path, registry=registry) == data, text
        assert jstyleson.loads(text + "\n") == data, text


# -- every problem at once -----------------------------------------------------------------------


def test_config_error_lists_every_problem_with_its_json_path(registry: Registry) -> None:
    data = {
        "accuracy_aware_training": {"mode": EARLY_EXIT, "params": {"patience_epochs": 2, "validate_every_n_epochs": 0}},
        "compression": [
            {"algorithm": "toy_pruning", "params": {"target": "high", "stepz": 2}, "paramz": {}},
            {"algorithm": "toy_quant"},
            {"algorithm": "toy_pruning"},
        ],
        "input_info": {"sample_size": [0, 3]},
        "target_device": "TPU",
    }
    with pytest.raises(ConfigError) as info:
        load_config(data, registry=registry)

    paths = [p.path for p in info.value.problems]
    assert paths == sorted(paths), "problems come sorted by path"
    assert len(paths) == len(set(paths))
    assert set(paths) == {
        "$.accuracy_aware_training.params",  # no degradation key
        "$.accuracy_aware_training.params.patience_epochs",  # adaptive-only in early_exit
        "$.accuracy_aware_training.params.validate_every_n_epochs",  # below its minimum
        "$.compression[0].params.target",  # wrong type
        "$.compression[0].params.stepz",  # unknown key
        "$.compression[0].paramz",  # unknown key beside a nested problem: both reported
        "$.compression[2].algorithm",  # configured twice
        "$.input_info.sample_size[0]",
        "$.target_device",
    }
    text = str(info.value)
    assert text.startswith(f"invalid aac config ({len(paths)} problem(s)):")
    assert all(f"  {p}" in text for p in info.value.problems)


# -- shapes and typed views ----------------------------------------------------------------------


def test_compression_may_be_one_object_or_a_list(registry: Registry) -> None:
    single = load_config({"compression": {"algorithm": "toy_pruning"}}, registry=registry)
    listed = load_config({"compression": [{"algorithm": "toy_pruning"}, {"algorithm": "toy_quant"}]}, registry=registry)

    assert [(s.name, s.path) for s in single.compression_sections()] == [("toy_pruning", "$.compression")]
    assert [(s.name, s.path) for s in listed.compression_sections()] == [
        ("toy_pruning", "$.compression[0]"),
        ("toy_quant", "$.compression[1]"),
    ]


def test_root_is_open_for_training_keys(registry: Registry) -> None:
    training = {"model": "mobilenetv2", "batch_size": 256, "optimizer": {"type": "Adam", "base_lr": 0.001}, "epochs": 3}
    config = load_config({**training, "compression": {"algorithm": "toy_quant"}}, registry=registry)
    assert {k: config[k] for k in training} == training


def test_no_compression_section_is_valid(registry: Registry) -> None:
    config = load_config({"batch_size": 1}, registry=registry)
    assert config.compression_sections() == []
    assert config.accuracy_aware_training is None


def test_sections_merge_global_scopes(registry: Registry) -> None:
    config = load_config(
        {
            "ignored_scopes": ["stem", "head"],
            "target_scopes": "body",
            "compression": [
                {"algorithm": "toy_quant", "ignored_scopes": ["head", "block1"], "target_scopes": ["block2"]},
                {"algorithm": "toy_pruning"},
            ],
        },
        registry=registry,
    )
    quant, pruning = config.compression_sections()

    assert quant.ignored_scopes == ("stem", "head", "block1")  # union, in order, without repeats
    assert quant.target_scopes == ("block2",)  # own list wins
    assert pruning.ignored_scopes == ("stem", "head")
    assert pruning.target_scopes == ("body",)
    assert config["ignored_scopes"] == ["stem", "head"], "the global list is not mutated (NNCF did)"


@pytest.mark.parametrize(
    ("input_info", "shapes"),
    [({"sample_size": [1, 3, 8, 8]}, [[1, 3, 8, 8]]), ([{"sample_size": [1, 4]}, {"sample_size": [2, 5]}], [[1, 4], [2, 5]])],
    ids=["one", "several"],
)
def test_input_shapes(registry: Registry, input_info: Any, shapes: list[list[int]]) -> None:
    assert load_config({"input_info": input_info}, registry=registry).input_shapes == shapes


# -- accuracy_aware_training -----------------------------------------------------------------------


def test_accuracy_aware_defaults_are_the_nncf_documentation_defaults() -> None:
    """Seed 001: minimal step 0.025, initial step 0.1, reduction 0.5, validate every epoch, 1e4 epochs."""
    params = AccuracyAwareParams()
    assert (params.minimal_compression_rate_step, params.initial_compression_rate_step, params.compression_rate_step_reduction_factor) == (
        0.025,
        0.1,
        0.5,
    )
    assert (params.validate_every_n_epochs, params.maximal_total_epochs) == (1, 10000)
    assert params.metric_mode == "max"


def test_accuracy_aware_section_fills_in_defaults(registry: Registry) -> None:
    config = load_config(
        {"accuracy_aware_training": adaptive_section(patience_epochs=7), "compression": {"algorithm": "toy_pruning"}}, registry=registry
    )
    params = config.accuracy_aware_training

    assert params == AccuracyAwareParams(mode=ADAPTIVE, maximal_relative_accuracy_degradation=1.0, patience_epochs=7)


def test_integer_params_written_as_floats_become_ints(registry: Registry) -> None:
    """Seed 001 writes the epoch cap as ``1e4``; it is an integer count and must behave as one."""
    config = load_config(
        json.dumps({"accuracy_aware_training": {"mode": EARLY_EXIT, "params": degradation_params(maximal_total_epochs=1e4)}}),
        registry=registry,
    )
    epochs = config.accuracy_aware_training.maximal_total_epochs  # type: ignore[union-attr]
    assert epochs == 10000 and isinstance(epochs, int)


@pytest.mark.parametrize(
    ("params", "uncompressed", "tolerable", "metric", "budget"),
    [
        ({"maximal_relative_accuracy_degradation": 1.0}, 80.0, 79.2, 79.5, 0.3),
        ({"maximal_absolute_accuracy_degradation": 0.5}, 80.0, 79.5, 79.0, -0.5),
        ({"maximal_relative_accuracy_degradation": 10.0, "metric_mode": "min"}, 2.0, 2.2, 2.1, 0.1),
        ({"maximal_absolute_accuracy_degradation": 0.3, "metric_mode": "min"}, 2.0, 2.3, 2.5, -0.2),
    ],
    ids=["relative", "absolute", "relative-min", "absolute-min"],
)
def test_budget_and_minimal_tolerable_metric(
    params: dict[str, Any], uncompressed: float, tolerable: float, metric: float, budget: float
) -> None:
    """For ``metric_mode: min`` (a loss), the tolerable value lies *above* the uncompressed one."""
    aa = AccuracyAwareParams(**params)
    assert aa.minimal_tolerable_metric(uncompressed) == pytest.approx(tolerable)
    assert aa.budget(metric, uncompressed) == pytest.approx(budget)
    assert aa.budget(tolerable, uncompressed) == 0.0, "exactly at the tolerable metric is within budget"
