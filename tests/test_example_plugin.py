"""The example plugin, installed for real with pip, is found through its entry point and works.

The package is installed into a throwaway virtual environment in a temporary folder, never into the
environment running the tests. That environment reaches the running one's packages (aac-core, pytest,
hatchling) through a ``.pth`` file. ``--system-site-packages`` would not work for this: it exposes the
*base* interpreter's packages, and aac-core is usually installed in a virtual environment (the repo's
``.venv``, a nox session) that is not the base interpreter.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sysconfig
import textwrap
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "aac-plugin-example"
#: plugin and distribution as ``aac plugins`` must show them
ENTRY_POINT, DISTRIBUTION, VERSION = "plugin_example", "aac-plugin-example", "0.1.0"


@dataclass(frozen=True)
class Environment:
    python: Path
    site_packages: Path
    source: Path

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run the environment's Python with autoload on, as a user's shell would."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AAC_") and k != "PYTHONPATH"}
        return subprocess.run([str(self.python), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120, check=False)


def _install_command(python: Path, source: Path) -> list[str]:
    """pip without build isolation when hatchling is at hand (offline, seconds); else uv or plain pip."""
    have = {name: importlib.util.find_spec(name) is not None for name in ("pip", "hatchling")}
    quiet = ["--no-deps", "--disable-pip-version-check", "-q"]
    if have["pip"] and have["hatchling"]:
        return [str(python), "-m", "pip", "install", *quiet, "--no-build-isolation", "--no-index", str(source)]
    uv = shutil.which("uv")
    if uv:  # nox sessions made by uv have no pip; uv builds in isolation from its cache or PyPI
        return [uv, "pip", "install", "--quiet", "--no-deps", "--python", str(python), str(source)]
    if have["pip"]:
        return [str(python), "-m", "pip", "install", *quiet, str(source)]
    pytest.skip("neither pip nor uv is available to install the example plugin")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    root = tmp_path_factory.mktemp("example-plugin")
    source = shutil.copytree(EXAMPLE, root / "source", ignore=shutil.ignore_patterns("__pycache__", "build", "dist", "*.egg-info"))
    venv.create(root / "venv", with_pip=False, symlinks=os.name != "nt")
    python = root / "venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site_packages = Path(
        subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True).strip()
    )
    parent = dict.fromkeys(sysconfig.get_path(kind) for kind in ("purelib", "platlib"))  # this interpreter's packages
    (site_packages / "_aac_test_parent.pth").write_text("".join(f"import site; site.addsitedir({p!r})\n" for p in parent))

    result = subprocess.run(_install_command(python, source), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"installing the example failed:\n{result.stdout}\n{result.stderr}"
    yield Environment(python, site_packages, source)
    shutil.rmtree(root, ignore_errors=True)


def test_pip_installed_the_distribution(installed: Environment) -> None:
    (dist_info,) = installed.site_packages.glob("aac_plugin_example-*.dist-info")
    entry_points = (dist_info / "entry_points.txt").read_text()
    assert f"[aac]\n{ENTRY_POINT} = aac_plugin_example.plugin" in entry_points


def test_aac_plugins_lists_it(installed: Environment) -> None:
    result = installed.run("-m", "aac.core.cli", "plugins")
    lines = result.stdout.splitlines()

    plugin_row = next(line for line in lines if line.startswith(f"  {ENTRY_POINT} "))
    assert plugin_row.split()[1:4] == [DISTRIBUTION, VERSION, "aac_plugin_example.plugin"]
    assert plugin_row.endswith("[ok]")
    algorithm_row = next(line for line in lines if line.startswith("  weight_clipping "))
    assert algorithm_row.split()[1:4] == ["adaptive-level", "frameworks:", "torch"]
    assert algorithm_row.endswith(f"({DISTRIBUTION})")


def test_a_config_naming_it_compresses_a_model(installed: Environment, tmp_path: Path) -> None:
    config = tmp_path / "clip.json"
    config.write_text(
        textwrap.dedent("""\
        {
            "input_info": {"sample_size": [1, 1, 8, 8]},
            "ignored_scopes": ["fc"],  // a global scope, merged into the algorithm's
            "compression": {"algorithm": "weight_clipping", "params": {"clipping_rate": 0.5}},
        }
    """)
    )
    script = textwrap.dedent(f"""
        import json
        import aac_plugin_example
        from aac.core import create_compressed_model, load_config
        from aac.torch.testing.digits import DigitsCNN

        user_model = DigitsCNN()
        controller, model = create_compressed_model(user_model, load_config({str(config)!r}))
        print(json.dumps({{"controller": type(controller).__module__ + "." + type(controller).__name__,
                          "same_module": model is user_model,
                          "layers": sorted(controller.layers),
                          "statistics": controller.statistics()["weight_clipping"].scalars,
                          "module": aac_plugin_example.__file__}}))
    """)
    result = installed.run("-c", script)
    assert result.returncode == 0, result.stderr

    report = json.loads(result.stdout)
    assert report["controller"] == "aac_plugin_example.clipping.WeightClipping"
    assert report["same_module"], "the torch backend hands the user's own module back"
    assert report["layers"] == ["conv1", "conv2"]
    assert report["statistics"] == {"compression_rate": 0.5, "clipped_weights": 36.0 + 576.0, "clipped_layers": 2.0}
    assert Path(report["module"]).is_relative_to(installed.site_packages), "the installed copy ran, not the repo's source"


def test_aac_validate_uses_its_schema(installed: Environment, tmp_path: Path) -> None:
    config = tmp_path / "typo.json"
    config.write_text('{"compression": {"algorithm": "weight_clipping", "params": {"cliping_rate": 0.5}}}')
    result = installed.run("-m", "aac.core.cli", "validate", str(config))
    assert result.returncode == 1
    assert result.stdout.startswith(
        f"{config}: $.compression.params.cliping_rate: unknown key 'cliping_rate' (did you mean 'clipping_rate'?)"
    )


def test_the_readme_example_prints_what_it_says(installed: Environment) -> None:
    readme = (EXAMPLE / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S)
    assert code is not None
    expected = [line.split("# ", 1)[1] for line in code.group(1).splitlines() if line.startswith("print(")]
    result = installed.run("-c", code.group(1))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected


def test_its_own_tests_pass_against_the_installed_copy(installed: Environment) -> None:
    result = installed.run("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=installed.source)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b10 passed\b", result.stdout), result.stdout


def test_the_example_is_a_separate_distribution() -> None:
    """Third-party style: its own top-level module, never a piece of the ``aac`` namespace."""
    assert not (EXAMPLE / "src" / "aac").exists()
    pyproject = (EXAMPLE / "pyproject.toml").read_text()
    assert f'name = "{DISTRIBUTION}"' in pyproject
    assert f'{ENTRY_POINT} = "aac_plugin_example.plugin"' in pyproject
    assert 'build-backend = "hatchling.build"' in pyproject


def test_the_guide_shows_the_example_files_as_they_are() -> None:
    """docs/plugins.md walks through the example file by file; following it must give this working plugin."""
    guide = (EXAMPLE.parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")
    link_then_block = r"^\[`examples/aac-plugin-example/([^`]+)`\]\([^)]*\)[^\n]*\n(?:[^\n]*\n)*?\n```\w+\n(.*?)^```"
    shown = dict(re.findall(link_then_block, guide, re.M | re.S))
    assert set(shown) == {
        "pyproject.toml",
        "src/aac_plugin_example/plugin.py",
        "src/aac_plugin_example/clipping.py",
        "src/aac_plugin_example/weight_clipping.schema.json",
    }
    for path, text in shown.items():
        assert text == (EXAMPLE / path).read_text(encoding="utf-8"), f"docs/plugins.md shows an outdated {path}"
