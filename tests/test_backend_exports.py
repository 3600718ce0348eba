"""Algorithm packages use only what the backends export: every ``aac.torch``/``aac.tf`` name they import is in ``__all__``.

The backends' ``__all__`` is the API algorithm packages build on (their READMEs document it); a name an
algorithm imports from a backend module but that is not exported is a dependency on an internal, which
a refactoring of the backend would break without notice. The sources are read, not imported, so every
file is checked whichever framework is installed; the backends are imported for their ``__all__``.

Modules under ``aac.<backend>.testing`` are exempt: they are the backends' test-support API (reference
models), kept out of the runtime namespace on purpose, and checked only for existing, public names.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALGORITHM_SOURCES = [ROOT / "packages" / f"aac-{name}" / "src" for name in ("pruning", "sparsity", "quant", "distill")]
BACKENDS = ("aac.torch", "aac.tf")


def _backend(module: str) -> str | None:
    """``aac.torch`` for ``aac.torch.transforms`` (and ``aac.torch`` itself); None for any other module."""
    return next((b for b in BACKENDS if module == b or module.startswith(b + ".")), None)


def backend_imports() -> Iterator[tuple[str, str, str]]:
    """``(where, module, name)`` for every name an algorithm package imports from a backend, ``where`` being ``file:line``.

    ``from aac.torch.x import y`` gives ``y``; ``import aac.torch.x`` and ``aac.torch.x.y`` in the code give
    ``y`` too (an attribute read on the imported module), so a dotted access cannot bypass the check.
    """
    for source in ALGORITHM_SOURCES:
        for path in sorted(source.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            where = str(path.relative_to(ROOT))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and _backend(node.module):
                    for alias in node.names:
                        yield f"{where}:{node.lineno}", node.module, alias.name
                elif isinstance(node, ast.Attribute):
                    dotted = _dotted(node.value)
                    if dotted and _backend(dotted) and f"{dotted}.{node.attr}" not in _SUBMODULES:
                        yield f"{where}:{node.lineno}", dotted, node.attr


def _dotted(node: ast.expr) -> str | None:
    """``"aac.torch.transforms"`` for the expression ``aac.torch.transforms``; None for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


#: module paths seen as attributes (``aac.torch.transforms`` inside ``aac.torch.transforms.Mask``) are not names
_SUBMODULES = {f"{b}.{p.stem}" for b in BACKENDS for p in (ROOT / "packages" / f"aac-{b[4:]}" / "src" / "aac" / b[4:]).glob("*")}


def _exports(backend: str) -> set[str]:
    return set(importlib.import_module(backend).__all__)


def test_the_scan_finds_the_imports_it_checks() -> None:
    """Guards the scan itself: the algorithm packages do import from both backends."""
    found = {_backend(module) for _, module, _ in backend_imports()}
    assert found == set(BACKENDS)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_name_an_algorithm_imports_is_exported(backend: str) -> None:
    exported = _exports(backend)
    missing = [
        f"{where}: {module}.{name}"
        for where, module, name in backend_imports()
        if _backend(module) == backend and not module.startswith(f"{backend}.testing") and name not in exported
    ]
    assert not missing, f"not in {backend}.__all__ (export them, lazily like the rest):\n" + "\n".join(missing)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_export_resolves_to_the_object_its_module_defines(backend: str) -> None:
    """``from aac.tf import X`` and ``from aac.tf.<module> import X`` must give the same object, or the export is a copy."""
    package = importlib.import_module(backend)
    uses = {(module, name) for _, module, name in backend_imports() if module != backend and _backend(module) == backend}
    for module, name in sorted(uses):
        if module.startswith(f"{backend}.testing"):
            continue
        assert getattr(package, name) is getattr(importlib.import_module(module), name), f"{backend}.{name} != {module}.{name}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_test_support_imports_name_public_objects(backend: str) -> None:
    for where, module, name in backend_imports():
        if module.startswith(f"{backend}.testing"):
            assert not name.startswith("_") and hasattr(importlib.import_module(module), name), f"{where}: {module}.{name}"
