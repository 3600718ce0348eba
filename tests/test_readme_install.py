"""README's install lines, run as printed into a fresh environment, give a working install: the "Using it"
block then runs there and writes an ONNX file that onnxruntime reproduces.

The lines run with ``uv pip`` (the quickstart installs uv) and the project's ``constraints.txt``, so
that torch is the CPU build this repository pins rather than whatever is newest on the index.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README.md has no section '{heading}'"
    return match.group(1)


def install_commands() -> list[list[str]]:
    """The ``pip install`` lines of the install section's shell block, comments dropped."""
    block = re.search(r"```bash\n(.*?)```", section("Install into your own environment"), re.S)
    assert block, "the install section has no bash block"
    lines = [shlex.split(line, comments=True) for line in block.group(1).splitlines()]
    return [line[2:] for line in lines if line[:2] == ["pip", "install"]]


def test_the_install_lines_name_the_local_packages() -> None:
    commands = install_commands()
    assert commands and commands[0][:3] == ["./packages/aac-core", "./packages/aac-torch", "./packages/aac-pruning"]


def test_a_fresh_environment_from_the_readme_runs_the_using_it_block(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv, "uv is not on PATH; the README's quickstart installs it (pip install uv)"
    env = {**os.environ, "UV_CONSTRAINT": str(ROOT / "constraints.txt"), "VIRTUAL_ENV": "", "PYTHONPATH": ""}
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(tmp_path / "venv")], check=True, env=env)
    python = tmp_path / "venv" / "bin" / "python"
    for arguments in install_commands():
        subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), *arguments], check=True, cwd=ROOT, env=env)

    code = re.search(r"```python\n(.*?)```", section("Using it"), re.S)
    assert code, "the 'Using it' section has no python block"
    (tmp_path / "snippet.py").write_text(code.group(1), encoding="utf-8")
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)  # as from the clone's root
    result = subprocess.run([str(python), "snippet.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pruned.onnx matches the stripped model" in result.stdout
    assert (tmp_path / "pruned.onnx").stat().st_size > 0 and (tmp_path / "runs" / "my-search" / "state.json").exists()
    assert "Warning" not in result.stderr, result.stderr[-3000:]
