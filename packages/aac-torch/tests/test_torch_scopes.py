"""The names of torch modules and operations in scope entries: module paths, NNCF scopes and NNCF operation names (core's test_scopes has the rules)."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from aac.core.errors import ConfigError
from aac.torch.scopes import ScopeIndex, ScopeSelection
from aac.torch.testing.models import ResNet
from aac.torch.tracing import trace_model


@pytest.fixture(scope="module")
def index():
    return ScopeIndex.from_module(ResNet())


def test_nncf_scope_names(index):
    assert index.nncf_scope("layers.1.0.conv1") == "ResNet/Sequential[layers]/Sequential[1]/BasicBlock[0]/Conv2d[conv1]"
    assert index.nncf_scope("") == "ResNet"


@pytest.mark.parametrize(
    "entry",
    [
        "layers.1.0.conv1",
        "ResNet/Sequential[layers]/Sequential[1]/BasicBlock[0]/Conv2d[conv1]",
        "ResNet/Sequential[layers]/Sequential[1]/BasicBlock[0]/Conv2d[conv1]/",
        "ResNet/Sequential[layers]/Sequential[1]/BasicBlock[0]/Conv2d[conv1]/conv2d_0",
    ],
)
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


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x)) + x


class Net(nn.Module):
    """Operations at the root and inside a traced block, as NNCF names them."""

    def __init__(self) -> None:
        super().__init__()
        self.block = Block()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = 0.5 + x * 2
        x = self.block(F.relu(x, inplace=True))
        x = torch.cat([x, x[:, :2]], 1)[:, :4]
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@pytest.fixture(scope="module")
def traced():
    return trace_model(Net()).scopes


def test_operations_are_named_as_nncf_names_them(traced):
    assert traced.operations == {
        "Net/__mul___0": "mul",
        "Net/__radd___0": "add",
        "Net/relu__0": "relu",
        "Net/Block[block]/__add___0": "add_1",
        "Net/__getitem___0": "getitem",
        "Net/cat_0": "cat",
        "Net/__getitem___1": "getitem_1",
        "Net/adaptive_avg_pool2d_0": "adaptive_avg_pool2d",
        "Net/flatten_0": "flatten",
    }
    assert traced.spellings["block.conv"] == (
        "Net/Block[block]/Conv2d[conv]",
        "Net/Block[block]/NNCFConv2d[conv]",
        "Net/Block[block]/Conv2d[conv]/conv2d_0",
        "Net/Block[block]/NNCFConv2d[conv]/conv2d_0",
    )
    assert traced.spellings["block.act"][-1] == "Net/Block[block]/ReLU[act]/relu__0"  # in place


def test_an_operation_entry_selects_the_operation_not_its_module(traced):
    selection = traced.select(["Net/Block[block]/__add___0", "Net/cat_0"], key="ignored_scopes")
    assert selection.roots == frozenset() and selection.operations == {"add_1", "cat"}
    assert "block.conv" not in selection and bool(selection)
    graph = {node.name: node for node in trace_model(Net()).graph}
    assert selection.holds(graph["cat"]) and not selection.holds(graph["add"])
    assert traced.select(["Net/Block[block]"], key="ignored_scopes").holds(graph["add_1"])  # inside a selected module


@pytest.mark.parametrize(
    ("entry", "path"),
    [
        ("Net/NNCFLinear[fc]", "fc"),
        ("Net/NNCFLinear[fc]/linear_0", "fc"),
        ("Net/Block[block]/NNCFConv2d[conv]/conv2d_0", "block.conv"),
        ("Net/Block[block]/NNCFConv2d[conv]/conv2d_7", "block.conv"),  # any operation of a module fx keeps whole is that module
    ],
)
def test_nncf_wrapper_names_and_module_operations_name_the_module(traced, entry, path):
    assert traced.match(entry) == [path]


def test_regexes_search_wrapper_names_and_operations(traced):
    assert traced.match("{re}NNCFConv2d\\[conv\\]/.*") == ["block.conv"]
    assert traced.match_operations("{re}^Net/__") == ["mul", "add", "getitem", "getitem_1"]


def test_before_tracing_operation_entries_wait_for_the_graph():
    index = ScopeIndex.from_module(Net())
    assert not index.traced and index.match("Net/NNCFLinear[fc]/linear_0") == ["fc"]
    selection = index.select(["Net/cat_0", "{re}NNCFConv2d\\[nothing\\]", "Net/Block[block]/__add___0"], key="ignored_scopes")
    assert not selection  # judged by the traced index
    with pytest.raises(ConfigError, match="'Net/Blok\\[block\\]/__add___0' matches no module"):
        index.select(["Net/Blok[block]/__add___0"], key="ignored_scopes")  # a module that does not exist is an error at once


def test_a_missing_operation_is_an_error_naming_the_closest_operations(traced):
    with pytest.raises(ConfigError) as info:
        traced.select(["Net/cat_1"], key="ignored_scopes")
    assert "'Net/cat_1' matches no module of the model; closest module or operation names: 'Net/cat_0'" in info.value.problems[0].message
