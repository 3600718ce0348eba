"""Scope entries: module paths, NNCF scopes, regular expressions, and errors for entries matching nothing."""

import pytest

from aac.core.errors import ConfigError
from aac.torch.scopes import ScopeIndex
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
    "ResNet/Sequential[layers]/Sequential[1]/BasicBlock[0]/Conv2d[conv1]/conv2d_0",
])
def test_one_module_in_any_spelling(index, entry):
    assert index.match(entry) == ["layers.1.0.conv1"]


def test_an_entry_selects_everything_inside_it(index):
    selection = index.select(["layers.1"], key="ignored_scopes")
    assert "layers.1.0.conv1" in selection and "layers.1.0.downsample.0" in selection
    assert "layers.2.0.conv1" not in selection and "layers.10" not in selection


def test_regex_searches_both_spellings(index):
    assert set(index.match("{re}layers\\.[12]\\.0\\.conv2$")) == {"layers.1.0.conv2", "layers.2.0.conv2"}
    assert set(index.match("{re}BatchNorm2d\\[bn1\\]")) == {"bn1", "layers.0.0.bn1", "layers.1.0.bn1", "layers.2.0.bn1"}


def test_unmatched_entries_are_config_errors_with_close_names(index):
    with pytest.raises(ConfigError) as info:
        index.select(["layers.1.0.conv9", "layers.0"], key="ignored_scopes", where=lambda entry: "$.compression")
    problems = info.value.problems
    assert len(problems) == 1
    assert problems[0].path == "$.compression.ignored_scopes"
    assert "'layers.1.0.conv9' matches no module" in problems[0].message
    assert "'layers.1.0.conv1'" in problems[0].message


def test_bad_regex_is_reported(index):
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        index.select(["{re}layers[("], key="target_scopes")
