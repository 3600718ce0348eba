"""The names of Keras layers in scope entries: paths, bare names and model-prefixed paths (core's test_scopes has the rules)."""

from __future__ import annotations

import numpy as np
import pytest

from aac.core import ConfigError, create_compressed_model
from aac.tf.scopes import ScopeIndex, ScopeSelection
from aac.tf.testing import SubclassedModel, functional_model


@pytest.fixture
def index() -> ScopeIndex:
    model = SubclassedModel(name="net")
    model(np.zeros((1, 8), "float32"))
    return ScopeIndex.from_model(model)


def test_paths_bare_names_root_prefix_and_regex(index: ScopeIndex) -> None:
    assert index.match("block/inner") == ["block/inner"]
    assert index.match("inner") == ["block/inner"]  # a unique bare layer name
    assert index.match("net/block/inner") == ["block/inner"]  # as Keras variable paths spell it
    assert index.match("/block/inner/") == ["block/inner"]
    assert index.match("{re}^block/") == ["block/inner", "block/norm"]
    assert index.match("{re}^inner$") == []  # regexes search paths, not bare names
    assert index.match("nothing") == []


def test_an_entry_selects_everything_inside_it(index: ScopeIndex) -> None:
    selection = index.select(["block"], key="ignored_scopes")
    assert isinstance(selection, ScopeSelection)
    assert "block/inner" in selection and "block" in selection and "fc1" not in selection
    assert "block/inner" in ScopeSelection(frozenset({"block"}))  # built by hand, as preparation does


def test_unmatched_entries_name_the_closest_layers(index: ScopeIndex) -> None:
    with pytest.raises(ConfigError) as info:
        index.select(["blok/iner"], key="target_scopes", where=lambda e: "$.compression[0]")
    assert "$.compression[0].target_scopes: 'blok/iner' matches no layer" in str(info.value) and "'block/inner'" in str(info.value)


def test_algorithms_resolve_their_scopes(registry) -> None:
    config = {"compression": {"algorithm": "tf_toy_pruning", "ignored_scopes": ["fc2"]}}
    controller, _ = create_compressed_model(functional_model(), config, registry=registry)
    assert set(controller.masks) == {"fc1"}  # fc2 ignored; logits leaves the model
    assert controller.is_selected("fc1") and not controller.is_selected("fc2")
    with pytest.raises(ConfigError, match=r"\$\.compression\.ignored_scopes: 'fc3' matches no layer.*'fc1'"):
        create_compressed_model(
            functional_model(), {"compression": {"algorithm": "tf_toy_pruning", "ignored_scopes": ["fc3"]}}, registry=registry
        )
