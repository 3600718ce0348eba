"""What a run prints: one line per epoch, a progress bar on a terminal that log lines never collide with, one final table."""

from __future__ import annotations

import gc
import io
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aac.core import AccuracyAwareParams, EpochRecord, Registry, create_accuracy_aware_training_loop, create_compressed_model
from aac.core.config import ADAPTIVE
from aac.core.testing import ToyModel, accuracy, train_epoch
from aac.core.training.observers import ConsoleReporter, RunContext, format_epoch

MAX_EPOCHS = 30
BAR = re.compile(r"aac:\s+\d+%\|.*?\|\s*(\d+)/(\d+) \[(\d\d:\d\d)<([\d:?]+)")
TABLE_HEADER = re.compile(r"^\| accuracy-aware training +\| result +\|$")


class Terminal:
    """One screen that stdout and stderr both print to, as in a shell; ``with terminal:`` makes it the process's.

    (Inside the test itself: pytest puts its own capture back into ``sys.stdout``/``sys.stderr`` between a
    fixture's set-up and the test.)
    """

    def __init__(self, handler_on: str) -> None:
        self.written: list[str] = []
        self.stdout, self.stderr = _Port(self), _Port(self)
        #: prints aac's lines here, to ``handler_on`` ("stdout" or "stderr")
        self.handler = logging.StreamHandler(getattr(self, handler_on))
        self.handler.setFormatter(logging.Formatter("%(message)s"))
        self._saved: tuple[Any, Any] = (None, None)

    def __enter__(self) -> Terminal:
        self._saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = self.stdout, self.stderr
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout, sys.stderr = self._saved

    @property
    def text(self) -> str:
        return "".join(self.written)

    def screen(self) -> list[str]:
        """The lines the terminal shows: a carriage return goes back to the line's start, later text overwrites."""
        lines = []
        for raw in self.text.split("\n"):
            line: list[str] = []
            column = 0
            for char in raw:
                if char == "\r":
                    column = 0
                    continue
                line[column : column + 1] = [char]
                column += 1
            lines.append("".join(line).rstrip())
        return lines


class _Port(io.TextIOBase):
    def __init__(self, terminal: Terminal) -> None:
        self._terminal = terminal

    def isatty(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._terminal.written.append(text)
        return len(text)


@pytest.fixture(params=["aac's handler on stdout", "the user's root handler on stderr"])
def terminal(request: pytest.FixtureRequest) -> Iterator[Terminal]:
    """A terminal that aac's lines reach the way core sets it up (a handler on ``aac`` writing to stdout) or
    the way a user's ``logging.basicConfig()`` does (a handler on the root logger writing to stderr)."""
    ours = request.param.startswith("aac")
    term = Terminal("stdout" if ours else "stderr")
    owner = logging.getLogger("aac" if ours else "")
    aac_logger = logging.getLogger("aac")
    level = aac_logger.level
    aac_logger.setLevel(logging.INFO)
    owner.addHandler(term.handler)
    yield term
    owner.removeHandler(term.handler)
    aac_logger.setLevel(level)


def config() -> dict[str, Any]:
    params = {
        "maximal_absolute_accuracy_degradation": 0.05,
        "initial_training_phase_epochs": 2,
        "patience_epochs": 2,
        "maximal_total_epochs": MAX_EPOCHS,
    }
    return {
        "accuracy_aware_training": {"mode": ADAPTIVE, "params": params},
        "compression": {"algorithm": "toy_pruning", "params": {"target": 0.2, "steps": 2, "grid": 0.05}},
    }


def run(registry: Registry, log_dir: Path, crash_at_epoch: int | None = None, verbose: bool = True) -> Any:
    """An adaptive search on core's toy model; its train_epoch_fn returns a loss."""
    controller, model = create_compressed_model(ToyModel(0.9), config(), registry=registry)
    loop = create_accuracy_aware_training_loop(config(), controller, 0.95, registry=registry, verbose=verbose)

    def train(controller: Any, model: ToyModel, epoch: int, optimizer: Any, lr_scheduler: Any) -> float:
        if epoch == crash_at_epoch:
            raise KeyboardInterrupt("simulated crash")
        train_epoch(model)
        return 0.1234

    loop.run(model, train, lambda model, epoch: accuracy(model), log_dir=log_dir)
    return loop.statistics


def record(**fields: Any) -> EpochRecord:
    base = {"epoch": 3, "phase": "search", "compression_rate": 0.4, "level_epoch": 1, "metric": 0.91, "budget": 0.01}
    return EpochRecord(**{**base, **fields})


# -- the epoch line ------------------------------------------------------------------------------


def test_epoch_line_shows_time_loss_and_learning_rate() -> None:
    line = format_epoch(record(train_loss=0.03125, learning_rate_scale=0.5, seconds=83.4, step=0.05))
    assert line.startswith("[aac] epoch    3 | search ")
    for part in ("rate 0.4000", "metric 0.9100", "budget +0.0100", "loss 0.03125", "lr scale 0.5", "1m23s", "step 0.05"):
        assert f"| {part}" in line, part
    assert "\n" not in line


def test_epoch_line_leaves_out_what_the_epoch_did_not_have() -> None:
    assert "loss" not in format_epoch(record(train_loss=None))  # train_epoch_fn returned nothing
    initial = format_epoch(record(epoch=0, phase="initial", seconds=0.5))  # validation only: no training, no lr
    assert "lr" not in initial and initial.endswith("| 0.50s")
    assert "metric      - | budget       -" in format_epoch(record(metric=None, budget=None))


def test_probe_prints_as_a_probe_in_the_epoch_columns() -> None:
    epoch, probe = format_epoch(record()), format_epoch(record(phase="probe", seconds=2.0))
    assert probe.startswith("[aac]   probe ") and "| untrained " in probe
    assert "loss" not in probe and "lr" not in probe
    assert probe.index("| rate") == epoch.index("| rate")


def test_run_prints_loss_and_learning_rate_of_every_trained_epoch(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="aac"):
        statistics = run(registry, tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[aac] epoch")]
    assert len(lines) == statistics.total_epochs + 1  # and the validation before training
    assert all("| loss 0.1234 | lr scale 1 |" in line for line in lines[1:])


# -- the terminal --------------------------------------------------------------------------------


def test_terminal_shows_a_bar_with_total_and_eta_and_lines_never_glued_to_it(
    registry: Registry, tmp_path: Path, terminal: Terminal
) -> None:
    with terminal:
        statistics = run(registry, tmp_path)
    bars = BAR.findall(terminal.text)
    assert bars, "no progress bar was drawn"
    assert {total for _, total, _, _ in bars} == {str(MAX_EPOCHS)}
    assert [int(done) for done, *_ in bars][-1] == statistics.total_epochs
    assert any(re.fullmatch(r"\d\d:\d\d", eta) for *_, eta in bars), "the bar never showed an ETA"
    assert "rate=" in terminal.text and "metric=" in terminal.text
    screen = terminal.screen()
    aac_lines = [line for line in screen if "[aac]" in line]
    assert aac_lines and all(line.startswith("[aac]") for line in aac_lines), "a log line was glued onto the bar"
    assert not [line for line in screen if BAR.search(line)], "the bar was not taken down when the run ended"
    assert terminal.handler.stream in (terminal.stdout, terminal.stderr), "the handler did not get its stream back"


def test_final_table_prints_once(registry: Registry, tmp_path: Path, terminal: Terminal) -> None:
    with terminal:
        run(registry, tmp_path)
    assert sum(bool(TABLE_HEADER.match(line)) for line in terminal.screen()) == 1


def test_resumed_run_bar_starts_at_the_epochs_done(registry: Registry, tmp_path: Path, terminal: Terminal) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(registry, tmp_path, crash_at_epoch=4, verbose=False)
    with terminal:
        run(registry, tmp_path)
    first_done, total, *_ = BAR.findall(terminal.text)[0]
    assert (int(first_done), int(total)) == (4, MAX_EPOCHS)


def test_a_run_that_raises_takes_its_bar_down_and_gives_the_console_back(registry: Registry, tmp_path: Path, terminal: Terminal) -> None:
    try:
        with terminal, pytest.raises(KeyboardInterrupt):
            run(registry, tmp_path, crash_at_epoch=4)
        assert terminal.handler.stream in (terminal.stdout, terminal.stderr)
        assert not [line for line in terminal.screen() if BAR.search(line)]
    finally:
        gc.collect()  # a bar left open lives in the traceback's frames until collected, and would push the next test's bar down


def test_on_run_error_takes_the_bar_down_and_gives_the_console_back(tmp_path: Path, terminal: Terminal) -> None:
    stream = terminal.handler.stream
    reporter = ConsoleReporter()
    context = RunContext(tmp_path, ADAPTIVE, AccuracyAwareParams(mode=ADAPTIVE, maximal_total_epochs=7), 0.95, controller=None)
    with terminal:
        reporter.on_run_start(context, [])
        assert terminal.handler.stream is not stream, "log lines would be glued onto the bar"
        reporter.on_epoch_end(record(epoch=1))
        reporter.on_run_error(KeyboardInterrupt())
    assert terminal.handler.stream is stream
    assert not [line for line in terminal.screen() if BAR.search(line)]
