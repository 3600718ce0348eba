"""Observers of an accuracy-aware run: the console, the history files, TensorBoard and the plot.

The loops know nothing about reporting; they announce the start, every epoch and the end to the
observers that plugins return from ``aac_loop_observers`` - core's own reporters included.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from aac.core.atomic import atomic_write_bytes, atomic_write_json
from aac.core.config.accuracy_aware import AccuracyAwareParams
from aac.core.training.records import EpochRecord, TrainingLoopStatistics

logger = logging.getLogger("aac.training")

HISTORY_JSON = "history.json"
HISTORY_CSV = "history.csv"
STATISTICS_JSON = "statistics.json"
PLOT_PNG = "search.png"


@dataclass
class RunContext:
    """What observers may know about a run."""

    log_dir: Path
    mode: str
    params: AccuracyAwareParams
    uncompressed_metric: float
    controller: Any
    tensorboard_writer: Any = None
    verbose: bool = True
    is_main_process: bool = True

    @property
    def minimal_tolerable_metric(self) -> float:
        return self.params.minimal_tolerable_metric(self.uncompressed_metric)


class LoopObserver:
    """Base class of run observers; override what you need. Observers must not raise for reporting."""

    def on_run_start(self, context: RunContext, resumed_history: list[EpochRecord]) -> None:
        """The run starts (``resumed_history`` holds the epochs of an interrupted run being resumed)."""

    def on_epoch_end(self, record: EpochRecord) -> None:
        """An epoch (or the initial validation, epoch 0) finished."""

    def on_run_end(self, statistics: TrainingLoopStatistics) -> None:
        """The run finished; ``statistics`` describes the returned model."""

    def on_run_error(self, error: BaseException) -> None:
        """The run raised ``error`` (an interruption too) and ends without statistics: release what
        ``on_run_start`` took (a progress bar, a redirected console), since ``on_run_end`` will not come."""


def _ensure_console_logging() -> None:
    aac_logger = logging.getLogger("aac")
    if not aac_logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        aac_logger.addHandler(handler)
        aac_logger.setLevel(logging.INFO)


def format_duration(seconds: float) -> str:
    """``seconds`` as a person reads it: ``0.42s``, ``12.3s``, ``4m05s``, ``2h07m``."""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def format_epoch(record: EpochRecord) -> str:
    """One console line per record: a trained epoch (or the validation before training, epoch 0) or a probe.

    The learning rate is the optimizer's, read by the backend after the epoch; where it cannot be read,
    the factor the search applied to the user's schedule is shown instead, labelled as the scale it is.
    """
    metric = f"{'-':>6}" if record.metric is None else f"{record.metric:.4f}"
    budget = f"{'-':>7}" if record.budget is None else f"{record.budget:+.4f}"
    measured = [f"rate {record.compression_rate:.4f}", f"metric {metric}", f"budget {budget}"]
    if record.is_probe:  # in the epoch lines' columns, under the epoch whose weights it measured
        return " | ".join(["[aac]   probe   ", f"{'untrained':<10}", *measured, format_duration(record.seconds)])
    parts = [f"[aac] epoch {record.epoch:4d}", f"{record.phase:<10}", *measured]
    if record.train_loss is not None:
        parts.append(f"loss {record.train_loss:.4g}")
    if record.learning_rate is not None:
        parts.append(f"lr {record.learning_rate:.3g}")
    elif record.epoch > 0:  # epoch 0 only validates: no learning rate was used
        parts.append(f"lr scale {record.learning_rate_scale:g}")
    parts.append(format_duration(record.seconds))
    if record.step is not None:
        parts.append(f"step {record.step:g}")
    if record.level_end is not None:
        parts.append(f"level ended: {record.level_end}")
    return " | ".join(parts)


def _console_handlers(logger: logging.Logger) -> list[logging.StreamHandler[Any]]:
    """The handlers that print ``logger``'s lines to stdout or stderr, up its propagation chain."""
    found: list[logging.StreamHandler[Any]] = []
    current: logging.Logger | None = logger
    while current is not None:
        found += [
            h for h in current.handlers if isinstance(h, logging.StreamHandler) and h.stream in (sys.stdout, sys.stderr) and h not in found
        ]
        current = current.parent if current.propagate else None
    return found


@contextlib.contextmanager
def console_logging_through_tqdm(logger: logging.Logger) -> Iterator[None]:
    """While a progress bar is shown, the console handlers of ``logger``'s lines write through ``tqdm.write``.

    ``tqdm.write`` clears the bar, prints the line and redraws the bar below it, so no line is glued onto
    the bar. Only each handler's stream is swapped, and put back on exit: ``logging_redirect_tqdm``
    instead replaces handlers with new ones that drop their level and filters, and adds a handler to a
    logger that had none (lines would print twice). A swap left in place would still be harmless:
    ``tqdm.write`` to the same stream.
    """
    from tqdm.contrib import DummyTqdmFile

    swapped = [(handler, handler.stream) for handler in _console_handlers(logger)]
    for handler, stream in swapped:
        handler.setStream(DummyTqdmFile(stream))
    try:
        yield
    finally:
        for handler, stream in swapped:
            handler.setStream(stream)


def epochs_done(history: list[EpochRecord]) -> int:
    """How many epochs the records cover (probes and the validation before training are not epochs)."""
    return max((r.epoch for r in history), default=0)


class ConsoleReporter(LoopObserver):
    """One line per epoch, a progress bar on a terminal, and the final table, once.

    The bar counts epochs up to the run's ``maximal_total_epochs`` (the most the run may train, so its
    ETA is an upper bound) and starts, on a resumed run, at the epochs already done.
    """

    def __init__(self) -> None:
        self._bar: Any = None
        self._console = contextlib.ExitStack()
        self._postfix: dict[str, str] = {}

    def on_run_start(self, context: RunContext, resumed_history: list[EpochRecord]) -> None:
        _ensure_console_logging()
        logger.info(
            "[aac] %s run in %s: uncompressed metric %.4f, %s -> tolerable %.4f",
            context.mode,
            context.log_dir,
            context.uncompressed_metric,
            context.params.allowed_drop_text(),
            context.minimal_tolerable_metric,
        )
        if resumed_history:
            logger.info("[aac] resuming after epoch %d", resumed_history[-1].epoch)
        if sys.stderr.isatty():
            self._show_bar(context.params.maximal_total_epochs, epochs_done(resumed_history))

    def _show_bar(self, total: int, done: int) -> None:
        from tqdm import tqdm

        self._console.enter_context(console_logging_through_tqdm(logger))
        # redrawn on every update (an epoch is rare enough), not throttled by tqdm's timers
        self._bar = tqdm(total=total, initial=done, unit="epoch", desc="aac", leave=False, file=sys.stderr, mininterval=0, miniters=0)

    def on_epoch_end(self, record: EpochRecord) -> None:
        logger.info(format_epoch(record))
        if self._bar is None or record.is_probe:
            return
        self._postfix["rate"] = f"{record.compression_rate:.3f}"
        if record.metric is not None:
            self._postfix["metric"] = f"{record.metric:.4f}"
        self._bar.set_postfix(self._postfix, refresh=False)
        self._bar.update(record.epoch - self._bar.n)

    def on_run_end(self, statistics: TrainingLoopStatistics) -> None:
        self._close_bar()
        if not statistics.feasible:
            logger.warning("[aac] no compression rate met the budget; returning the model with the smallest drop")
        logger.info("%s\n[aac] results in %s", statistics.to_str(), statistics.log_dir)

    def on_run_error(self, error: BaseException) -> None:
        self._close_bar()

    def _close_bar(self) -> None:
        """Take the bar off the screen (however far it got) and give the console handlers their streams back."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._console.close()


class HistoryWriter(LoopObserver):
    """Keeps ``history.json``/``history.csv`` current after every epoch and writes ``statistics.json``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.records: list[EpochRecord] = []

    def on_run_start(self, context: RunContext, resumed_history: list[EpochRecord]) -> None:
        self.records = list(resumed_history)

    def on_epoch_end(self, record: EpochRecord) -> None:
        self.records.append(record)
        atomic_write_json(self.log_dir / HISTORY_JSON, [r.to_dict() for r in self.records])
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[f.name for f in fields(EpochRecord)])
        writer.writeheader()
        writer.writerows(r.to_dict() for r in self.records)
        atomic_write_bytes(self.log_dir / HISTORY_CSV, buffer.getvalue().encode())

    def on_run_end(self, statistics: TrainingLoopStatistics) -> None:
        atomic_write_json(self.log_dir / STATISTICS_JSON, statistics.to_dict())


class TensorBoardReporter(LoopObserver):
    """Scalars under NNCF's tags, so existing TensorBoard dashboards keep working.

    Probes go under tags of their own (``probe/accuracy_aware/...``, at the epoch they were taken), so
    they never mix with the trained levels' curves.
    """

    def __init__(self, writer: Any, controller: Any) -> None:
        self.writer = writer
        self.controller = controller

    def on_epoch_end(self, record: EpochRecord) -> None:
        add = self.writer.add_scalar
        if record.is_probe:
            add("probe/accuracy_aware/compression_rate", record.compression_rate, record.epoch)
            add("probe/accuracy_aware/metric_value", record.metric, record.epoch)
            add("probe/accuracy_aware/accuracy_budget", record.budget, record.epoch)
            return
        add("compression/accuracy_aware/target_compression_rate", record.compression_rate, record.epoch)
        if record.step is not None:
            add("compression/accuracy_aware/compression_rate_step", record.step, record.epoch)
        if record.metric is not None:
            add("val/accuracy_aware/metric_value", record.metric, record.epoch)
            add("val/accuracy_aware/accuracy_budget", record.budget, record.epoch)
        statistics = getattr(self.controller, "statistics", None)
        if statistics is not None:
            for key, value in statistics().scalars().items():
                add(f"compression/statistics/{key}", value, record.epoch)

    def on_run_end(self, statistics: TrainingLoopStatistics) -> None:
        self.writer.add_scalar("compression/accuracy_aware/final_compression_rate", statistics.compression_rate, statistics.total_epochs)
        self.writer.flush()


class PlotReporter(LoopObserver):
    """``search.png``: rate and metric against epochs, with the tolerable-metric line and the probes (needs matplotlib)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.records: list[EpochRecord] = []
        self._tolerable = 0.0

    def on_run_start(self, context: RunContext, resumed_history: list[EpochRecord]) -> None:
        self.records = list(resumed_history)
        self._tolerable = context.minimal_tolerable_metric

    def on_epoch_end(self, record: EpochRecord) -> None:
        self.records.append(record)

    def on_run_end(self, statistics: TrainingLoopStatistics) -> None:
        try:
            plot_history(self.records, self._tolerable, self.log_dir / PLOT_PNG, statistics)
        except ImportError:
            logger.info("[aac] no plot: install matplotlib (pip install 'aac-core[plot]')")


def plot_history(records: list[EpochRecord], tolerable: float, path: Path, statistics: TrainingLoopStatistics) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    trained = [r for r in records if not r.is_probe]
    probes = [r for r in records if r.is_probe]
    fig, rate_axis = plt.subplots(figsize=(8, 4.5), dpi=110)
    rate_axis.step(
        [r.epoch for r in trained], [r.compression_rate for r in trained], where="pre", color="tab:blue", label="compression rate (trained)"
    )
    if probes:  # a probe of epoch e measures the weights of epoch e, before epoch e + 1 trains: draw it in between
        within = [r for r in probes if r.budget is not None and r.budget >= 0]
        beyond = [r for r in probes if r not in within]
        for group, marker, label in ((within, "^", "probe within budget"), (beyond, "x", "probe over budget")):
            if group:
                rate_axis.scatter(
                    [r.epoch + 0.5 for r in group],
                    [r.compression_rate for r in group],
                    marker=marker,
                    color="tab:purple",
                    s=22,
                    alpha=0.75,
                    label=label,
                    zorder=3,
                )
    rate_axis.set_xlabel("epoch")
    rate_axis.set_ylabel("compression rate", color="tab:blue")
    metric_axis = rate_axis.twinx()
    validated = [(r.epoch, r.metric) for r in trained if r.metric is not None]
    metric_axis.plot([epoch for epoch, _ in validated], [metric for _, metric in validated], "o-", color="tab:orange", ms=3, label="metric")
    metric_axis.axhline(tolerable, color="tab:red", ls="--", lw=1, label=f"tolerable metric {tolerable:.4g}")
    metric_axis.set_ylabel("metric", color="tab:orange")
    verdict = "within budget" if statistics.feasible else "budget NOT met"
    rate_axis.set_title(
        f"accuracy-aware search: rate {statistics.compression_rate:.4g}, metric {statistics.compressed_accuracy:.4g} ({verdict})"
    )
    handles = rate_axis.get_legend_handles_labels()[0] + metric_axis.get_legend_handles_labels()[0]
    rate_axis.legend(handles=handles, loc="lower left", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def console_reporter(context: RunContext) -> LoopObserver | None:
    return ConsoleReporter() if context.verbose and context.is_main_process else None


def history_writer(context: RunContext) -> LoopObserver | None:
    return HistoryWriter(context.log_dir) if context.is_main_process else None


def plot_reporter(context: RunContext) -> LoopObserver | None:
    return PlotReporter(context.log_dir) if context.is_main_process else None


def tensorboard_reporter(context: RunContext) -> LoopObserver | None:
    if context.is_main_process and context.tensorboard_writer is not None:
        return TensorBoardReporter(context.tensorboard_writer, context.controller)
    return None


#: core's reporters in the order they report, each registered as a built-in plugin of its own (name ->
#: the reporter for a run, or None where it has nothing to do), so ``AAC_DISABLED_PLUGINS`` can switch any off
REPORTERS: dict[str, Callable[[RunContext], LoopObserver | None]] = {
    "core-console": console_reporter,
    "core-history": history_writer,
    "core-plot": plot_reporter,
    "core-tensorboard": tensorboard_reporter,
}
