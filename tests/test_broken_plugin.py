"""A broken plugin installed for real next to a good one: aac carries on without its broken parts.

``tests/plugins/aac-broken-plugin`` fails in each way the registry isolates (a hook that raises, a
backend whose ``claims`` raises, names that others registered first). It is installed with
``examples/aac-plugin-example`` into a throwaway virtual environment, the way
``test_example_plugin.py`` installs the example alone (see there why a ``.pth`` file links the running
environment), and never into the environment running the tests: there it would warn in every test.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sysconfig
import textwrap
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SOURCES = {"example": HERE.parent / "examples" / "aac-plugin-example", "broken": HERE / "plugins" / "aac-broken-plugin"}
HOOK_FAILURE = "aac_algorithms() raised RuntimeError: licence server unreachable"
WARNINGS = [
    f"aac: warning: aac plugin 'broken_hook' (from aac-broken-plugin) is disabled: {HOOK_FAILURE}. "
    "Set AAC_DISABLED_PLUGINS=broken_hook to silence this.",
    "aac: warning: aac plugin 'shadow' (from aac-broken-plugin) registers the algorithm 'weight_clipping', which plugin "
    "'plugin_example' (from aac-plugin-example) registered first; the later record is skipped. "
    "Set AAC_DISABLED_PLUGINS=shadow to silence this.",
    "aac: warning: aac plugin 'shadow' (from aac-broken-plugin) registers the search strategy 'step', which plugin "
    "'core' (from aac-core) registered first; the later record is skipped. Set AAC_DISABLED_PLUGINS=shadow to silence this.",
]


@dataclass(frozen=True)
class Environment:
    python: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the environment's Python with autoload on, as a user's shell would."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AAC_") and k != "PYTHONPATH"}
        return subprocess.run([str(self.python), *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def _install_command(python: Path, sources: list[Path]) -> list[str]:
    """pip without build isolation when hatchling is at hand (offline, seconds); else uv or plain pip."""
    have = {name: importlib.util.find_spec(name) is not None for name in ("pip", "hatchling")}
    quiet = ["--no-deps", "--disable-pip-version-check", "-q"]
    paths = [str(s) for s in sources]
    if have["pip"] and have["hatchling"]:
        return [str(python), "-m", "pip", "install", *quiet, "--no-build-isolation", "--no-index", *paths]
    uv = shutil.which("uv")
    if uv:
        return [uv, "pip", "install", "--quiet", "--no-deps", "--python", str(python), *paths]
    if have["pip"]:
        return [str(python), "-m", "pip", "install", *quiet, *paths]
    pytest.skip("neither pip nor uv is available to install the plugins")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    root = tmp_path_factory.mktemp("broken-plugin")
    sources = [
        shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "build", "dist", "*.egg-info"))
        for name, source in SOURCES.items()
    ]
    venv.create(root / "venv", with_pip=False, symlinks=os.name != "nt")
    python = root / "venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site_packages = Path(
        subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True).strip()
    )
    parent = dict.fromkeys(sysconfig.get_path(kind) for kind in ("purelib", "platlib"))
    (site_packages / "_aac_test_parent.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in parent))

    result = subprocess.run(_install_command(python, sources), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"installing the plugins failed:\n{result.stdout}\n{result.stderr}"
    yield Environment(python)
    shutil.rmtree(root, ignore_errors=True)


def test_aac_plugins_shows_what_is_disabled_and_why(installed: Environment) -> None:
    result = installed.run("-m", "aac.core.cli", "plugins")

    assert result.returncode == 1, "an installation with broken plugins is not healthy"
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.splitlines() == WARNINGS
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("  ")}
    assert rows["broken_hook"].endswith(f"[FAILED: {HOOK_FAILURE}]")
    assert rows["broken_claims"].endswith("[ok]") and rows["plugin_example"].endswith("[ok]")
    assert rows["shadow"].endswith(
        "[partly disabled: algorithm 'weight_clipping' (plugin 'plugin_example' registered it first); "
        "search strategy 'step' (plugin 'core' registered it first)]"
    )
    assert rows["weight_clipping"].endswith("(aac-plugin-example)"), "the first plugin keeps the name"
    assert rows["step"].startswith("  step       NNCF's search"), "core keeps its names"
    assert rows["fragile"].split()[1:3] == ["priority", "100"]
    assert "never_offered" not in rows, "nothing of a disabled plugin is offered"


def test_aac_validate_works_beside_them(installed: Environment, tmp_path: Path) -> None:
    config = tmp_path / "clip.json"
    config.write_text('{"compression": {"algorithm": "weight_clipping", "params": {"clipping_rate": 0.5}}}')

    result = installed.run("-m", "aac.core.cli", "validate", str(config))

    assert (result.returncode, result.stdout, result.stderr.splitlines()) == (0, f"{config}: ok\n", WARNINGS)


def test_a_model_is_compressed_beside_them(installed: Environment) -> None:
    script = textwrap.dedent("""
        import json, warnings
        from aac.core import create_compressed_model, load_config
        from aac.torch.testing.digits import DigitsCNN

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            config = load_config({"compression": {"algorithm": "weight_clipping", "params": {"clipping_rate": 0.5}}})
            controller, model = create_compressed_model(DigitsCNN(), config)
        print(json.dumps({"controller": type(controller).__module__ + "." + type(controller).__name__,
                          "rate": controller.compression_rate, "warnings": [str(w.message) for w in caught]}))
    """)
    result = installed.run("-c", script)
    assert result.returncode == 0, result.stderr

    report = json.loads(result.stdout)
    assert report["controller"] == "aac_plugin_example.clipping.WeightClipping"
    assert report["rate"] == 0.5
    assert [f"aac: warning: {w}" for w in report["warnings"][:3]] == WARNINGS
    assert report["warnings"][3:] == [
        "aac backend 'fragile' of plugin 'broken_claims' (from aac-broken-plugin) is skipped for a model of type "
        "aac.torch.testing.digits.DigitsCNN: claims() raised AttributeError: 'NoneType' object has no attribute 'nn'"
    ]
