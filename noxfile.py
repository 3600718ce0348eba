# /// script
# dependencies = ["nox>=2025.02.09"]
# ///
"""The test matrix. ``nox`` runs the default sessions (the whole suite); ``nox -s demo`` runs the demo.

Sessions install the local packages (never PyPI copies) into fresh virtual environments; with uv
available that takes seconds. torch is pinned by ``constraints.txt`` to the CPU build.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import nox

nox.needs_version = ">=2025.02.09"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "core_only", "tests", "cross"]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))
#: jstyleson is NNCF's config reader: core's tests check that aac reads every config to the same values
TEST_DEPS = ("pytest>=8", "pytest-timeout", "jstyleson>=0.0.2")
#: in-repo packages in dependency order; a package's tests install it with what it needs
PACKAGES: dict[str, tuple[str, ...]] = {
    "aac-core": ("aac-core[plot,tensorboard]",),
    "aac-torch": ("aac-core", "aac-torch[onnx,tensorboard]"),
    "aac-pruning": ("aac-core", "aac-torch[onnx]", "aac-pruning[torch]"),
    # sparsity's tests include the strip of filter pruning + sparsity and the one-adaptive-algorithm rule
    "aac-sparsity": ("aac-core", "aac-torch[onnx]", "aac-sparsity[torch]", "aac-pruning[torch]"),
    # quantization's tests include the mixes with pruning and sparsity (issue 4) and the seeds' 004 config
    "aac-quant": ("aac-core", "aac-torch[onnx]", "aac-quant[torch]", "aac-sparsity[torch]", "aac-pruning[torch]"),
    # distillation's tests mix it with pruning, sparsity and quantization (its teacher undoes what they attach)
    "aac-distill": ("aac-core", "aac-torch[onnx]", "aac-distill[torch]", "aac-pruning[torch]", "aac-sparsity[torch]", "aac-quant[torch]"),
    # TensorFlow through aac-tf's [cpu] extra, without tensorboard: aac-tf writes event files without it (issue 11)
    "aac-tf": ("aac-core", "aac-tf[cpu]"),
    "aac-pruning-tf": ("aac-core", "aac-tf[cpu]", "aac-pruning[tf]"),
    "aac-sparsity-tf": ("aac-core", "aac-tf[cpu]", "aac-sparsity[tf]"),
    # quantization's TensorFlow tests include the mixes with magnitude sparsity and filter pruning
    "aac-quant-tf": ("aac-core", "aac-tf[cpu]", "aac-quant[tf]", "aac-sparsity[tf]", "aac-pruning[tf]"),
}
#: entries of PACKAGES that test one framework part of a package: name -> (package folder, its test files)
FRAMEWORK_PARTS: dict[str, tuple[str, str]] = {
    "aac-pruning-tf": ("aac-pruning", "test_pruning_tf_*.py"),
    "aac-sparsity-tf": ("aac-sparsity", "test_sparsity_tf_*.py"),
    "aac-quant-tf": ("aac-quant", "test_quant_tf_*.py"),
}
PRESENT = [name for name in PACKAGES if (ROOT / "packages" / FRAMEWORK_PARTS.get(name, (name,))[0] / "pyproject.toml").exists()]


def _uv_environment() -> None:
    """uv ignores pip's config: point it at the local wheel folder pip uses (the CPU torch wheel)."""
    if "UV_FIND_LINKS" not in os.environ:
        try:
            out = subprocess.run(["pip", "config", "get", "global.find-links"], capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            out = ""
        if out:
            os.environ["UV_FIND_LINKS"] = out
    os.environ.setdefault("UV_COMPILE_BYTECODE", "1")


_uv_environment()


def _local(requirement: str) -> str:
    """``aac-torch[onnx]`` -> ``./packages/aac-torch[onnx]`` (a local, non-editable install)."""
    name, _, extras = requirement.partition("[")
    return f"{ROOT / 'packages' / name}" + (f"[{extras}" if extras else "")


def install(session: nox.Session, *requirements: str, extra: tuple[str, ...] = ()) -> None:
    session.install(*CONSTRAINTS, *TEST_DEPS, *(_local(r) for r in requirements), *extra)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format); mypy (strict) over aac.core with its dependencies (and pytest, for its fixtures); the import contracts.

    lint-imports reads the sources of every package (pyproject.toml's ``[tool.importlinter]``); it needs
    them on the path, not installed with their frameworks.
    """
    session.install(
        "ruff>=0.6",
        "mypy>=1.11",
        "types-tqdm",
        "types-tabulate",
        "types-jsonschema",
        "pytest>=8",
        "import-linter>=2.1",
        _local("aac-core[plot,tensorboard]"),
    )
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "-p", "aac.core")
    sources = os.pathsep.join(str(src) for src in sorted((ROOT / "packages").glob("*/src")))
    session.run("lint-imports", env={"PYTHONPATH": sources})


@nox.session
def core_only(session: nox.Session) -> None:
    """aac-core installed alone: no framework importable, and every core test still passes."""
    session.install(*TEST_DEPS, _local("aac-core"))
    session.run(
        "python",
        "-c",
        "import importlib.util as u, sys; bad=[m for m in ('torch','tensorflow') if u.find_spec(m)]; "
        "sys.exit(f'framework importable in core_only: {bad}') if bad else print('no framework installed: ok')",
    )
    session.run(
        "python",
        "-c",
        "import sys, aac.core; bad=[m for m in ('torch','tensorflow') if m in sys.modules]; "
        "sys.exit(f'aac.core imported {bad}') if bad else print('aac.core imports no framework: ok')",
    )
    session.run("pytest", "packages/aac-core/tests", *session.posargs)


@nox.session
@nox.parametrize("package", [nox.param(p, id=p) for p in PRESENT])
def tests(session: nox.Session, package: str) -> None:
    """One package's own tests, with only what that package needs installed.

    ``aac-pruning`` installs torch only and does not collect its TensorFlow modules; ``aac-pruning-tf``
    installs TensorFlow only and runs just those (``FRAMEWORK_PARTS``). No module skips for a missing
    sibling: a test that cannot import what it needs fails, and its session's requirements are wrong.
    """
    install(session, *PACKAGES[package], extra=("scikit-learn",) if package != "aac-core" else ())
    if package in FRAMEWORK_PARTS:
        folder, pattern = FRAMEWORK_PARTS[package]
        targets = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "packages" / folder / "tests").glob(pattern))
    else:
        parts = [pattern for folder, pattern in FRAMEWORK_PARTS.values() if folder == package]
        targets = [f"packages/{package}/tests", *(f"--ignore-glob=*/{pattern}" for pattern in parts)]
    session.run("pytest", *targets, *session.posargs)


@nox.session
def cross(session: nox.Session) -> None:
    """Cross-package tests: every package installed together (the plugin tests install the example plugin themselves)."""
    everything = dict.fromkeys(r for p in PRESENT for r in PACKAGES[p])
    install(session, *everything, extra=("scikit-learn", "matplotlib"))
    session.run("pytest", "tests", *session.posargs)


#: what the demo needs per framework (``nox -s demo -- --framework tf``)
DEMO_REQUIREMENTS = {
    "torch": ("aac-core[plot,tensorboard]", "aac-torch[onnx,tensorboard]", "aac-pruning[torch]", "aac-sparsity[torch]", "aac-quant[torch]"),
    "tf": ("aac-core[plot]", "aac-tf[cpu]", "aac-pruning[tf]"),  # no tensorboard: event files are written without it
}


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """The digits demo: train, search the pruning rate under the budget, export (``-- --out DIR``)."""
    args = list(session.posargs)
    framework = args[args.index("--framework") + 1] if "--framework" in args[:-1] else "torch"
    if framework not in DEMO_REQUIREMENTS:
        session.error(f"the demo supports --framework {' or '.join(DEMO_REQUIREMENTS)}, not {framework!r}")
    install(session, *DEMO_REQUIREMENTS[framework], extra=("scikit-learn",))
    if "--framework" not in args:
        args = ["--framework", framework, *args]
    session.run("python", "examples/digits/run.py", *args)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks: overhead and latency ratios measured side by side, PyTorch and TensorFlow (JSON + table)."""
    install(
        session,
        "aac-core",
        "aac-torch",
        "aac-tf[cpu]",
        "aac-pruning[torch,tf]",
        "aac-sparsity[torch]",
        "aac-quant[torch]",
        extra=("scikit-learn", "matplotlib"),
    )
    session.run("python", "benchmarks/run.py", *session.posargs)
    session.run("python", "benchmarks/search.py")
    session.run("python", "benchmarks/kill_resume.py")


@nox.session(default=False)
def schemas(session: nox.Session) -> None:
    """Regenerate schemas/ (the published, composed schema) and docs/configuration-reference.md from the packages' plugins."""
    everything = dict.fromkeys(r for p in PRESENT for r in PACKAGES[p])
    install(session, *everything)
    session.run("python", "schemas/regenerate.py")
