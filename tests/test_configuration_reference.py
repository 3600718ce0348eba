"""docs/configuration-reference.md is what docs/generate_reference.py writes from the installed schemas,
and the defaults it publishes for the loops are the ones the loops use."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from aac.core.config import AccuracyAwareParams
from aac.core.config.schema import ACCURACY_AWARE_SCHEMA, core_schema

ROOT = Path(__file__).parents[1]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_reference", ROOT / "docs" / "generate_reference.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()


def test_configuration_reference_is_fresh() -> None:
    page = GENERATOR.REFERENCE
    stale = f"docs/configuration-reference.md is out of date — regenerate with: {GENERATOR.COMMAND}"
    assert page.exists(), f"docs/configuration-reference.md is missing — regenerate with: {GENERATOR.COMMAND}"
    assert page.read_text(encoding="utf-8") == GENERATOR.build_reference().text, stale


def test_every_key_has_a_description() -> None:
    """The page prints what the schemas say; a key they leave undescribed would be an empty cell."""
    assert GENERATOR.build_reference().undescribed() == []


def test_loop_defaults_in_the_schema_are_the_loops_defaults() -> None:
    """The reference publishes the schema's ``default``s; AccuracyAwareParams is what the loops really use."""
    schema = core_schema(ACCURACY_AWARE_SCHEMA)["properties"]["params"]["properties"]
    published = {key: prop["default"] for key, prop in schema.items() if "default" in prop}
    used = {field.name: field.default for field in dataclasses.fields(AccuracyAwareParams) if field.default is not None}
    del used["mode"]  # required in the config: its dataclass default is never used
    assert published == used
