"""Scope entries against a backend's layer paths: lookups, regexes, nesting, and errors for entries matching nothing."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from aac.core.config import AlgorithmSection
from aac.core.errors import ConfigError
from aac.core.scopes import ScopeIndex, ScopeSelection, SectionScopes, listed_in

PATHS = ["", "stem", "stem.conv", "blocks", "blocks.1", "blocks.1.conv", "blocks.1.norm", "blocks.10", "blocks.10.conv", "head"]


@pytest.fixture
def index() -> ScopeIndex:
    """A torch-like index: ``""`` is the model, every path has a second spelling, ``"classifier"`` is an alias."""
    spellings = {path: "/".join(["Net", *(part.upper() for part in path.split(".") if part)]) for path in PATHS}
    return ScopeIndex(PATHS, separator=".", spellings=spellings, aliases={"classifier": "head"}, noun="module")


def test_paths_spellings_and_aliases_name_one_layer(index: ScopeIndex) -> None:
    assert index.match("blocks.1.conv") == ["blocks.1.conv"]
    assert index.match("Net/BLOCKS/1/CONV") == ["blocks.1.conv"]
    assert index.match("classifier") == ["head"]
    assert index.match("Net") == [""]  # the model itself
    assert index.match("blocks.2") == []


def test_regex_searches_paths_and_spellings_but_not_aliases(index: ScopeIndex) -> None:
    assert index.match("{re}\\.conv$") == ["stem.conv", "blocks.1.conv", "blocks.10.conv"]
    assert index.match("{re}^Net/BLOCKS/1/") == ["blocks.1.conv", "blocks.1.norm"]
    assert index.match("{re}^classifier$") == []
    assert index.match("{re}^$") == [""]  # only the one path that is empty, not every path without a spelling


def test_an_entry_selects_everything_inside_it(index: ScopeIndex) -> None:
    selection = index.select(["blocks.1"], key="ignored_scopes")
    assert selection.roots == {"blocks.1"} and selection.separator == "."
    assert "blocks.1" in selection and "blocks.1.conv" in selection
    assert "blocks.10.conv" not in selection and "blocks" not in selection and 1 not in selection
    assert "anything.at.all" in index.select(["Net"], key="ignored_scopes")  # the model itself holds every module
    assert not index.select([], key="target_scopes")


def test_a_selection_splits_paths_at_its_separator() -> None:
    keras_like = ScopeSelection(frozenset({"block"}), "/")
    assert "block/inner/dense" in keras_like and "block.inner" not in keras_like


def test_unmatched_entries_are_config_errors_with_close_names(index: ScopeIndex) -> None:
    with pytest.raises(ConfigError) as info:
        index.select(["blocks.1.cnv", "blocks.1", "{re}blocks[("], key="ignored_scopes", where=lambda entry: "$.compression")
    first, second = info.value.problems
    assert first.path == second.path == "$.compression.ignored_scopes"
    assert first.message.startswith("'blocks.1.cnv' matches no module of the model; closest module names: 'blocks.1.conv'")
    assert second.message.startswith("'{re}blocks[(' is not a valid regular expression")


def test_without_close_names_the_error_shows_what_names_look_like(index: ScopeIndex) -> None:
    with pytest.raises(ConfigError, match=r"module names look like 'stem', 'stem.conv', 'blocks', 'Net/HEAD'"):
        index.select(["zzzzzzzzzzzz"], key="target_scopes")
    with pytest.raises(ConfigError, match=r"matches no layer of the model \(the model has no layers\)"):
        ScopeIndex([], separator="/").select(["dense"], key="target_scopes")


class SuffixTolerant(ScopeIndex):
    """A backend that also accepts an entry with a ``:0`` suffix, as some variable names carry."""

    def variants(self, entry: str) -> Iterable[str]:
        return (entry, entry.removesuffix(":0"))


def test_backends_add_variants_of_an_entry() -> None:
    index = SuffixTolerant(["dense", "head/dense"], separator="/", aliases={"top": "head"})
    assert index.match("head/dense:0") == ["head/dense"]
    assert index.match("top:0") == ["head"]
    assert index.match("{re}:0$") == []  # regexes are not rewritten


def test_listed_in_names_the_list_an_entry_came_from() -> None:
    own_string = AlgorithmSection("a", "$.compression[0]", {"algorithm": "a", "ignored_scopes": "head"})
    own_list = AlgorithmSection("b", "$.compression[1]", {"algorithm": "b", "ignored_scopes": ["blocks", "head"]})
    where = listed_in([own_string, own_list], "ignored_scopes")
    assert [where(entry) for entry in ("stem", "head", "blocks")] == ["$", "$.compression[0]", "$.compression[1]"]
    assert listed_in([own_list], "ignored_scopes")("head") == "$.compression[1]"
    assert listed_in([own_list], "target_scopes")("head") == "$"  # a global entry


def test_section_scopes_select_what_an_algorithm_may_compress(index: ScopeIndex) -> None:
    section = AlgorithmSection(
        "toy",
        "$.compression",
        {"algorithm": "toy", "validate_scopes": False},
        ignored_scopes=("{re}norm$", "missing.layer"),
        target_scopes=("blocks",),
    )
    scopes = SectionScopes.resolve(index, section)  # the unmatched entry only warns: validate_scopes is false
    assert [p for p in index.paths if scopes.selects(p)] == ["blocks", "blocks.1", "blocks.1.conv", "blocks.10", "blocks.10.conv"]
    with pytest.raises(ConfigError, match="missing.layer"):
        SectionScopes.resolve(index, AlgorithmSection("toy", "$.compression", {"algorithm": "toy"}, ignored_scopes=("missing.layer",)))


def test_operations_are_selected_on_their_own() -> None:
    from aac.core.graph import Metatype, Node

    index = ScopeIndex(["", "block", "block.conv"], separator=".", operations={"Net/add_0": "add", "Net/Block/add_0": "add_1"})
    selection = index.select(["Net/add_0", "{re}Block/add"], key="ignored_scopes")
    assert selection.roots == frozenset() and selection.operations == {"add", "add_1"} and selection
    assert "block" not in selection  # an operation does not select the module it runs in
    assert selection.holds(Node("add", Metatype.ELEMENTWISE, scope="block"))
    assert not selection.holds(Node("conv", Metatype.CONV, layer="block.conv", scope="block"))
    assert index.select(["block"], key="ignored_scopes").holds(Node("relu", Metatype.ACTIVATION, scope="block.conv"))
    with pytest.raises(ConfigError, match="closest layer or operation names: 'Net/add_0'"):
        index.select(["Net/add_9"], key="ignored_scopes")


class Deferring(ScopeIndex):
    """A backend that cannot judge ``op:`` entries yet."""

    def defers(self, entry: str) -> bool:
        return entry.startswith("op:")


def test_deferred_entries_are_neither_selected_nor_reported() -> None:
    assert not Deferring(["dense"], separator="/").select(["op:add"], key="ignored_scopes")
