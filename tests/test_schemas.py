"""The published copies under schemas/ match what the installed packages define."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

SCHEMAS = Path(__file__).parents[1] / "schemas"


def _regenerate_module():
    spec = importlib.util.spec_from_file_location("schemas_regenerate", SCHEMAS / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


EXPECTED = _regenerate_module().expected_files()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_published_schema_is_fresh(name: str) -> None:
    published = SCHEMAS / name
    assert published.exists(), f"schemas/{name} is missing - regenerate with: nox -s schemas"
    assert published.read_text(encoding="utf-8") == EXPECTED[name], f"schemas/{name} is out of date - regenerate with: nox -s schemas"


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.schema.json")), ids=lambda p: p.name)
def test_published_schemas_are_valid_draft_2020_12(path: Path) -> None:
    Draft202012Validator.check_schema(json.loads(path.read_text(encoding="utf-8")))
