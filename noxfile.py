# /// script
# dependencies = ["nox>=2025.02.09"]
# ///
"""The test matrix, derived from the packages. ``nox`` runs the default sessions (the whole suite); ``nox -l`` lists them.

Nothing here names a package or a test file: every folder under ``packages/`` with a ``pyproject.toml`` is a
package, and its ``pyproject.toml`` says which frameworks it supports and on which Pythons it runs.

- A framework is an extra that requires the in-repo package of the same name: ``aac-pruning[torch]`` requires
  ``aac-torch``, so ``torch`` is a framework and ``aac-torch`` its backend. A backend supports its own framework;
  a package with neither (``aac-core``) is framework-neutral.
- ``tests(<package>, <framework>)`` installs that package with that framework's extra and runs its
  ``tests/`` (framework-neutral) and ``tests/<framework>/``; a neutral package's ``tests(<package>)`` runs
  ``tests/`` with no framework importable.
- ``integration(<framework>)`` installs every package of that framework and runs ``tests/integration/<framework>``:
  the tests that combine packages. ``cross`` installs everything and runs the rest of the root ``tests/``
  (docs, plugins, demo, schemas, fuzzing).
- Python versions come from the classifiers. The whole matrix runs on the interpreter that runs nox, which the
  classifiers must list; on every other listed version that is installed, the neutral packages and the torch
  backend run too, and versions that are not installed are skipped (never downloaded).

Sessions install the local packages (never PyPI copies) into fresh virtual environments; with uv
available that takes seconds. torch is pinned by ``constraints.txt`` to the CPU build.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nox
from packaging.requirements import Requirement

nox.needs_version = ">=2025.02.09"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "tests", "integration", "cross"]
# A classifier version that is not installed skips its sessions instead of failing the run, and is never
# downloaded; the interpreter running nox (the whole matrix) is always there (see PYTHON below).
nox.options.error_on_missing_interpreters = False
nox.options.download_python = "never"

ROOT = Path(__file__).parent
#: tests that combine packages, one folder per framework
INTEGRATION = ROOT / "tests" / "integration"
CONSTRAINTS = ("-c", str(ROOT / "constraints.txt"))
#: jstyleson is NNCF's config reader: core's tests check that aac reads every config to the same values
TEST_DEPS = ("pytest>=8", "pytest-timeout", "jstyleson>=0.0.2")
#: the data sets of the framework tests (scikit-learn's digits, offline)
DATA_DEPS = ("scikit-learn",)
#: Extras of each framework's backend that the sessions of that framework install (``None``: of a neutral package,
#: in its own session). onnxruntime runs the exported ONNX models and tensorboard backs torch's SummaryWriter;
#: aac-tf depends on no TensorFlow build, so its tests take the CPU one - and no tensorboard, since aac-tf writes
#: event files without it (issue 11); aac-core's optional history plot and TensorBoard writer.
TEST_EXTRAS: dict[str | None, tuple[str, ...]] = {None: ("plot", "tensorboard"), "torch": ("onnx", "tensorboard"), "tf": ("cpu",)}
#: the framework whose backend also runs on the classifiers' other Python versions (with the neutral packages)
EXTRA_PYTHON_FRAMEWORK = "torch"
#: modules a framework-neutral session must not be able to import
FRAMEWORK_MODULES = ("torch", "tensorflow")


def _uv_environment() -> None:
    """uv ignores pip's config: point it at the local wheel folder pip uses (the CPU torch wheel).

    Sessions write the bytecode of the modules they import, once per session: compiling every installed module
    at install time (``UV_COMPILE_BYTECODE``) costs about 12 s of CPU per torch or TensorFlow session, several
    times what the imports compile, and with none written (this machine sets ``PYTHONDONTWRITEBYTECODE``)
    every test process would compile torch and TensorFlow again.
    """
    if "UV_FIND_LINKS" not in os.environ:
        try:
            out = subprocess.run(["pip", "config", "get", "global.find-links"], capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            out = ""
        if out:
            os.environ["UV_FIND_LINKS"] = out
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


_uv_environment()


@dataclass
class Package:
    """One folder under ``packages/``, as its ``pyproject.toml`` describes it."""

    name: str
    folder: Path
    dependencies: list[Requirement]
    extras: dict[str, list[Requirement]]
    pythons: list[str]
    #: the frameworks its tests run with; empty for a framework-neutral package
    frameworks: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, folder: Path) -> Package:
        pyproject = nox.project.load_toml(folder / "pyproject.toml")
        project = pyproject["project"]
        extras = {key: [Requirement(r) for r in reqs] for key, reqs in project.get("optional-dependencies", {}).items()}
        pythons = nox.project.python_versions(pyproject)
        if not pythons:
            raise ValueError(
                f"{folder / 'pyproject.toml'}: no 'Programming Language :: Python :: 3.X' classifier says which Pythons to test"
            )
        return cls(project["name"], folder, [Requirement(r) for r in project.get("dependencies", [])], extras, pythons)

    def requirement(self, *extras: str) -> str:
        """The local path with ``extras`` (``packages/aac-torch[onnx]``), for a non-editable install."""
        unknown = [e for e in extras if e not in self.extras]
        if unknown:
            raise ValueError(f"{self.folder / 'pyproject.toml'} declares no extra {', '.join(unknown)} (noxfile.py TEST_EXTRAS)")
        return f"{self.folder}[{','.join(extras)}]" if extras else str(self.folder)


def _packages() -> dict[str, Package]:
    packages = {p.name: p for p in (Package.load(f.parent) for f in sorted((ROOT / "packages").glob("*/pyproject.toml")))}
    for package in packages.values():
        for framework, requirements in package.extras.items():
            backend = packages.get(f"aac-{framework}")
            if backend is not None and any(r.name == backend.name for r in requirements):
                package.frameworks.append(framework)
    backends = {f"aac-{f}" for p in packages.values() for f in p.frameworks}
    for name in backends:
        packages[name].frameworks = [name.removeprefix("aac-")]
    return packages


PACKAGES = _packages()
#: framework -> its backend package
BACKENDS = {framework: PACKAGES[f"aac-{framework}"] for p in PACKAGES.values() for framework in p.frameworks}
FRAMEWORKS = list(BACKENDS)
#: every version some package's classifiers list
PYTHONS = sorted({v for p in PACKAGES.values() for v in p.pythons}, key=lambda v: tuple(map(int, v.split("."))))
#: the interpreter running nox: the whole matrix runs on it, so it cannot be missing; one the classifiers do not list fails here
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _check_layout() -> None:
    """Fail on tests no session would run: a package's framework folder it has no extra for, an integration folder
    that names no framework, or the running interpreter outside some package's classifiers."""
    problems = [
        f"{p.folder / 'pyproject.toml'}: Python {PYTHON} (running nox) is not among its classifiers {p.pythons}"
        for p in PACKAGES.values()
        if PYTHON not in p.pythons
    ]
    for package in PACKAGES.values():
        for framework in FRAMEWORKS:
            folder = package.folder / "tests" / framework
            if folder.is_dir() and framework not in package.frameworks:
                problems.append(f"{folder}: {package.name} has no '{framework}' extra, so no session runs these tests")
    for folder in sorted(INTEGRATION.iterdir()) if INTEGRATION.is_dir() else []:
        if folder.is_dir() and folder.name not in FRAMEWORKS and folder.name != "__pycache__":
            problems.append(f"{folder}: no framework is called {folder.name!r} ({', '.join(FRAMEWORKS)}), so no session runs these tests")
    if problems:
        raise SystemExit("noxfile.py: " + "\n  ".join(problems))


_check_layout()


def _closure(wanted: dict[str, set[str]]) -> dict[str, set[str]]:
    """``wanted`` (package -> extras) plus every in-repo package they require, so none comes from PyPI."""
    result: dict[str, set[str]] = {}
    todo = list(wanted.items())
    while todo:
        name, extras = todo.pop()
        if extras <= result.get(name, set()) and name in result:
            continue
        result.setdefault(name, set()).update(extras)
        package = PACKAGES[name]
        for requirement in package.dependencies + [r for e in extras for r in package.extras[e]]:
            if requirement.name in PACKAGES:
                todo.append((requirement.name, set(requirement.extras)))
    return result


def _install(session: nox.Session, wanted: dict[str, set[str]], extra: Iterable[str] = ()) -> None:
    closure = _closure(wanted)
    local = [PACKAGES[name].requirement(*sorted(extras)) for name, extras in sorted(closure.items())]
    session.install(*CONSTRAINTS, *TEST_DEPS, *local, *extra)


def _with_framework(wanted: dict[str, set[str]], framework: str) -> dict[str, set[str]]:
    backend = BACKENDS[framework].name
    return {**wanted, backend: wanted.get(backend, set()) | set(TEST_EXTRAS[framework])}


def _everything(*frameworks: str) -> dict[str, set[str]]:
    """Every package that supports one of ``frameworks``, with those extras and the backends' test extras."""
    wanted: dict[str, set[str]] = {}
    for package in PACKAGES.values():
        chosen = {f for f in package.frameworks if f in frameworks}
        if chosen and package.name not in {b.name for b in BACKENDS.values()}:
            wanted[package.name] = chosen
    for framework in frameworks:
        wanted = _with_framework(wanted, framework)
    return wanted


def _neutral() -> dict[str, set[str]]:
    """The framework-neutral packages with the test extras (``TEST_EXTRAS[None]``) each declares."""
    return {p.name: set(TEST_EXTRAS[None]) & set(p.extras) for p in PACKAGES.values() if not p.frameworks}


def _test_params() -> list[nox.param]:
    """(python, package, framework): the whole matrix on PYTHON, the neutral packages and the torch backend on the others."""
    params = []
    for python in [PYTHON, *(v for v in PYTHONS if v != PYTHON)]:
        for package in PACKAGES.values():
            for framework in package.frameworks or [None]:
                extra_python = python != PYTHON
                if python not in package.pythons or (
                    extra_python and framework is not None and package is not BACKENDS[EXTRA_PYTHON_FRAMEWORK]
                ):
                    continue
                parts = [package.name, *([framework] if framework else []), *([python] if extra_python else [])]
                tags = [package.name, framework or "neutral", f"python{python}"]
                params.append(nox.param(python, package.name, framework, id=", ".join(parts), tags=tags))
    return params


@nox.session(python=PYTHON)
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
        *(PACKAGES[name].requirement(*sorted(extras)) for name, extras in _neutral().items()),
    )
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "-p", "aac.core")
    sources = os.pathsep.join(str(p.folder / "src") for p in PACKAGES.values())
    session.run("lint-imports", env={"PYTHONPATH": sources})


@nox.session
@nox.parametrize("python,package,framework", _test_params())
def tests(session: nox.Session, package: str, framework: str | None) -> None:
    """One package's own tests with one framework, with only what the package's pyproject asks for installed.

    No test skips for a missing sibling: a test that needs another aac package fails (the root conftest),
    and belongs under ``tests/integration/<framework>``. A neutral package's session first checks that no
    framework is importable and that importing the package imports none.
    """
    this = PACKAGES[package]
    tests_dir = (this.folder / "tests").relative_to(ROOT)
    if framework is None:
        _install(session, {package: _neutral()[package]})
        module = f"aac.{package.removeprefix('aac-')}"
        session.run("python", "-c", _NO_FRAMEWORK.format(frameworks=FRAMEWORK_MODULES, module=module))
    else:
        _install(session, _with_framework({package: set() if this is BACKENDS[framework] else {framework}}, framework), DATA_DEPS)
    others = [f"--ignore={tests_dir / f}" for f in FRAMEWORKS if f != framework]
    session.run("pytest", str(tests_dir), *others, *session.posargs)


_NO_FRAMEWORK = """
import importlib, importlib.util as u, sys
bad = [m for m in {frameworks!r} if u.find_spec(m)]
if bad:
    sys.exit(f"framework importable in a framework-neutral session: {{bad}}")
importlib.import_module({module!r})
bad = [m for m in {frameworks!r} if m in sys.modules]
sys.exit(f"{module} imported {{bad}}") if bad else print("no framework installed or imported: ok")
"""


@nox.session(python=PYTHON)
@nox.parametrize("framework", [nox.param(f, id=f, tags=[f]) for f in FRAMEWORKS if (INTEGRATION / f).is_dir()])
def integration(session: nox.Session, framework: str) -> None:
    """Tests that combine packages (mixing algorithms, NNCF's multi-algorithm configs): every package of the framework installed."""
    _install(session, _everything(framework), DATA_DEPS)
    session.run("pytest", str((INTEGRATION / framework).relative_to(ROOT)), *session.posargs)


def _all() -> dict[str, set[str]]:
    """Everything, every framework, with the neutral packages' test extras (the repository-wide tests and tools)."""
    return {**_everything(*FRAMEWORKS), **_neutral()}


@nox.session(python=PYTHON)
def cross(session: nox.Session) -> None:
    """The repository's own tests (docs, plugins, the demo, schemas, config fuzzing): every package installed together.

    The plugin tests install the example plugin themselves; ``tests/integration`` runs in the integration sessions.
    """
    _install(session, _all(), DATA_DEPS)
    session.run("pytest", "tests", f"--ignore={INTEGRATION.relative_to(ROOT)}", *session.posargs)


@nox.session(python=PYTHON, default=False)
def demo(session: nox.Session) -> None:
    """The digits demo: train, search the pruning rate under the budget, export (``-- --out DIR``, ``-- --framework tf``)."""
    args = list(session.posargs)
    framework = args[args.index("--framework") + 1] if "--framework" in args[:-1] else "torch"
    if framework not in FRAMEWORKS:
        session.error(f"the demo supports --framework {' or '.join(FRAMEWORKS)}, not {framework!r}")
    neutral = {p.name: {"plot"} & set(p.extras) for p in PACKAGES.values() if not p.frameworks}  # the history plot
    _install(session, {**_everything(framework), **neutral}, DATA_DEPS)
    if "--framework" not in args:
        args = ["--framework", framework, *args]
    session.run("python", "examples/digits/run.py", *args)


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks: overhead and latency ratios measured side by side, PyTorch and TensorFlow (JSON + table)."""
    _install(session, _all(), DATA_DEPS)
    missed = []
    for command in (
        ("benchmarks/run.py", *session.posargs),
        ("benchmarks/search.py",),
        ("benchmarks/kill_resume.py",),
        ("benchmarks/kill_resume.py", "--framework", "tf"),
    ):
        try:  # a missed target fails the session at the end, after every benchmark has reported
            session.run("python", *command)
        except nox.command.CommandFailed:
            missed.append(" ".join(command))
    if missed:
        session.error(f"missed a target or failed: {'; '.join(missed)}")


@nox.session(python=PYTHON, default=False)
def schemas(session: nox.Session) -> None:
    """Regenerate schemas/ (the published, composed schema) and docs/configuration-reference.md from the packages' plugins."""
    _install(session, _all())
    session.run("python", "schemas/regenerate.py")
