"""The ``aac`` command: ``validate``, ``plugins`` and ``schema``.

Most tests call :func:`aac.core.cli.main` in-process with a toy registry; one runs the installed
console script, because "no traceback, one line per problem" is a promise about the real process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from aac.core import Registry, __version__
from aac.core.cli import main
from aac.core.plugins import DISABLE_AUTOLOAD_ENV, DISABLED_PLUGINS_ENV, reset_default_registry

if TYPE_CHECKING:
    from conftest import FakeDistributions

VALID = {
    "accuracy_aware_training": {"mode": "early_exit", "params": {"maximal_absolute_accuracy_degradation": 0.5}},
    "compression": {"algorithm": "toy_pruning", "params": {"target": 0.5}},
}
#: three problems: no degradation key, an unknown key with a suggestion, an unknown algorithm
INVALID = {
    "accuracy_aware_training": {"mode": "early_exit", "params": {}},
    "compression": [{"algorithm": "toy_pruning", "params": {"targt": 0.5}}, {"algorithm": "magnitude_sparsity"}],
}
INVALID_LINES = [
    "$.accuracy_aware_training.params: give exactly one of 'maximal_relative_accuracy_degradation' (percent) and "
    "'maximal_absolute_accuracy_degradation' (metric units); found 0",
    "$.compression[0].params.targt: unknown key 'targt' (did you mean 'target'?); allowed: target, steps, max_rate, grid",
    "$.compression[1].algorithm: algorithm 'magnitude_sparsity' is provided by aac-sparsity, which is not installed: "
    "pip install aac-sparsity",
]
MALFORMED = '{\n  // a comment\n  "compression": {"algorithm": "toy_quant"}\n  "batch_size": 3\n}\n'


def write(folder: Path, name: str, content: Any) -> str:
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
    return str(path)


def run_cli(capsys: pytest.CaptureFixture[str], registry: Registry | None, *argv: str) -> tuple[int, list[str], str]:
    """(exit code, stdout lines, stderr) of ``aac *argv``."""
    code = main(list(argv), registry=registry)
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


# -- validate ------------------------------------------------------------------------------------


def test_validate_valid_files(tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = write(tmp_path, "a.json", VALID), write(tmp_path, "b.json", {"batch_size": 4})
    code, lines, err = run_cli(capsys, registry, "validate", first, second)
    assert (code, lines, err) == (0, [f"{first}: ok", f"{second}: ok"], "")


def test_validate_prints_legacy_notes(tmp_path: Path, nncf_registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "legacy.json", {"compression": {"algorithm": "filter_pruning", "params": {"weight_importance": "L2"}}})
    code, lines, _ = run_cli(capsys, nncf_registry, "validate", path)
    assert code == 0
    assert lines == [
        f"{path}: ok",
        "  note: $.compression.params.weight_importance is a legacy spelling; read as $.compression.params.filter_importance",
    ]


def test_validate_prints_one_line_per_problem(tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = write(tmp_path, "good.json", VALID), write(tmp_path, "bad.json", INVALID)
    code, lines, err = run_cli(capsys, registry, "validate", good, bad)

    assert code == 1
    assert lines == [f"{good}: ok"] + [f"{bad}: {line}" for line in INVALID_LINES]
    assert err == "1 of 2 config(s) invalid\n"


def test_validate_malformed_json_reports_line_and_column(tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "broken.json", MALFORMED)
    code, lines, _ = run_cli(capsys, registry, "validate", path)
    assert code == 1
    assert lines == [f"{path}: $: malformed JSON at line 4, column 3: Expecting ',' delimiter"]


def test_validate_missing_file(tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "missing.json")
    code, lines, _ = run_cli(capsys, registry, "validate", missing)
    assert (code, lines) == (1, [f"{missing}: $: config file {missing} does not exist"])


def test_validate_quiet_prints_problems_only(tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = write(tmp_path, "good.json", VALID), write(tmp_path, "bad.json", INVALID)
    code, lines, err = run_cli(capsys, registry, "validate", "-q", good, bad)
    assert (code, len(lines), err) == (1, len(INVALID_LINES), "")
    assert all(line.startswith(f"{bad}: $") for line in lines)


def test_validate_needs_a_file(registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["validate"], registry=registry)
    assert info.value.code == 2
    assert "the following arguments are required: FILE" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"aac-core {__version__}"


# -- plugins -------------------------------------------------------------------------------------


def test_plugins_lists_everything_the_registry_has(registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run_cli(capsys, registry, "plugins")
    text = "\n".join(lines)

    assert code == 0
    assert lines[0] == f"aac-core {__version__}"
    sections = [line for line in lines if line.endswith(":") and not line.startswith(" ")]
    assert sections == ["plugins:", "algorithms:", "backends:", "search strategies:"]
    rows = {line.split()[0]: line for line in lines if line.startswith("  ")}
    assert rows["core"].split()[1:4] == ["aac-core", __version__, "aac.core.builtin"] and rows["core"].endswith("[ok]")
    assert "ToyPlugin" in text and "(registered in code)" in text
    assert rows["toy_pruning"].split()[1:4] == ["adaptive-level", "frameworks:", "python"]
    assert rows["toy_quant"].split()[1] == "fixed-level"
    assert rows["python"].split()[1:3] == ["priority", "-100"]
    assert rows["step"].startswith("  step ")


def test_plugins_shows_a_failed_plugin_and_exits_non_zero(
    dists: FakeDistributions, capsys: pytest.CaptureFixture[str], recwarn: pytest.WarningsRecorder
) -> None:
    dists.add("aac-test-broken", {"broken": "aac_test_broken"}, {"aac_test_broken": "import no_such_module_for_aac\n"})
    reset_default_registry()
    try:
        code, lines, _ = run_cli(capsys, None, "plugins")
    finally:
        reset_default_registry()
    row = next(line for line in lines if line.startswith("  broken "))
    assert code == 1
    assert row.endswith("[FAILED: ModuleNotFoundError: No module named 'no_such_module_for_aac']")
    assert "aac-test-broken" in row


def test_plugins_shows_a_skipped_record_and_exits_non_zero(dists: FakeDistributions, capsys: pytest.CaptureFixture[str]) -> None:
    """Two plugins registering one name no longer stop every command: the later record is skipped."""
    dists.add_working("aac-test-one", "one", "clash")
    dists.add_working("aac-test-two", "two", "clash")
    reset_default_registry()
    try:
        code, lines, err = run_cli(capsys, None, "plugins")
    finally:
        reset_default_registry()
    rows = {line.split()[0]: line for line in lines if line.startswith("  ")}
    assert code == 1
    assert rows["one"].endswith("[ok]")
    assert rows["two"].endswith("[partly disabled: algorithm 'clash' (plugin 'one' registered it first)]")
    assert rows["clash"].endswith("(aac-test-one)")
    assert (
        "aac: warning: aac plugin 'two' (from aac-test-two) registers the algorithm 'clash', which plugin 'one' "
        "(from aac-test-one) registered first; the later record is skipped. "
        f"Set {DISABLED_PLUGINS_ENV}=two to silence this.\n"
    ) in err


RAISING_PLUGIN = """
from aac.core import hookimpl

@hookimpl
def aac_algorithms():
    raise RuntimeError("licence server unreachable")
"""
HOOK_WARNING = (
    "aac: warning: aac plugin 'raising' (from aac-test-raising) is disabled: aac_algorithms() raised RuntimeError: "
    f"licence server unreachable. Set {DISABLED_PLUGINS_ENV}=raising to silence this."
)


@pytest.fixture
def raising_plugin(dists: FakeDistributions) -> Iterator[FakeDistributions]:
    """An installed plugin whose registration hook raises, next to a working one; the default registry is rebuilt."""
    dists.add("aac-test-raising", {"raising": "aac_test_raising"}, {"aac_test_raising": RAISING_PLUGIN})
    dists.add_working("aac-test-good", "good", "good_algo")
    reset_default_registry()
    yield dists
    reset_default_registry()


def test_plugins_shows_a_plugin_disabled_by_its_hook(raising_plugin: FakeDistributions, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run_cli(capsys, None, "plugins")

    rows = {line.split()[0]: line for line in lines if line.startswith("  ")}
    assert code == 1
    assert rows["raising"].endswith("[FAILED: aac_algorithms() raised RuntimeError: licence server unreachable]")
    assert rows["good"].endswith("[ok]") and rows["good_algo"].endswith("(aac-test-good)")
    assert HOOK_WARNING in err.splitlines() and "Traceback" not in err


def test_validate_works_beside_a_plugin_disabled_by_its_hook(
    raising_plugin: FakeDistributions, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "good.json", {"compression": {"algorithm": "good_algo"}})
    code, lines, err = run_cli(capsys, None, "validate", path)
    assert (code, lines) == (0, [f"{path}: ok"])
    assert HOOK_WARNING in err.splitlines()


def test_other_warnings_are_left_to_python(dists: FakeDistributions, capsys: pytest.CaptureFixture[str]) -> None:
    """Only aac's plugin warnings become ``aac: warning:`` lines; a plugin's own warning keeps Python's handling."""
    dists.add(
        "aac-test-warns",
        {"warns": "aac_test_warns"},
        {
            "aac_test_warns": """
        import warnings
        from aac.core import hookimpl

        @hookimpl
        def aac_algorithms():
            warnings.warn("the 'speedy' option is deprecated", UserWarning, stacklevel=1)
            return []
    """
        },
    )
    reset_default_registry()
    try:
        with pytest.warns(UserWarning, match="the 'speedy' option is deprecated"):
            code, _, err = run_cli(capsys, None, "plugins")
    finally:
        reset_default_registry()
    assert code == 0 and "speedy" not in err


# -- schema --------------------------------------------------------------------------------------


@pytest.fixture
def printed_schema(nncf_registry: Registry, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, lines, _ = run_cli(capsys, nncf_registry, "schema")
    assert code == 0
    schema: dict[str, Any] = json.loads("\n".join(lines))
    return schema


def test_schema_is_a_valid_draft_2020_12_schema(printed_schema: dict[str, Any]) -> None:
    Draft202012Validator.check_schema(printed_schema)
    assert printed_schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_schema_contains_every_registered_algorithm(printed_schema: dict[str, Any], nncf_registry: Registry) -> None:
    names = list(nncf_registry.algorithms)
    section = printed_schema["$defs"]["algorithm_section"]
    assert section["properties"]["algorithm"]["enum"] == names
    assert {f"algorithm_{name}" for name in names} <= set(printed_schema["$defs"])
    assert [branch["if"]["properties"]["algorithm"]["const"] for branch in section["allOf"]] == names


def test_schema_is_self_contained(printed_schema: dict[str, Any]) -> None:
    """Editors and check-jsonschema use the printed file alone: every ``$ref`` must resolve inside it."""
    validator = Draft202012Validator(printed_schema)
    assert list(validator.iter_errors({**VALID, "input_info": {"sample_size": [1, 3]}})) == []
    error = best_match(validator.iter_errors({"compression": {"algorithm": "toy_pruning", "params": {"target": "x"}}}))
    assert error is not None and error.message == "'x' is not of type 'number'", "the plugin's section schema is applied"
    assert list(validator.iter_errors({"compression": {"algorithm": "unheard_of"}})), "the enum rejects unknown algorithms"


def test_schema_output_file(tmp_path: Path, registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "schema.json"
    code, lines, _ = run_cli(capsys, registry, "schema", "--output", str(target))
    assert (code, lines) == (0, [])
    main(["schema"], registry=registry)
    assert target.read_text() == capsys.readouterr().out


# -- the real process ------------------------------------------------------------------------------


def test_console_script_reports_problems_without_traceback(tmp_path: Path) -> None:
    """The installed ``aac`` script (``python -m aac.core.cli`` where no script exists), core only."""
    bad = write(
        tmp_path,
        "bad.json",
        {
            "accuracy_aware_training": {"mode": "early_exit", "params": {"patience_epochs": 2}},
            "compression": {"algorithm": "filter_pruning"},
        },
    )
    broken = write(tmp_path, "broken.json", MALFORMED)
    script = Path(sysconfig.get_path("scripts")) / ("aac.exe" if os.name == "nt" else "aac")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "aac.core.cli"]
    env = {**os.environ, DISABLE_AUTOLOAD_ENV: "1"}

    result = subprocess.run([*command, "validate", bad, broken], capture_output=True, text=True, env=env, timeout=60, check=False)

    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"{bad}: $.accuracy_aware_training.params: give exactly one of 'maximal_relative_accuracy_degradation' (percent) and "
        "'maximal_absolute_accuracy_degradation' (metric units); found 0",
        f"{bad}: $.accuracy_aware_training.params.patience_epochs: 'patience_epochs' is only used in "
        "'adaptive_compression_level' mode, not in 'early_exit'",
        f"{bad}: $.compression.algorithm: algorithm 'filter_pruning' is provided by aac-pruning, which is not installed: "
        "pip install aac-pruning",
        f"{broken}: $: malformed JSON at line 4, column 3: Expecting ',' delimiter",
    ]
    assert result.stderr == "2 of 2 config(s) invalid\n"


def test_console_script_survives_a_closed_pipe(tmp_path: Path) -> None:
    """``aac schema | head`` closes the pipe early; that must not end in a BrokenPipeError traceback."""
    script = Path(sysconfig.get_path("scripts")) / ("aac.exe" if os.name == "nt" else "aac")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "aac.core.cli"]
    process = subprocess.Popen(
        [*command, "schema"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, DISABLE_AUTOLOAD_ENV: "1"}
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the command has written anything
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 1
    assert stderr == ""
