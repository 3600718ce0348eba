"""Shared fixtures: registries with core's toy algorithms registered through real pluggy plugins, and
installed-looking distributions for testing entry-point discovery."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aac.core import AlgorithmSpec, Registry, get_plugin_manager, hookimpl
from aac.core.plugins import DISABLE_AUTOLOAD_ENV, DISABLED_PLUGINS_ENV
from aac.core.testing import ToyPlugin, build_toy, build_toy_quant


class NncfNamesPlugin:
    """NNCF's algorithm names with permissive schemas and some of the legacy spellings their plugins declare.

    Core's alias mechanism and its one-adaptive-algorithm rule are tested on these names; registering
    stand-ins lets core test them without aac-pruning, aac-sparsity or aac-quant installed (those
    packages test their own tables). ``magnitude_sparsity`` is left out on purpose: it stays a *known but
    missing* algorithm.
    """

    @hookimpl
    def aac_algorithms(self) -> Iterable[AlgorithmSpec]:
        sparsity = {
            "params.sparsity_steps": "params.sparsity_target_epoch",
            "params.sparsity_training_steps": "params.sparsity_freeze_epoch",
        }
        quantization = {"initializer.type": "initializer.range.type", "initializer.num_init_steps": "initializer.range.num_init_steps"}
        return [
            AlgorithmSpec(
                name="filter_pruning",
                adaptive=True,
                frameworks={"python": build_toy},
                package="aac-core-tests",
                aliases={"params.weight_importance": "params.filter_importance"},
            ),
            AlgorithmSpec(name="rb_sparsity", adaptive=True, frameworks={"python": build_toy}, package="aac-core-tests", aliases=sparsity),
            AlgorithmSpec(
                name="quantization", adaptive=False, frameworks={"python": build_toy_quant}, package="aac-core-tests", aliases=quantization
            ),
        ]


@pytest.fixture
def registry() -> Registry:
    return Registry(get_plugin_manager(autoload=False, plugins=[ToyPlugin()]))


@pytest.fixture
def nncf_registry() -> Registry:
    """The toy algorithms plus stand-ins for ``filter_pruning``, ``rb_sparsity`` and ``quantization``."""
    return Registry(get_plugin_manager(autoload=False, plugins=[ToyPlugin(), NncfNamesPlugin()]))


WORKING_PLUGIN = """
from aac.core import AlgorithmSpec, hookimpl

@hookimpl
def aac_algorithms():
    return [AlgorithmSpec(name="{algorithm}", adaptive=False, frameworks={{"python": "aac.core.testing:build_toy_quant"}},
                          package="{dist}")]
"""


@dataclass
class FakeDistributions:
    """Writes installed-looking distributions into a folder on ``sys.path``."""

    root: Path
    modules: list[str] = field(default_factory=list)

    def add(self, dist: str, entry_points: Mapping[str, str], modules: Mapping[str, str]) -> None:
        info = self.root / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text("[aac]\n" + "".join(f"{n} = {v}\n" for n, v in entry_points.items()))
        for module, source in modules.items():
            (self.root / f"{module}.py").write_text(textwrap.dedent(source))
            self.modules.append(module)
        importlib.invalidate_caches()  # the import system and importlib.metadata cache folder listings

    def add_working(self, dist: str, entry_point: str, algorithm: str) -> None:
        module = f"aac_test_{entry_point}"
        self.add(dist, {entry_point: module}, {module: WORKING_PLUGIN.format(algorithm=algorithm, dist=dist)})


@pytest.fixture
def dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDistributions]:
    """A folder on ``sys.path`` for fake distributions; autoload is on whatever the caller's environment says."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    monkeypatch.delenv(DISABLED_PLUGINS_ENV, raising=False)
    fake = FakeDistributions(tmp_path)
    yield fake
    for module in fake.modules:
        sys.modules.pop(module, None)
