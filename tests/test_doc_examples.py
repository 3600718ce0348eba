"""Every Python block in README.md and docs/*.md runs, exactly as printed (datasette-style).

A reader pastes these blocks; a block that no longer runs is a broken promise, so each one is a test.
Blocks run in a fresh temporary working directory that holds a link to the repository's
``examples/`` (README's block reads the demo's config from there, as it would from the clone's
root); each block is its own module, registered in ``sys.modules`` while it runs, because plugin
examples register themselves by module name. Text that is not runnable Python uses another fence
(``bash``, ``jsonc``, ``text``, ``diff``).
"""

from __future__ import annotations

import re
import sys
import textwrap
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^ *```python\n(.*?)^ *```", re.M | re.S)


def blocks() -> list[tuple[str, int, str]]:
    """``(page, index, code)`` of every python block; blocks inside list items are dedented."""
    return [
        (page.relative_to(ROOT).as_posix(), index, textwrap.dedent(code))
        for page in PAGES
        for index, code in enumerate(BLOCK.findall(page.read_text(encoding="utf-8")))
    ]


def test_readme_links_every_docs_page_and_every_link_resolves() -> None:
    """A page the README does not link is a page a newcomer never finds; a dead link is worse."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = {target.split("#")[0] for target in re.findall(r"\]\(([^)\s]+)\)", readme) if "://" not in target}
    assert {t for t in targets if not (ROOT / t).exists()} == set()
    pages = {page.relative_to(ROOT).as_posix() for page in (ROOT / "docs").glob("*.md")}
    assert pages - targets == set()


def test_the_pages_have_python_blocks() -> None:
    pages = {page for page, _, _ in blocks()}
    assert {"README.md", "docs/plugins.md"} <= pages


@pytest.mark.parametrize(("page", "index", "code"), blocks(), ids=[f"{page}:{index}" for page, index, _ in blocks()])
def test_python_block_runs(page: str, index: int, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    name = "aac_docs_" + re.sub(r"\W", "_", page) + f"_{index}"
    module = types.ModuleType(name)
    module.__file__ = str(ROOT / page)
    sys.modules[name] = module
    try:
        exec(compile(code, f"{page}:python block {index}", "exec"), module.__dict__)
    finally:
        del sys.modules[name]
