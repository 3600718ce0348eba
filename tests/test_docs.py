"""docs/plugins.md documents every hook with its exact signature, every record field, and runs.

A hook added to ``aac.core.hookspecs`` (or a parameter added to one) fails these tests until the guide
says how to use it; a changed record fails them until its table is updated; and every Python example in
the guide is executed (by ``tests/test_doc_examples.py``, with every other page's), so the guide cannot drift
from the API it describes.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from aac.core import AlgorithmSpec, Backend, BackendSpec, LoopObserver, RunContext, SearchStrategySpec, hookspecs
from aac.core.plugins import DISABLE_AUTOLOAD_ENV, DISABLED_PLUGINS_ENV

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
TEXT = GUIDE.read_text(encoding="utf-8")


def hooks() -> list[Callable[..., Any]]:
    """Every hookspec in ``aac.core.hookspecs`` (pluggy marks them with ``<project>_spec``)."""
    marker = f"{hookspecs.NAME}_spec"
    return [fn for _, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, marker)]


def section(heading: str) -> str:
    """The text under ``heading`` (a whole heading line), up to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    match = re.search(rf"^{re.escape(heading)}\n(.*?)(?=^#{{1,{len(level)}}} |\Z)", TEXT, re.M | re.S)
    assert match, f"docs/plugins.md has no heading '{heading}'"
    return match.group(1)


def call_form(fn: Callable[..., Any]) -> str:
    return f"{fn.__name__}({', '.join(inspect.signature(fn).parameters)})"


def typed_signature(fn: Callable[..., Any]) -> str:
    """``aac_loop_observers(context: RunContext) -> Iterable[LoopObserver]`` (annotations are strings here)."""
    signature = inspect.signature(fn)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    return f"{fn.__name__}({params}) -> {signature.return_annotation}"


def test_hooks_are_found() -> None:
    assert {fn.__name__ for fn in hooks()} >= {"aac_algorithms", "aac_backends", "aac_search_strategies", "aac_loop_observers"}


@pytest.mark.parametrize("hook", hooks(), ids=lambda fn: fn.__name__)
def test_every_hook_has_a_heading_with_its_exact_signature(hook: Callable[..., Any]) -> None:
    heading = f"## {call_form(hook)}"
    assert TEXT.splitlines().count(heading) == 1, f"docs/plugins.md needs exactly one heading '{heading}'"
    body = section(heading)
    assert f"`{typed_signature(hook)}`" in body, f"the section must show `{typed_signature(hook)}`"
    for name in inspect.signature(hook).parameters:
        assert re.search(rf"^- `{name}` - ", body, re.M), f"parameter '{name}' of {hook.__name__} is not described"
    if not inspect.signature(hook).parameters:
        assert "takes no parameters" in body
    assert "**Returns:**" in body and "```python" in body, f"{hook.__name__} needs its return value and an example"


def test_no_heading_documents_a_hook_that_does_not_exist() -> None:
    documented = set(re.findall(r"^## (aac_\w+)\(", TEXT, re.M))
    assert documented == {fn.__name__ for fn in hooks()}


@pytest.mark.parametrize("record", [AlgorithmSpec, BackendSpec, SearchStrategySpec, RunContext], ids=lambda r: r.__name__)
def test_every_record_field_is_documented(record: type) -> None:
    body = section(f"### {record.__name__}")
    rows = set(re.findall(r"^\| `(\w+)` \|", body, re.M))
    assert rows == {f.name for f in dataclasses.fields(record)}


def test_every_backend_method_is_documented() -> None:
    """A backend author learns from this page what there is to override."""
    body = section("### BackendSpec")
    methods = [name for name, _ in inspect.getmembers(Backend, inspect.isfunction) if not name.startswith("_")]
    assert [name for name in methods if f"`{name}`" not in body] == []


def test_every_observer_method_is_documented() -> None:
    body = section("### LoopObserver")
    methods = {name for name, _ in inspect.getmembers(LoopObserver, inspect.isfunction) if name.startswith("on_")}
    for name in methods:
        params = ", ".join(list(inspect.signature(getattr(LoopObserver, name)).parameters)[1:])
        assert f"`{name}({params})`" in body


def test_entry_point_group_and_environment_variables() -> None:
    assert f"[project.entry-points.{hookspecs.NAME}]" in TEXT
    assert f"`{DISABLE_AUTOLOAD_ENV}=1`" in TEXT and f"`{DISABLED_PLUGINS_ENV}=name1,name2`" in TEXT
    assert "AacPluginWarning" in TEXT and ".failures" in TEXT
