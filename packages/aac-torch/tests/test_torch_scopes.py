"""The names of torch modules in scope entries: module paths and NNCF scopes (core's test_scopes has the rules)."""

import pytest

from aac.core.errors import ConfigError
from aac.torch.scopes import ScopeIndex, ScopeSelection
from aac.torch.testing.models import ResNet


@pytest.fixture(scope="module")
def index():
    return ScopeIndex.from_module(ResNet())


def test_nncf_scope_names(index):
    assert index.nncf_scope("layers.1.0.conv1") == "ResNet/Sequential[layers]/Sequential[1]/BasicBlock[0]/Conv2d[conv1]"
    assert index.nncf_scope("") == "ResNet"


@pytest.mark.parametrize("entry", [
    "layers.1.0.conv1",
    "ResNet/Sequential[layers]/Sequential[1]/BasicBlock[0]/Conv2d[conv1]",
    "ResNet/Sequential[layers]/Sequential[1]/BasicBlock[0]/Conv2d[conv1]/",
    "ResNet/Sequential[layers]/Sequential[1]/BasicBlock[0]/Conv2d[conv1]/conv2d_0",
])
def test_one_module_in_any_spelling(index, entry):
    assert index.match(entry) == ["layers.1.0.conv1"]


def test_regex_searches_both_spellings(index):
    assert set(index.match("{re}layers\\.[12]\\.0\\.conv2$")) == {"layers.1.0.conv2", "layers.2.0.conv2"}
    assert set(index.match("{re}BatchNorm2d\\[bn1\\]")) == {"bn1", "layers.0.0.bn1", "layers.1.0.bn1", "layers.2.0.bn1"}


def test_selections_are_of_module_paths(index):
    selection = index.select(["ResNet/Sequential[layers]/Sequential[1]"], key="ignored_scopes")
    assert isinstance(selection, ScopeSelection)
    assert "layers.1.0.downsample.0" in selection and "layers.10" not in selection
    assert "gate.fc" in ScopeSelection(frozenset({"gate"}))  # built by hand, as tracing does


def test_a_misspelled_nncf_scope_gets_the_nncf_spelling_suggested(index):
    with pytest.raises(ConfigError) as info:
        index.select(["ResNet/Sequential[layers]/Sequential[1]/BasicBlock[0]/Conv2d[conv9]"], key="ignored_scopes")
    message = info.value.problems[0].message
    assert "matches no module of the model" in message
    assert "'ResNet/Sequential[layers]/Sequential[1]/BasicBlock[0]/Conv2d[conv1]'" in message
