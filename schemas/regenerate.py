"""Regenerate the published schemas in this folder from the installed packages.

Each package owns its schema files (``src/aac/<package>/schemas/*.schema.json``); this folder holds
copies of them plus ``aac-config.schema.json``, the config schema composed from every plugin, for
editors and for users who validate configs without installing aac. ``tests/test_schemas.py`` fails
when a copy is stale; ``nox -s schemas`` (or ``python schemas/regenerate.py``) refreshes them, and
``docs/configuration-reference.md``, which ``docs/generate_reference.py`` writes from the same schemas.

Only the algorithms of this repository's packages (``packages/*``) are published: a plugin that
happens to be installed beside them (the example plugin in a development environment) must not
change what is committed here, nor make the freshness test fail.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from importlib import resources
from pathlib import Path

from aac.core.config.schema import compose_schema
from aac.core.plugins import Registry, default_registry
from aac.core.specs import AlgorithmSpec

HERE = Path(__file__).parent
PACKAGES = HERE.parent / "packages"
COMPOSED = "aac-config.schema.json"


def _dump(schema: object) -> str:
    return json.dumps(schema, indent=2) + "\n"


def _canonical(distribution: str) -> str:
    """A distribution name as pip compares them (``aac_pruning`` and ``AAC-Pruning`` are ``aac-pruning``)."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def repository_distributions() -> set[str]:
    """The distributions this repository builds: each folder ``packages/<distribution>`` with a pyproject.toml."""
    return {_canonical(path.parent.name) for path in PACKAGES.glob("*/pyproject.toml")}


def published_algorithms(registry: Registry | None = None) -> list[AlgorithmSpec]:
    """The installed algorithms that one of this repository's packages provides, by name."""
    registry = registry or default_registry()
    ours = repository_distributions()
    return [
        spec
        for name, spec in registry.algorithms.items()
        if _canonical(registry.plugin_manager.info(registry.providers["algorithm", name]).distribution) in ours
    ]


def expected_files() -> dict[str, str]:
    """File name -> content, for core's schemas, every published algorithm's and the composed one."""
    files = {
        entry.name: _dump(json.loads(entry.read_text(encoding="utf-8")))
        for entry in resources.files("aac.core.schemas").iterdir()
        if entry.name.endswith(".schema.json")
    }
    algorithms = published_algorithms()
    for spec in algorithms:
        files[f"{spec.name}.schema.json"] = _dump(spec.schema)
    files[COMPOSED] = _dump(compose_schema(algorithms))
    return files


def main() -> int:
    for name, text in expected_files().items():
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote schemas/{name}")
    spec = importlib.util.spec_from_file_location("generate_reference", HERE.parent / "docs" / "generate_reference.py")
    assert spec is not None and spec.loader is not None
    reference = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # its dataclasses look their module up
    spec.loader.exec_module(reference)
    return int(reference.main())


if __name__ == "__main__":
    sys.exit(main())
