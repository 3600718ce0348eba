"""Config fuzzing: hundreds of mutated configs, each refused in one clear line or trained for an epoch (issue #9).

Design
------
* **Bases.** The three NNCF seed configs (``tests/configs``) and the four digits example configs
  (``examples/digits``), read as *text* with their comments. They are made to fit one tiny model,
  :class:`aac.torch.testing.digits.DigitsCNN` (input ``[1, 1, 8, 8]``), by plain text edits listed in
  :data:`FIT_TO_DIGITS_CNN`: the seeds get that input size (000/001 had none, 004 had ImageNet's) and the
  example scopes that name another model's modules are pointed at ``DigitsCNN/Conv2d[conv1]``. Each
  base, so fitted, must load, build and train one epoch (``test_base_config_trains``), so that what a
  mutant triggers is the mutation's doing.
* **Mutants.** :func:`mutants` draws, from one seeded ``random.Random`` per mutant (deterministic),
  :data:`MUTANTS_PER_BASE` mutants of every base, cycling through the kinds in :data:`MUTATIONS`:
  data-level edits of the parsed dict (delete or misspell a key, odd or extreme values, numbers out of
  range, another algorithm or mode, dropped sections, unknown or unicode keys, deep nesting, list <->
  object, sections transplanted from another base, schema edge values that are *valid*) handed over
  as a dict or as ``json.dumps`` text (which writes NaN/Infinity literals), and text-level edits of the
  commented base text (a key written twice, NaN/Infinity/odd number literals, truncation, an
  unterminated ``/*``, a deleted line, junk before the text).
* **Outcomes.** ``load_config`` either raises ``ConfigError`` - counted *rejected*; every problem must be
  one line with a ``$`` JSON path - or returns a config that :func:`train_one_epoch` builds with
  ``create_compressed_model`` and trains for one epoch (``epoch_step``, then per batch ``step``,
  ``cross_entropy + controller.loss()``, backward, SGD), then ``controller.statistics()``: counted
  *built*, or *build-rejected* if an ``AacError`` with a one-line message stops it. A config with an
  ``accuracy_aware_training`` section then also builds its loop (success or a one-line ``AacError``).
  Any other exception, a traceback printed on stdout or stderr (captured per mutant), or a mutant
  running past :data:`MUTANT_SECONDS` (``SIGALRM`` on POSIX; an alarm set before, such as
  pytest-timeout's, is restored) is a failure. The test collects them all and fails listing each with
  its base, mutation, exception type, first line and where it was raised. Warnings are recorded (and
  counted), never turned into errors.
* **Cost.** Three batches of 32 digits, the 8-channel CNN and torch on one thread: about 25 s on an idle
  two-core machine, under 50 s with both cores busy elsewhere; most of it is ``load_config`` itself.
  ``pytest -s`` prints the counts, overall and per kind of mutation.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import random
import re
import signal
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from aac.core import (
    AacError,
    ConfigError,
    create_accuracy_aware_training_loop,
    create_compressed_model,
    default_registry,
    load_config,
)
from aac.core.config.parsing import blank_comments
from aac.core.config.schema import ACCURACY_AWARE_SCHEMA, CORE_SCHEMA, core_schema, section_schema
from aac.torch.testing.digits import DigitsCNN, Trainer, digits

ROOT = Path(__file__).resolve().parents[1]
BASE_FILES = [*sorted((ROOT / "tests" / "configs").glob("*.json")), *sorted((ROOT / "examples" / "digits").glob("*.json"))]
INPUT_INFO = '"input_info": {"sample_size": [1, 1, 8, 8]},'
#: text edits that fit each base to DigitsCNN: (old, new), each applied once and required to match
FIT_TO_DIGITS_CNN: dict[str, list[tuple[str, str]]] = {
    "seed_000_adaptive_pruning.json": [("{", "{" + INPUT_INFO)],
    "seed_001_adaptive_pruning.json": [("{", "{" + INPUT_INFO)],
    "seed_004_rb_sparsity_quantization.json": [
        ("[1, 3, 224, 224]", "[1, 1, 8, 8]"),  # the legacy input_sample_size key stays
        ("MobileNetV2/Sequential[features]/Sequential[0]/Conv2d[0]", "DigitsCNN/Conv2d[conv1]"),
    ],
    "filter_pruning.json": [],
    "filter_pruning_quantization.json": [],
    "magnitude_sparsity.json": [("DigitsNet/Sequential[stem]/Conv2d[0]", "DigitsCNN/Conv2d[conv1]")],
    "rb_sparsity_quantization.json": [("DigitsNet/Sequential[stem]/Conv2d[0]", "DigitsCNN/Conv2d[conv1]")],
}
MUTANTS_PER_BASE = 75  # 7 bases: 525 mutants
MUTANT_SECONDS = 20
BATCHES, BATCH_SIZE = 3, 32


@dataclass(frozen=True)
class Base:
    name: str
    text: str  # the commented text, fitted to DigitsCNN
    data: dict[str, Any]  # the same, parsed


@functools.cache
def bases() -> tuple[Base, ...]:
    found = []
    for path in BASE_FILES:
        text = path.read_text(encoding="utf-8")
        for old, new in FIT_TO_DIGITS_CNN[path.name]:
            assert old in text, f"{path.name} no longer contains {old!r}: update FIT_TO_DIGITS_CNN"
            text = text.replace(old, new, 1)
        found.append(Base(path.name, text, json.loads(blank_comments(text))))
    assert {b.name for b in found} == set(FIT_TO_DIGITS_CNN), "a base config was added or removed: update FIT_TO_DIGITS_CNN"
    return tuple(found)


@functools.cache
def training_data() -> tuple[Any, Any]:
    return digits(train=BATCHES * BATCH_SIZE)


def train_one_epoch(config: Any, seed: int) -> Any:
    """Build the config on a fresh DigitsCNN, train one epoch as NNCF's examples do; return the controller."""
    torch.manual_seed(seed)
    controller, model = create_compressed_model(DigitsCNN(), config)
    trainer = Trainer(model, *training_data(), lr=0.01, batch_size=BATCH_SIZE)
    optimizer, _ = trainer.configure_optimizers()
    controller.scheduler.epoch_step()
    trainer.train_epoch(controller, model, optimizer=optimizer)
    controller.statistics()
    return controller


# ---- mutations ----------------------------------------------------------------------------------------

JsonPath = tuple[str | int, ...]
Source = str | dict[str, Any]
#: a mutation: (rng, base) -> (description, mutated data or text), or None where it does not apply
Mutation = Callable[[random.Random, Base], tuple[str, Source] | None]

LONG = "x" * 100_000
ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    "0.5",
    "",
    [],
    {},
    -1,
    0,
    1,
    0.5,
    2,
    1e308,
    -1e-9,
    10**30,
    -(10**30),
    math.nan,
    math.inf,
    -math.inf,
    LONG,
    "ключ",
    "🙂",
    [None],
    {"": None},
    [[[[]]]],
    "\n",
    "\x00",
]
ODD_NUMBERS: list[Any] = [
    -1,
    0,
    -0.0,
    1,
    2,
    1.0000001,
    -1e-9,
    1e-300,
    0.999999999,
    100,
    1e308,
    -1e308,
    10**30,
    -(10**30),
    2**63,
    math.nan,
    math.inf,
    -math.inf,
]
ODD_KEYS = ["unknown_key", "paramz", "", " ", "ключ", "🙂", "$ref", "__proto__", "a" * 1000, "\n", "\x00", "algorithm\n", "ALGORITHM"]
ALGORITHMS = sorted(default_registry().algorithms)
ODD_ALGORITHMS: list[Any] = [
    "filter_prunning",
    "Filter_Pruning",
    "",
    "knowledge_distillation",
    "quantization ",
    "rb-sparsity",
    "NNCF",
    LONG,
    None,
    7,
    ["filter_pruning"],
    {"name": "quantization"},
]
MODES: list[Any] = ["early_exit", "adaptive_compression_level", "EARLY_EXIT", "adaptive", "", "early_exit ", None, 1, ["early_exit"]]
SCOPES = [
    "{re}.*",
    "{re}conv",
    "{re}[",
    "DigitsCNN/Conv2d[conv1]",
    "DigitsCNN/Conv2d[conv2]",
    "DigitsCNN/Linear[fc]",
    "DigitsCNN/BatchNorm2d[bn1]",
    "conv2",
    "fc",
    "",
    "DigitsCNN",
    "Conv2d",
]


def short(value: Any) -> str:
    """A value for a one-line description (no 100,000-character strings)."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}...({len(text)} chars)"


def render(path: JsonPath) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p!r}" if not str(p).isidentifier() else f".{p}" for p in path)


def nodes(value: Any, path: JsonPath = ()) -> Iterator[tuple[JsonPath, Any]]:
    """Every (path, value) of the tree, the root included."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from nodes(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from nodes(item, (*path, index))


def pick(rng: random.Random, data: Any, test: Callable[[JsonPath, Any], bool]) -> JsonPath | None:
    found = [path for path, value in nodes(data) if test(path, value)]
    return rng.choice(found) if found else None


def put(data: Any, path: JsonPath, value: Any) -> None:
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value


def get(data: Any, path: JsonPath) -> Any:
    for step in path:
        data = data[step]
    return data


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def typo(rng: random.Random, word: str) -> str:
    if not word:
        return "x"
    i = rng.randrange(len(word))
    kind = rng.choice(["drop", "swap", "double", "upper", "space", "homoglyph"])
    if kind == "drop" and len(word) > 1:
        return word[:i] + word[i + 1 :]
    if kind == "swap" and len(word) > 1:
        i = min(i, len(word) - 2)
        swapped = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        return swapped if swapped != word else word + word[-1]
    if kind == "upper" and word.upper() != word:
        return word.upper()
    if kind == "space":
        return word + " "
    if kind == "homoglyph" and "a" in word:
        return word.replace("a", "\u0430", 1)  # Cyrillic a
    return word[:i] + word[i] + word[i:]


def rename(data: dict[str, Any], path: JsonPath, new: str) -> None:
    """Rename the key at ``path`` keeping its place among its siblings."""
    parent = get(data, path[:-1])
    items = [(new if k == path[-1] else k, v) for k, v in parent.items()]
    parent.clear()
    parent.update(items)


def section_paths(data: dict[str, Any]) -> list[JsonPath]:
    compression = data.get("compression")
    if isinstance(compression, list):
        return [("compression", i) for i, s in enumerate(compression) if isinstance(s, dict)]
    return [("compression",)] if isinstance(compression, dict) else []


def delete_key(rng: random.Random, data: dict[str, Any]) -> str | None:
    path = pick(rng, data, lambda p, _: bool(p) and isinstance(p[-1], str))
    if path is None:
        return None
    del get(data, path[:-1])[path[-1]]
    return f"delete {render(path)}"


def misspell_key(rng: random.Random, data: dict[str, Any]) -> str | None:
    path = pick(rng, data, lambda p, _: bool(p) and isinstance(p[-1], str))
    if path is None:
        return None
    new = typo(rng, str(path[-1]))
    if new in get(data, path[:-1]):
        return None
    rename(data, path, new)
    return f"rename {render(path)} to {new!r}"


def odd_value(rng: random.Random, data: dict[str, Any]) -> str | None:
    path = pick(rng, data, lambda p, _: bool(p))
    if path is None:
        return None
    value = rng.choice(ODD_VALUES)
    put(data, path, copy.deepcopy(value))
    return f"set {render(path)} = {short(value)}"


def number_out_of_range(rng: random.Random, data: dict[str, Any]) -> str | None:
    path = pick(rng, data, lambda p, v: bool(p) and is_number(v))
    if path is None:
        return None
    was, value = get(data, path), rng.choice(ODD_NUMBERS)
    put(data, path, value)
    return f"set {render(path)} = {short(value)} (was {short(was)})"


def change_algorithm(rng: random.Random, data: dict[str, Any]) -> str | None:
    paths = section_paths(data)
    if not paths:
        return None
    path = (*rng.choice(paths), "algorithm")
    name = rng.choice(ALGORITHMS + ODD_ALGORITHMS)
    put(data, path, copy.deepcopy(name))
    return f"set {render(path)} = {short(name)}"


def change_mode(rng: random.Random, data: dict[str, Any]) -> str | None:
    section = data.get("accuracy_aware_training")
    if not isinstance(section, dict):
        return None
    mode = rng.choice(MODES)
    section["mode"] = copy.deepcopy(mode)
    return f"set $.accuracy_aware_training.mode = {short(mode)}"


def drop_section(rng: random.Random, data: dict[str, Any]) -> str | None:
    candidates = [k for k in ("compression", "accuracy_aware_training", "input_info", "input_sample_size") if k in data]
    candidates += [f"params@{i}" for i, _ in enumerate(section_paths(data))]
    if not candidates:
        return None
    key = rng.choice(candidates)
    if key.startswith("params@"):
        path = section_paths(data)[int(key[7:])]
        section = get(data, path)
        if "params" not in section:
            return None
        del section["params"]
        return f"delete {render((*path, 'params'))}"
    del data[key]
    return f"delete ${'.' + key} (whole section)"


def add_unknown_key(rng: random.Random, data: dict[str, Any]) -> str | None:
    path = pick(rng, data, lambda _, v: isinstance(v, dict))
    assert path is not None  # the root
    key = rng.choice(ODD_KEYS)
    value = rng.choice(ODD_VALUES + [1, "value"])
    target = get(data, path)
    if key in target:
        return None
    target[key] = copy.deepcopy(value)
    return f"add {render((*path, key))} = {short(value)}"


def deep_nesting(rng: random.Random, data: dict[str, Any]) -> tuple[str, Source]:
    """A value nested ``depth`` lists deep; as text, written directly (``json.dumps`` would recurse too deep)."""
    path = pick(rng, data, lambda p, _: bool(p)) or ("deep",)
    depth = rng.choice([20, 95, 99, 100, 101, 150, 3000, 100_000])
    description = f"set {render(path)} = a list nested {depth} deep"
    if rng.random() < 0.5:
        put(data, path, "\x01DEEP\x01")
        return description + " (as text)", json.dumps(data, indent=1).replace('"\\u0001DEEP\\u0001"', "[" * depth + "]" * depth)
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    put(data, path, value)
    return description + " (as dict)", data


def swap_list_object(rng: random.Random, data: dict[str, Any]) -> str | tuple[str, Source] | None:
    path = pick(rng, data, lambda p, v: isinstance(v, (list, dict)) and (bool(p) or rng.random() < 0.05))
    if path is None:
        return None
    value = get(data, path)
    new: Any = {str(i): item for i, item in enumerate(value)} if isinstance(value, list) else list(value.values())
    if not path:  # as text: load_config's Python signature takes a mapping, a JSON text may hold anything
        return f"replace the root object by the list of its values ({len(new)} items) (as text)", json.dumps(new)
    put(data, path, new)
    return f"turn {render(path)} from {type(value).__name__} into {type(new).__name__}"


def transplant_section(rng: random.Random, data: dict[str, Any]) -> str | None:
    donor = rng.choice(bases())
    sections = [get(donor.data, p) for p in section_paths(donor.data)]
    section = copy.deepcopy(rng.choice(sections))
    compression = data.get("compression")
    listed = compression if isinstance(compression, list) else [compression] if compression is not None else []
    position = rng.randrange(len(listed) + 1)
    listed.insert(position, section)
    data["compression"] = listed
    return f"insert {donor.name}'s '{section.get('algorithm')}' section as $.compression[{position}]"


def schema_of(data: dict[str, Any], path: JsonPath) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(schema, the document holding it: core's, the loop's or the algorithm's) of the value at ``path``, or None."""
    schema: dict[str, Any] | None = core_schema(CORE_SCHEMA)
    document = core_schema(CORE_SCHEMA)
    node: Any = data
    for depth, step in enumerate(path):
        node = node[step]
        assert schema is not None
        if path[: depth + 1] in section_paths(data):
            spec = default_registry().algorithms.get(node.get("algorithm"))
            if spec is None:
                return None
            schema = document = section_schema(spec)
            continue
        if isinstance(step, int):
            schema = next((c["items"] for c in alternatives(schema, document) if "items" in c), None)
        else:
            schema = next((c["properties"][step] for c in alternatives(schema, document) if step in c.get("properties", {})), None)
        if schema is None:
            return None
        if schema.get("$ref", "").endswith(ACCURACY_AWARE_SCHEMA):
            schema = document = core_schema(ACCURACY_AWARE_SCHEMA)
    return None if schema is None else (schema, document)


def alternatives(schema: dict[str, Any], document: dict[str, Any]) -> list[dict[str, Any]]:
    """``schema`` with local ``$ref`` resolved and ``oneOf``/``anyOf`` spread out."""
    ref = schema.get("$ref", "")
    if ref.startswith("#/$defs/"):
        schema = document["$defs"][ref[len("#/$defs/") :]]
    found = [schema]
    for key in ("oneOf", "anyOf"):
        for option in schema.get(key, []):
            found += alternatives(option, document)
    return found


def edge_values(schema: dict[str, Any], document: dict[str, Any], path: JsonPath) -> list[Any]:
    """Values the schema allows, at its bounds and enums (the builders' corner cases)."""
    values: list[Any] = []
    big = 64 if "sample_size" in path else 10**9
    for option in alternatives(schema, document):
        values += option.get("enum", [])
        if "const" in option:
            values.append(option["const"])
        kind = option.get("type")
        if kind == "boolean":
            values += [True, False]
        elif kind in ("integer", "number"):
            eps = 1 if kind == "integer" else 1e-9
            bounds = [option.get("minimum"), option.get("maximum")]
            if "exclusiveMinimum" in option:
                bounds.append(option["exclusiveMinimum"] + eps)
            if "exclusiveMaximum" in option:
                bounds.append(option["exclusiveMaximum"] - eps)
            values += [b for b in bounds if b is not None]
            if option.get("maximum") is None and option.get("exclusiveMaximum") is None:
                values.append(big)
        elif kind == "string" and "enum" not in option:
            values += SCOPES
        elif kind == "array":
            items = edge_values(option.get("items", {}), document, path) or [None]
            values += [[], [items[0]], items[:4]]
        elif kind == "object":
            values.append({})
    return values


def schema_edge(rng: random.Random, data: dict[str, Any]) -> str | None:
    """Set a key the schema knows (present or not) to one of its edge values: a config that should load."""
    objects = [p for p, v in nodes(data) if isinstance(v, dict)]
    rng.shuffle(objects)
    for path in objects:
        found = schema_of(data, path)
        if found is None:
            continue
        schema, document = found
        properties = {k: v for c in alternatives(schema, document) for k, v in c.get("properties", {}).items() if k != "algorithm"}
        if not properties:
            continue
        key = rng.choice(sorted(properties))
        values = edge_values(properties[key], document, (*path, key))
        if not values:
            continue
        value = copy.deepcopy(rng.choice(values))
        get(data, path)[key] = value
        return f"set {render((*path, key))} = {short(value)} (a schema edge value)"
    return None


DATA_MUTATIONS: dict[str, Callable[[random.Random, dict[str, Any]], str | tuple[str, Source] | None]] = {
    "delete key": delete_key,
    "misspell key": misspell_key,
    "odd value": odd_value,
    "number out of range": number_out_of_range,
    "change algorithm": change_algorithm,
    "change mode": change_mode,
    "drop section": drop_section,
    "unknown key": add_unknown_key,
    "deep nesting": deep_nesting,
    "list <-> object": swap_list_object,
    "transplant section": transplant_section,
    "schema edge": schema_edge,
}


def as_data_mutation(mutate: Callable[[random.Random, dict[str, Any]], str | tuple[str, Source] | None]) -> Mutation:
    """Apply ``mutate`` to a copy of the base's data; hand the result over as a dict or as JSON text."""

    def mutation(rng: random.Random, base: Base) -> tuple[str, Source] | None:
        data = copy.deepcopy(base.data)
        result = mutate(rng, data)
        if result is None or isinstance(result, tuple):
            return result
        if rng.random() < 0.5:
            return f"{result} (as dict)", data
        return f"{result} (as text)", json.dumps(data, indent=1, ensure_ascii=rng.random() < 0.5)

    return mutation


SCALAR_PAIR = re.compile(r'"([^"\\\n]+)"\s*:\s*(-?\d[\d.eE+-]*|"[^"\\\n]*"|true|false|null|\[[^][{}\n]*\])')
NUMBER = re.compile(r"(?<=[:\[,\s])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def line_of(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"line {line} column {offset - text.rfind(chr(10), 0, offset)}"


def duplicate_key_text(rng: random.Random, base: Base) -> tuple[str, Source] | None:
    match = rng.choice(list(SCALAR_PAIR.finditer(base.text)))
    key, value = match.groups()
    other = rng.choice([value, "0.5", "null", '"x"', "-1"])
    if rng.random() < 0.5:
        text = base.text[: match.start()] + f'"{key}": {other}, ' + base.text[match.start() :]
        where = "before"
    else:
        text = base.text[: match.end()] + f', "{key}": {other}' + base.text[match.end() :]
        where = "after"
    return f'write "{key}": {other} again {where} its {line_of(base.text, match.start())} (as text)', text


def number_literal_text(rng: random.Random, base: Base) -> tuple[str, Source] | None:
    match = rng.choice(list(NUMBER.finditer(base.text)))
    literal = rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "0x10", "1_000", ".5", "+1", "01", "1e", "--1", "nan"])
    text = base.text[: match.start()] + literal + base.text[match.end() :]
    return f"replace the number {match.group()} at {line_of(base.text, match.start())} by {literal} (as text)", text


def truncate_text(rng: random.Random, base: Base) -> tuple[str, Source] | None:
    offset = rng.randrange(1, len(base.text))
    return f"truncate the text at {line_of(base.text, offset)} (offset {offset} of {len(base.text)}) (as text)", base.text[:offset]


def unterminated_comment(rng: random.Random, base: Base) -> tuple[str, Source] | None:
    offset = rng.randrange(1, len(base.text))
    token = rng.choice(["/*", "/* note", "*/", "//", "/"])
    return f"insert {token!r} at {line_of(base.text, offset)} (as text)", base.text[:offset] + token + base.text[offset:]


def delete_line(rng: random.Random, base: Base) -> tuple[str, Source] | None:
    lines = base.text.split("\n")
    index = rng.randrange(len(lines))
    return f"delete line {index + 1} ({short(lines[index].strip())}) (as text)", "\n".join(lines[:index] + lines[index + 1 :])


def junk_before_text(rng: random.Random, base: Base) -> tuple[str, Source] | None:
    junk = rng.choice(["\ufeff", "x", "\x00", "1", "]", " \n\t", "\u200b"])
    return f"prefix the text with {junk!r} (as text)", junk + base.text


MUTATIONS: dict[str, Mutation] = {
    **{name: as_data_mutation(mutate) for name, mutate in DATA_MUTATIONS.items()},
    "duplicate key (text)": duplicate_key_text,
    "number literal (text)": number_literal_text,
    "truncate (text)": truncate_text,
    "comment marker (text)": unterminated_comment,
    "delete line (text)": delete_line,
    "junk before (text)": junk_before_text,
}


@dataclass(frozen=True)
class Mutant:
    base: str
    index: int
    kind: str
    description: str
    source: Source = field(repr=False)


def mutants() -> list[Mutant]:
    """:data:`MUTANTS_PER_BASE` mutants of each base, the kinds in turn; the same list on every run."""
    kinds = list(MUTATIONS)
    found = []
    for b, base in enumerate(bases()):
        for i in range(MUTANTS_PER_BASE):
            rng = random.Random(1000 * b + i)
            for attempt in range(len(kinds)):
                kind = kinds[(i + b + attempt) % len(kinds)]
                result = MUTATIONS[kind](rng, base)
                if result is not None:
                    found.append(Mutant(base.name, i, kind, *result))
                    break
    return found


# ---- running a mutant -----------------------------------------------------------------------------------


class MutantTimeout(BaseException):
    """Raised by SIGALRM in a mutant that runs too long (a BaseException: no ``except Exception`` swallows it)."""


def one_line_problems(error: AacError) -> list[str]:
    """What is wrong with the message of an error aac raised on purpose (nothing for a good one)."""
    wrong = []
    if "Traceback" in str(error):
        wrong.append("its message contains a traceback")
    if isinstance(error, ConfigError):
        if not error.problems:
            wrong.append("it lists no problem")
        for problem in error.problems:
            if "\n" in str(problem) or "\r" in str(problem):
                wrong.append(f"problem spans several lines: {str(problem)[:200]!r}")
            if not problem.path.startswith("$"):
                wrong.append(f"problem path does not start with $: {str(problem)[:200]!r}")
    elif "\n" in str(error) or "\r" in str(error) or not str(error).strip():
        wrong.append(f"message is not one line: {str(error)[:200]!r}")
    return wrong


@dataclass
class Outcome:
    stage: str  # rejected | built | build-rejected
    loop: str = ""  # loop built | loop rejected | "" (no accuracy_aware_training)
    failure: str = ""


def where(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    return f" (raised at {Path(frame.filename).name}:{frame.lineno} in {frame.name})"


def describe(error: BaseException) -> str:
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0][:200] if lines else ''}{where(error)}"


def run_mutant(mutant: Mutant) -> Outcome:
    try:
        config = load_config(mutant.source)
    except ConfigError as error:
        wrong = one_line_problems(error)
        return Outcome("rejected", failure="; ".join(f"ConfigError {w}" for w in wrong))
    except Exception as error:
        return Outcome("load", failure=f"load_config raised {describe(error)}")
    try:
        controller = train_one_epoch(config, mutant.index)
    except AacError as error:
        wrong = one_line_problems(error)
        return Outcome("build-rejected", failure="; ".join(f"{type(error).__name__} {w}" for w in wrong))
    except Exception as error:
        return Outcome("build", failure=f"building/training raised {describe(error)}")
    outcome = Outcome("built")
    if config.get("accuracy_aware_training"):
        try:
            create_accuracy_aware_training_loop(config, controller, 90.0, verbose=False)
            outcome.loop = "loop built"
        except AacError as error:
            outcome.loop = "loop rejected"
            outcome.failure = "; ".join(f"loop {type(error).__name__} {w}" for w in one_line_problems(error))
        except Exception as error:
            outcome.failure = f"create_accuracy_aware_training_loop raised {describe(error)}"
    return outcome


class Deadline:
    """SIGALRM after ``seconds`` (POSIX), restoring any alarm that was set before (pytest-timeout's)."""

    def __init__(self) -> None:
        self.usable = hasattr(signal, "SIGALRM") and hasattr(signal, "setitimer")

    def __enter__(self) -> Deadline:
        if self.usable:
            self.started = time.monotonic()
            self.previous_handler = signal.getsignal(signal.SIGALRM)
            self.previous_timer = signal.getitimer(signal.ITIMER_REAL)
            signal.signal(signal.SIGALRM, self._expire)
        return self

    @staticmethod
    def _expire(signum: int, frame: Any) -> None:
        raise MutantTimeout

    def arm(self, seconds: float) -> None:
        if self.usable:
            signal.setitimer(signal.ITIMER_REAL, seconds)

    def disarm(self) -> None:
        if self.usable:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def __exit__(self, *exc: object) -> None:
        if self.usable:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous_handler)
            delay, interval = self.previous_timer
            if delay > 0:
                signal.setitimer(signal.ITIMER_REAL, max(delay - (time.monotonic() - self.started), 0.001), interval)


# ---- tests ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FIT_TO_DIGITS_CNN))
def test_base_config_trains(name: str) -> None:
    """Each base, fitted to DigitsCNN, loads (as text and as dict), builds, trains an epoch and builds its loop."""
    base = next(b for b in bases() if b.name == name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert load_config(base.data) == load_config(base.text)
        config = load_config(base.text)
        controller = train_one_epoch(config, 0)
        if config.get("accuracy_aware_training"):
            create_accuracy_aware_training_loop(config, controller, 90.0, verbose=False)


def test_mutants_are_deterministic_and_spread() -> None:
    first, second = mutants(), mutants()
    assert [(m.base, m.description) for m in first] == [(m.base, m.description) for m in second]
    assert len(first) >= 520
    assert {m.base for m in first} == set(FIT_TO_DIGITS_CNN)
    assert {m.kind for m in first} == set(MUTATIONS), "every kind of mutation occurs"


def test_config_fuzz(capfd: pytest.CaptureFixture[str]) -> None:
    """Every mutant is refused in one clear line or builds and trains; no other exception, no printed traceback, no hang."""
    started = time.monotonic()
    counts: dict[str, int] = {}
    by_kind: dict[str, dict[str, int]] = {}
    failures: list[str] = []
    warned = 0
    all_mutants = mutants()
    capfd.readouterr()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # an 8x8 CNN gains nothing from threads, and they stall on a busy machine
    with Deadline() as deadline:
        for mutant in all_mutants:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                deadline.arm(MUTANT_SECONDS)
                try:
                    outcome = run_mutant(mutant)
                except MutantTimeout:
                    outcome = Outcome("hang", failure=f"ran longer than {MUTANT_SECONDS} s")
                finally:
                    deadline.disarm()
            warned += len(caught)
            printed = capfd.readouterr()
            if "Traceback" in printed.out + printed.err:
                tail = [line for line in (printed.out + printed.err).splitlines() if line.strip()][-1]
                outcome.failure = "; ".join(filter(None, [outcome.failure, f"a traceback was printed, ending {tail[:200]!r}"]))
            for key in (outcome.stage, outcome.loop):
                if key:
                    counts[key] = counts.get(key, 0) + 1
            kind = by_kind.setdefault(mutant.kind, {})
            kind[outcome.stage] = kind.get(outcome.stage, 0) + 1
            if outcome.failure:
                failures.append(f"{mutant.base} #{mutant.index} [{mutant.kind}] {mutant.description}: {outcome.failure}")
    torch.set_num_threads(threads)
    seconds = time.monotonic() - started
    with capfd.disabled():
        report(len(all_mutants), seconds, counts, by_kind, warned, len(failures))
    assert len(all_mutants) >= 500
    assert not failures, f"{len(failures)} of {len(all_mutants)} mutants failed:\n" + "\n".join(failures)


def report(total: int, seconds: float, counts: dict[str, int], by_kind: dict[str, dict[str, int]], warned: int, failed: int) -> None:
    """The counts, for ``pytest -s``."""
    print(
        f"\nconfig fuzz: {total} mutants of {len(bases())} bases in {seconds:.1f} s: "
        f"{counts.get('rejected', 0)} rejected by load_config, {counts.get('built', 0)} built and trained one epoch, "
        f"{counts.get('build-rejected', 0)} rejected at build (AacError); accuracy-aware loops: "
        f"{counts.get('loop built', 0)} built, {counts.get('loop rejected', 0)} rejected; "
        f"{sum(v for k, v in counts.items() if k in ('load', 'build', 'hang'))} other exceptions or hangs; "
        f"{warned} warnings; {failed} failures"
    )
    for kind, stages in by_kind.items():
        print(f"  {kind:24} " + ", ".join(f"{stage} {n}" for stage, n in sorted(stages.items())))
