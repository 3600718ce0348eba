"""The composed JSON Schema: core's schema plus one section schema per installed algorithm.

Each algorithm plugin contributes the schema of its own section; core splices them in as
``if algorithm == X then $ref X`` branches, so a problem inside a section is reported at its exact
JSON path (``$.compression[1].params.pruning_target``) instead of as a failed ``oneOf``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from aac.core.config.catalog import AlgorithmEntry
from aac.core.errors import ConfigProblem, PluginError, did_you_mean

CORE_SCHEMA = "config.schema.json"
ACCURACY_AWARE_SCHEMA = "accuracy_aware_training.schema.json"


@cache
def core_schema(name: str) -> dict[str, Any]:
    """One of core's own schema files (from the installed package)."""
    schema: dict[str, Any] = json.loads(resources.files("aac.core.schemas").joinpath(name).read_text(encoding="utf-8"))
    return schema


def algorithm_schema_id(spec: AlgorithmEntry) -> str:
    return str(spec.schema.get("$id") or f"urn:aac:algorithm:{spec.name}")


def section_schema(spec: AlgorithmEntry) -> dict[str, Any]:
    """The plugin's section schema with its ``$id`` and the ``algorithm`` key it may have left out."""
    schema = copy.deepcopy(dict(spec.schema))
    schema.setdefault("$schema", "https://json-schema.org/draft/2020-12/schema")
    schema["$id"] = algorithm_schema_id(spec)
    properties = schema.setdefault("properties", {})
    properties["algorithm"] = {"const": spec.name}
    if schema.get("additionalProperties") is False:  # a closed schema must still take NNCF's common keys
        for key, value in core_schema(CORE_SCHEMA)["$defs"]["algorithm_common"]["properties"].items():
            properties.setdefault(key, copy.deepcopy(value))
    try:
        Draft202012Validator.check_schema(schema)
    except Exception as exc:
        raise PluginError(f"the config schema of algorithm '{spec.name}' ({spec.package or 'plugin'}) is invalid: {exc}") from exc
    return schema


def compose_schema(algorithms: Iterable[AlgorithmEntry]) -> dict[str, Any]:
    """The full config schema for the given algorithms (what ``aac schema`` prints)."""
    schema = copy.deepcopy(core_schema(CORE_SCHEMA))
    section = schema["$defs"]["algorithm_section"]
    specs = list(algorithms)
    _check_unique_ids(specs)
    if specs:  # JSON Schema forbids an empty enum / allOf
        section["properties"]["algorithm"]["enum"] = [s.name for s in specs]
        section["allOf"] = [
            {"if": {"properties": {"algorithm": {"const": s.name}}, "required": ["algorithm"]}, "then": {"$ref": algorithm_schema_id(s)}}
            for s in specs
        ]
    for spec in specs:  # embedded with their $id, so the printed schema is self-contained
        schema["$defs"][f"algorithm_{spec.name}"] = section_schema(spec)
    schema["$defs"]["accuracy_aware_training"] = core_schema(ACCURACY_AWARE_SCHEMA)
    return schema


def _check_unique_ids(specs: Iterable[AlgorithmEntry]) -> None:
    """Each section schema needs its own ``$id``: with a shared one (a copy-pasted schema) only one of the
    schemas would be applied, and the other algorithm's valid sections would be rejected with its rules."""
    owners = {str(core_schema(name)["$id"]): "aac-core's own schema" for name in (CORE_SCHEMA, ACCURACY_AWARE_SCHEMA)}
    for spec in specs:
        schema_id = algorithm_schema_id(spec)
        if schema_id in owners:
            raise PluginError(
                f"the config schema of algorithm '{spec.name}' ({spec.package or 'plugin'}) has the $id '{schema_id}', "
                f"already used by {owners[schema_id]}; give each schema its own $id"
            )
        owners[schema_id] = f"algorithm '{spec.name}'"


#: validators already composed, keyed by the identity of the algorithm specs (records hold dicts, so they
#: do not hash); the specs are kept with the validator so their ids stay theirs
_VALIDATORS: dict[tuple[int, ...], tuple[tuple[AlgorithmEntry, ...], Draft202012Validator]] = {}
_MAX_VALIDATORS = 8


def _validator(algorithms: tuple[AlgorithmEntry, ...]) -> Draft202012Validator:
    """The validator for these algorithms, composed once: composing and checking the schemas took ~30 ms a call."""
    key = tuple(id(spec) for spec in algorithms)
    if key not in _VALIDATORS:
        schema = compose_schema(algorithms)
        # unknown algorithm names are reported by the rules, with a suggestion, rather than as an enum miss
        schema["$defs"]["algorithm_section"]["properties"]["algorithm"].pop("enum", None)
        if len(_VALIDATORS) >= _MAX_VALIDATORS:
            _VALIDATORS.pop(next(iter(_VALIDATORS)))
        _VALIDATORS[key] = (algorithms, Draft202012Validator(schema))
    return _VALIDATORS[key][1]


def _json_path(error: ValidationError) -> str:
    path = "$"
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _leaf_errors(error: ValidationError) -> list[ValidationError]:
    """Descend into oneOf/anyOf: report *every* problem of the branch the value was meant for.

    A branch whose ``type`` does not fit the value itself (the array branch for an object) is not the
    one the user meant; of the branches left, the one whose errors reach deepest came closest. All of
    that branch's errors are reported - an unknown key next to a bad nested value is two problems.
    """
    if error.validator in ("oneOf", "anyOf") and error.context:
        depth = len(error.absolute_path)
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        fitting = [
            errors for errors in branches.values() if not any(e.validator == "type" and len(e.absolute_path) == depth for e in errors)
        ]
        if fitting:
            closest = max(fitting, key=lambda errors: max(len(e.absolute_path) for e in errors))
            return [leaf for sub in closest for leaf in _leaf_errors(sub)]
    return [error]


def _describe(error: ValidationError) -> list[ConfigProblem]:
    path = _json_path(error)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = list(schema.get("properties", {}))
        unexpected = [k for k in error.instance if k not in allowed]
        return [
            ConfigProblem(f"{path}.{key}", f"unknown key '{key}'{did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}")
            for key in unexpected
        ]
    if error.validator in ("oneOf", "anyOf"):
        return [ConfigProblem(path, f"{json.dumps(error.instance)[:80]} has the wrong shape (expected {_shape(schema)})")]
    return [ConfigProblem(path, error.message)]


def _shape(schema: Mapping[str, Any]) -> str:
    options = schema.get("oneOf") or schema.get("anyOf") or []
    kinds = [o.get("type", "object") if "$ref" not in o else "object" for o in options]
    return " or ".join(f"an {k}" if k[0] in "aeiou" else f"a {k}" for k in kinds)


def validate(data: Any, algorithms: Iterable[AlgorithmEntry]) -> list[ConfigProblem]:
    """Every schema problem of ``data``, sorted by path."""
    problems: list[ConfigProblem] = []
    for error in _validator(tuple(algorithms)).iter_errors(data):
        for leaf in _leaf_errors(error):
            problems.extend(_describe(leaf))
    unique = {(p.path, p.message): p for p in problems}
    return sorted(unique.values(), key=lambda p: p.path)
