"""Write ``docs/configuration-reference.md``: every config key, read from the JSON Schemas aac publishes.

Each row's type, default, allowed values and description come from a schema: the config schema composed
from core and this repository's algorithm packages - the input ``schemas/regenerate.py`` publishes, so a
plugin that merely happens to be installed does not change the page. The legacy-spelling table comes
from the alias tables ``load_config`` applies. The generator writes no prose about any key: a key whose
schema has no description gets an empty cell (``tests/test_configuration_reference.py`` refuses that) and
one without a default a ``—``; running this script lists both kinds, so that they are fixed in the schema,
where ``aac validate``, editors and this page all read them.

``tests/test_configuration_reference.py`` fails when the page is stale; ``python docs/generate_reference.py``
(or ``nox -s schemas``, which also refreshes ``schemas/``) rewrites it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from aac.core.config.aliases import ACCURACY_AWARE_ALIASES, ROOT_ALIASES
from aac.core.config.schema import compose_schema
from aac.core.specs import AlgorithmSpec

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "configuration-reference.md"
COMMAND = "python docs/generate_reference.py"

Schema = Mapping[str, Any]


def _regenerate_module() -> ModuleType:
    """``schemas/regenerate.py``, which decides what is published (a script, not an importable module)."""
    spec = importlib.util.spec_from_file_location("schemas_regenerate", ROOT / "schemas" / "regenerate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- reading schemas ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Row:
    """One key of an object, as the schema describes it."""

    key: str
    type: str
    default: str
    allowed: str
    description: str
    #: the anchor of the table of the object this key holds, if it holds one
    link: str = ""


@dataclasses.dataclass(frozen=True)
class Table:
    """One object of the config: where it sits, what it says about itself, and its keys."""

    anchor: str
    #: the algorithm whose section holds the object, or "" for objects outside ``compression``
    scope: str
    #: the keys leading to the object from the top level or from the algorithm's section ("" for those themselves)
    path: str
    description: str
    rows: tuple[Row, ...]
    closed: bool
    #: the key may also hold a list of such objects
    also_list: bool = False

    @property
    def title(self) -> str:
        if not self.path:
            return f"`{self.scope}`" if self.scope else "Top level"
        return f"`{self.scope}`: `{self.path}`" if self.scope else f"`{self.path}`"

    def where(self, key: str) -> str:
        """How a key of this object is named in messages: ``params.pruning_target`` (of filter_pruning)."""
        path = f"{self.path}.{key}" if self.path else key
        return f"{self.scope}: {path}" if self.scope else path


def _code(value: Any) -> str:
    return f"`{json.dumps(value)}`"


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return "null"


def _range(schema: Schema) -> str:
    """``[0, 1)``, ``> 0`` or ``≤ 100`` from the numeric bounds, or nothing."""
    low = ("[", schema["minimum"]) if "minimum" in schema else ("(", schema["exclusiveMinimum"]) if "exclusiveMinimum" in schema else None
    high = (schema["maximum"], "]") if "maximum" in schema else (schema["exclusiveMaximum"], ")") if "exclusiveMaximum" in schema else None
    if low and high:
        return f"`{low[0]}{json.dumps(low[1])}, {json.dumps(high[0])}{high[1]}`"
    if low:
        return f"`{'≥' if low[0] == '[' else '>'} {json.dumps(low[1])}`"
    if high:
        return f"`{'≤' if high[1] == ']' else '<'} {json.dumps(high[0])}`"
    return ""


def _unique(texts: Sequence[str]) -> list[str]:
    return [text for text in dict.fromkeys(texts) if text]


class SchemaReader:
    """Reads the composed config schema: follows ``$ref`` and describes one key or object at a time."""

    def __init__(self, root: Schema) -> None:
        self.root = root
        self.by_id = {str(d["$id"]): d for d in root["$defs"].values() if "$id" in d}

    def resolve(self, schema: Schema) -> Schema:
        """The schema a ``$ref`` points to (a ``#/...`` pointer or the ``$id`` of an embedded schema)."""
        while "$ref" in schema:
            ref = str(schema["$ref"])
            if ref.startswith("#/"):
                target: Any = self.root
                for part in ref[2:].split("/"):
                    target = target[part]
                schema = target
            else:
                schema = self.by_id[ref]
        return schema

    def variants(self, schema: Schema) -> list[Schema]:
        """The alternatives of a ``oneOf``/``anyOf``, or the schema itself."""
        schema = self.resolve(schema)
        options = schema.get("oneOf") or schema.get("anyOf")
        return [self.resolve(option) for option in options] if options else [schema]

    def type_text(self, schema: Schema) -> str:
        return " or ".join(_unique([self._one_type(variant) for variant in self.variants(schema)]))

    def _one_type(self, schema: Schema) -> str:
        if "const" in schema:
            return _json_type(schema["const"])
        kind = schema.get("type")
        if kind == "array":
            return f"array of {self.type_text(schema['items'])}" if "items" in schema else "array"
        if isinstance(kind, list):
            return " or ".join(kind)
        if kind:
            return str(kind)
        if "properties" in schema:
            return "object"
        if "enum" in schema:
            return " or ".join(_unique([_json_type(value) for value in schema["enum"]]))
        return "any"

    def allowed_text(self, schema: Schema) -> str:
        return "; ".join(_unique([self._one_allowed(variant) for variant in self.variants(schema)]))

    def _one_allowed(self, schema: Schema) -> str:
        if "const" in schema:
            return _code(schema["const"])
        if "enum" in schema:
            return ", ".join(_code(value) for value in schema["enum"])
        if schema.get("type") == "array":
            parts = []
            if "minItems" in schema:
                parts.append(f"at least {schema['minItems']} item{'s' if schema['minItems'] != 1 else ''}")
            if "items" in schema and (items := self.allowed_text(schema["items"])):
                parts.append(f"each {items}")
            return ", ".join(parts)
        return _range(schema)

    def description(self, schema: Schema) -> str:
        """The key's own description, else that of the schema its ``$ref`` names."""
        return str(schema.get("description") or self.resolve(schema).get("description") or "")

    def tables(self, anchor: str, scope: str, path: str, schema: Schema, fallback: Schema | None = None) -> list[Table]:
        """The table of the object ``schema`` at ``path``, followed by the tables of the objects nested in it.

        ``fallback`` is another schema that applies to the same object (core's generic ``algorithm_section``
        beside an algorithm's own schema): a key it requires is required, a key described only there is described.
        """
        obj = self.resolve(schema)
        fallback = fallback or {}
        required = set(obj.get("required", ())) | set(fallback.get("required", ()))
        rows: list[Row] = []
        nested: list[Table] = []
        for key, prop in obj.get("properties", {}).items():
            children = self.nested_tables(f"{anchor}-{key}" if anchor else key, scope, f"{path}.{key}" if path else key, prop)
            other = fallback.get("properties", {}).get(key, {})
            default = "required" if key in required else _code(prop["default"]) if "default" in prop else "—"
            rows.append(
                Row(
                    key,
                    self.type_text(prop),
                    default,
                    self.allowed_text(prop),
                    self.description(prop) or self.description(other),
                    children[0].anchor if children else "",
                )
            )
            nested += children
        own = Table(anchor, scope, path, str(obj.get("description", "")), tuple(rows), obj.get("additionalProperties") is False)
        return [own, *nested]

    def nested_tables(self, anchor: str, scope: str, path: str, schema: Schema) -> list[Table]:
        """Tables for the object(s) a key may hold: an object, a list of objects, or either."""
        objects = [v for v in self.variants(schema) if "properties" in v]
        items = [self.resolve(v["items"]) for v in self.variants(schema) if v.get("type") == "array" and "items" in v]
        listed = [item for item in items if "properties" in item]
        if objects and listed and all(item == objects[0] for item in listed):
            first, *rest = self.tables(anchor, scope, path, objects[0])
            return [dataclasses.replace(first, also_list=True), *rest]
        tables = [table for obj in objects for table in self.tables(anchor, scope, path, obj)]
        return tables + [table for item in listed for table in self.tables(f"{anchor}-list", scope, f"{path}[]", item)]


# -- the page -------------------------------------------------------------------------------


def _text(text: str) -> str:
    """Schema text as Markdown shows it verbatim: ``<timestamp>`` would be taken for an HTML tag."""
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _cell(text: str) -> str:
    """Schema text for a table cell, where a ``|`` would end the cell."""
    return _text(text).replace("|", "\\|")


def _table_markdown(table: Table) -> list[str]:
    lines = ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
    for row in table.rows:
        description = row.description + (f" See [`{row.key}`](#{row.link})." if row.link else "")
        lines.append(f"| `{row.key}` | {_cell(row.type)} | {_cell(row.default)} | {_cell(row.allowed)} | {_cell(description.strip())} |")
    if table.closed:
        lines += ["", "Keys not listed here are rejected."]
    return lines


def _section(level: str, tables: Sequence[Table], intro: Sequence[str] = ()) -> list[str]:
    """A heading with an anchor, the intro, the first table; each further table under a heading one level down."""
    first, *rest = tables
    lines = ["", f'<a id="{first.anchor}"></a>', "", f"{level} {first.title}", ""]
    notes = (
        "A list of such objects is accepted too." if first.also_list else "",
        "The entries of the list form." if first.path.endswith("[]") else "",
    )
    for text in (*intro, _text(first.description), *notes):
        if text:
            lines += [text, ""]
    lines += _table_markdown(first)
    for table in rest:
        lines += _section(level + "#", [table])
    return lines


def _algorithm_summary(specs: Sequence[AlgorithmSpec]) -> list[str]:
    lines = ["", "| algorithm | package | level searched by `adaptive_compression_level` | frameworks |", "|---|---|---|---|"]
    for spec in specs:
        searched = "yes" if spec.adaptive else "no"
        lines.append(f"| [`{spec.name}`](#{spec.name}) | {spec.package} | {searched} | {', '.join(sorted(spec.frameworks))} |")
    return lines


def _legacy_section(specs: Sequence[AlgorithmSpec]) -> list[str]:
    """What ``load_config`` renames before validating: core's tables for the keys it owns, then each plugin's own."""
    rows = [("top level", old, new) for old, new in ROOT_ALIASES.items()]
    rows += [("`accuracy_aware_training.params`", old, new) for old, new in ACCURACY_AWARE_ALIASES.items()]
    for spec in specs:
        rows += [(f"[`{spec.name}`](#{spec.name}) section", old, new) for old, new in spec.aliases.items()]
    return [
        "",
        '<a id="legacy-spellings"></a>',
        "",
        "## Legacy spellings",
        "",
        "Older NNCF configs use names that were later renamed. `load_config` moves each to its current key before",
        "validation and notes it (`aac validate` prints the notes); giving both spellings is an error.",
        "",
        "| where | legacy key | read as |",
        "|---|---|---|",
        *(f"| {where} | `{old}` | `{new}` |" for where, old, new in rows),
    ]


@dataclasses.dataclass(frozen=True)
class Reference:
    """The page, and every table on it (to list the keys a schema leaves undescribed)."""

    text: str
    tables: tuple[Table, ...]

    def undescribed(self) -> list[str]:
        """Every key whose schema has no ``description``."""
        return [table.where(row.key) for table in self.tables for row in table.rows if not row.description]

    def without_default(self) -> list[str]:
        """Every key with neither a ``default`` nor ``required`` (an object needs none: its keys have their own)."""
        return [table.where(row.key) for table in self.tables for row in table.rows if row.default == "—" and not row.link]


HEADER = (
    "# Configuration reference",
    "",
    f"<!-- Generated by docs/generate_reference.py from the JSON Schemas; do not edit. Regenerate with: {COMMAND} -->",
    "",
    "Every key aac reads from a config, with its type, default, allowed values and description, taken from the",
    "JSON Schemas the packages install (`aac schema` prints them composed; `schemas/` holds copies). How the keys",
    "work together is explained in [configuration](configuration.md) and [the training loops](accuracy-aware-training.md).",
    "A `—` default means the key has no fixed default (its description says what its absence means);",
    "`required` keys must be given.",
    "",
)


def _contents(groups: Mapping[str, Sequence[Table]], algorithms: Mapping[str, Sequence[Table]]) -> list[str]:
    """The page's table of contents: the top level, each top-level object (compression with its algorithms), the aliases."""
    lines = ["- [Top level](#top-level)"]
    for path, tables in groups.items():
        lines.append(f"- [`{path}`](#{tables[0].anchor})")
        if path == "compression":
            lines += [f"  - [`{name}`](#{name})" for name in algorithms]
    return [*lines, "- [Legacy spellings](#legacy-spellings)"]


def _top_level_groups(tables: Sequence[Table]) -> dict[str, list[Table]]:
    """The tables under the top level, grouped by the top-level key that holds them."""
    groups: dict[str, list[Table]] = {}
    for table in tables:
        groups.setdefault(re.split(r"[.\[]", table.path, maxsplit=1)[0], []).append(table)
    return groups


def build_reference(specs: Sequence[AlgorithmSpec] | None = None) -> Reference:
    """The reference for ``specs`` (default: the algorithms ``schemas/regenerate.py`` publishes)."""
    specs = list(specs if specs is not None else _regenerate_module().published_algorithms())
    schema = compose_schema(specs)
    reader = SchemaReader(schema)
    root, *under_root = reader.tables("", "", "", schema)
    root = dataclasses.replace(root, anchor="top-level")
    groups = _top_level_groups(under_root)
    generic_section = schema["$defs"]["algorithm_section"]
    per_algorithm = {
        spec.name: reader.tables(spec.name, spec.name, "", schema["$defs"][f"algorithm_{spec.name}"], generic_section) for spec in specs
    }
    lines = [*HEADER, *_contents(groups, per_algorithm), *_section("##", [root])]
    for path, tables in groups.items():
        lines += _section("##", tables)
        if path == "compression":
            lines += _algorithm_summary(specs)
            for name, algorithm_tables in per_algorithm.items():
                lines += _section("###", algorithm_tables, [f'`"algorithm": "{name}"`'])
    lines += _legacy_section(specs)
    every = (root, *under_root, *(table for tables in per_algorithm.values() for table in tables))
    return Reference("\n".join(lines) + "\n", every)


def main() -> int:
    reference = build_reference()
    REFERENCE.write_text(reference.text, encoding="utf-8")
    print(f"wrote {REFERENCE.relative_to(ROOT)}")
    for what, keys in (("description", reference.undescribed()), ("default", reference.without_default())):
        if keys:
            print(f"{len(keys)} key(s) without a {what} in their schema: {', '.join(keys)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
