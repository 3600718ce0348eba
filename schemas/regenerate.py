"""Regenerate the published schemas in this folder from the installed packages.

Each package owns its schema files (``src/aac/<package>/schemas/*.schema.json``); this folder holds
copies of them plus ``aac-config.schema.json``, the config schema composed from every plugin, for
editors and for users who validate configs without installing aac. ``tests/test_schemas.py`` fails
when a copy is stale; ``nox -s schemas`` (or ``python schemas/regenerate.py``) refreshes them.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path

from aac.core.config.schema import compose_schema
from aac.core.plugins import default_registry

HERE = Path(__file__).parent
COMPOSED = "aac-config.schema.json"


def _dump(schema: object) -> str:
    return json.dumps(schema, indent=2) + "\n"


def expected_files() -> dict[str, str]:
    """File name -> content, for core's schemas, every installed algorithm's and the composed one."""
    files = {
        entry.name: _dump(json.loads(entry.read_text(encoding="utf-8")))
        for entry in resources.files("aac.core.schemas").iterdir()
        if entry.name.endswith(".schema.json")
    }
    registry = default_registry()
    for spec in registry.algorithms.values():
        files[f"{spec.name}.schema.json"] = _dump(spec.schema)
    files[COMPOSED] = _dump(compose_schema(registry.algorithms.values()))
    return files


def main() -> int:
    for name, text in expected_files().items():
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote schemas/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
