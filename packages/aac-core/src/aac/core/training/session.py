"""One run of an accuracy-aware loop: its folder, its saved state, its checkpoints, its observers.

The folder is a transaction. Every checkpoint - the training state after each epoch, and each new
best model of a rate - is written under a name of its own; then ``state.json`` is written atomically
to point at it; only then is the file it replaces deleted. A run killed at any moment therefore finds
``state.json`` and the files it names consistent, and ``run()`` with the same ``log_dir`` carries on
from the last finished epoch. Files that no saved state names (a write killed before its state
switched, the temporary file of a killed atomic write) are removed when the run resumes.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from aac.core.atomic import atomic_write_json, is_leftover
from aac.core.config.accuracy_aware import AccuracyAwareParams
from aac.core.errors import CheckpointError, CompressionRateError
from aac.core.training.observers import LoopObserver, RunContext
from aac.core.training.progress import LoopState, LoopStateError
from aac.core.training.records import PROBE, EpochRecord
from aac.core.training.runner import TrainingRunner

logger = logging.getLogger("aac.training")

STATE_FILE = "state.json"
STATE_FORMAT = "aac-run-state"
STATE_VERSION = 1
CHECKPOINT_DIR = "checkpoints"
#: how many changed settings a refused resume lists
MAX_REPORTED_CHANGES = 6


class Phase(str, Enum):
    """Where a run is; saved in ``state.json`` (as its value) so that a resumed run continues from there.

    ``START`` validates before training; the adaptive loop then goes ``INITIAL`` -> ``SEARCH_START``
    (hand the initial phase's result to the strategy) -> ``SEARCH``, the early-exit loop ``TRAINING``.
    Training ends in ``FINISHING`` (the returned model is chosen, loaded and measured again), and a run
    whose result is recorded is ``DONE``: running it again restores that result without training.
    """

    START = "start"
    INITIAL = "initial"
    SEARCH_START = "search_start"
    SEARCH = "search"
    TRAINING = "training"
    FINISHING = "finishing"
    DONE = "done"


@dataclass
class SavedCheckpoint:
    """A kept checkpoint and the validation that earned it its place."""

    file: str
    metric: float
    budget: float
    epoch: int
    rate: float


@dataclass
class RunState:
    """Everything besides tensors that a resumed run needs; JSON round-trippable."""

    fingerprint: dict[str, Any]
    phase: Phase = Phase.START
    epochs: int = 0
    last_checkpoint: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    kept: dict[str, dict[str, Any]] = field(default_factory=dict)
    loop: LoopState = field(default_factory=LoopState)
    result: dict[str, Any] | None = None

    def kept_checkpoints(self) -> dict[str, SavedCheckpoint]:
        return {k: SavedCheckpoint(**v) for k, v in self.kept.items()}


def default_log_dir() -> Path:
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return Path.cwd() / "runs" / "accuracy_aware_training" / stamp


class RunSession:
    """Bookkeeping of one ``run()``: state file, kept checkpoints, epoch records, observers."""

    def __init__(
        self,
        runner: TrainingRunner,
        params: AccuracyAwareParams,
        uncompressed_metric: float,
        log_dir: Path,
        fingerprint: dict[str, Any],
        dump_checkpoints: bool,
    ) -> None:
        self.runner = runner
        self.params = params
        self.uncompressed_metric = uncompressed_metric
        self.log_dir = log_dir
        self.checkpoint_dir = log_dir / CHECKPOINT_DIR
        self.dump_checkpoints = dump_checkpoints
        self.observers: list[LoopObserver] = []
        self.state = RunState(fingerprint=fingerprint)
        self.resumed = False
        #: kept files replaced since the state was last saved: deleted once the saved state no longer names them
        self._superseded: list[str] = []

    # -- state --------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.log_dir / STATE_FILE

    def load_existing(self, allow_changed_settings: bool = False) -> bool:
        """Adopt the state of an earlier run in ``log_dir``; True if there was one.

        A run saved under other settings is refused, naming each change, unless ``allow_changed_settings``
        (the user's explicit choice to carry on; the model's structure must still be the same).
        """
        path = self.state_path
        if not path.exists():
            return False
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{path} is corrupt ({exc}); {self._afresh}") from None
        except OSError as exc:
            raise CheckpointError(f"cannot read {path}: {exc}") from None
        saved = self._parse_state(raw)
        if saved.fingerprint != self.state.fingerprint:
            found = differences(saved.fingerprint, self.state.fingerprint)
            changed = "; ".join(f"{path}: {old!r} -> {new!r}" for path, old, new in found[:MAX_REPORTED_CHANGES])
            if len(found) > MAX_REPORTED_CHANGES:
                changed += f"; and {len(found) - MAX_REPORTED_CHANGES} more"
            same_model = saved.fingerprint.get("model") == self.state.fingerprint.get("model")
            if not (allow_changed_settings and same_model):
                override = (
                    ", or pass allow_changed_settings=True to run() to carry on under the new settings"
                    if same_model
                    else "; the model itself changed, so its checkpoints cannot be loaded"
                )
                raise CheckpointError(
                    f"{self.log_dir} holds a run with different settings ({changed}); resume it with the same config, "
                    f"model and uncompressed metric, choose another log_dir for the new settings{override}"
                )
            logger.warning("[aac] resuming %s under changed settings (%s): the history mixes both", self.log_dir, changed)
            saved.fingerprint = self.state.fingerprint
        self.state = saved
        self.resumed = True
        self._remove_unnamed_files()
        return True

    @property
    def _afresh(self) -> str:
        return f"delete {self.log_dir} (or pass another log_dir) to start the run afresh"

    def _parse_state(self, raw: Any) -> RunState:
        """``raw`` as a RunState, or a CheckpointError saying what in state.json is wrong."""

        def damaged(what: str) -> CheckpointError:
            return CheckpointError(f"{self.state_path} is damaged: {what}; {self._afresh}")

        if not isinstance(raw, dict):
            raise damaged(f"it holds a JSON {type(raw).__name__}, not an object")
        if raw.get("format") != STATE_FORMAT or raw.get("version") != STATE_VERSION:
            raise CheckpointError(
                f"{self.state_path} is not an aac run state of version {STATE_VERSION} "
                f"(format {raw.get('format')!r}, version {raw.get('version')!r}); {self._afresh}"
            )
        expected = {f.name for f in fields(RunState)}
        given = {k: v for k, v in raw.items() if k not in ("format", "version")}
        unknown, missing = sorted(set(given) - set(expected)), sorted(k for k in ("fingerprint",) if k not in given)
        if unknown or missing:
            raise damaged(", ".join([*(f"unknown key '{k}'" for k in unknown), *(f"missing key '{k}'" for k in missing)]))
        types = {"fingerprint": dict, "phase": str, "epochs": int, "history": list, "kept": dict, "loop": dict}
        for key, kind in types.items():
            if key in given and (not isinstance(given[key], kind) or isinstance(given[key], bool)):
                raise damaged(f"'{key}' is {type(given[key]).__name__}, not {kind.__name__}")
        phases = {phase.value: phase for phase in Phase}
        if "phase" in given and given["phase"] not in phases:
            raise damaged(f"unknown phase '{given['phase']}' (one of {', '.join(phases)})")
        try:
            loop = LoopState.from_dict(given.get("loop", {}))
        except LoopStateError as error:
            raise damaged(f"its loop state: {error}") from None
        state = RunState(**{**given, "phase": phases[given.get("phase", Phase.START.value)], "loop": loop})
        for key, entry in state.kept.items():
            if not isinstance(entry, dict) or set(entry) != {f.name for f in fields(SavedCheckpoint)}:
                raise damaged(f"kept checkpoint '{key}' is not a {{file, metric, budget, epoch, rate}} record")
        if state.phase == Phase.DONE and not (isinstance(state.result, dict) and state.result.get("key") in state.kept):
            raise damaged("the run is marked done but names no kept checkpoint as its result")
        if state.last_checkpoint is not None and not isinstance(state.last_checkpoint, str):
            raise damaged("'last_checkpoint' is not a file name")
        return state

    def _remove_unnamed_files(self) -> None:
        """Delete checkpoint files the saved state does not name (writes killed before the state switched to them)."""
        if not self.runner.is_main_process or not self.checkpoint_dir.is_dir():
            return
        named = {c["file"] for c in self.state.kept.values()} | {self.state.last_checkpoint}
        for path in self.checkpoint_dir.iterdir():
            if path.name not in named and (is_leftover(path) or path.name.startswith(("best_", "last_epoch"))):
                path.unlink(missing_ok=True)

    def save_state(self) -> None:
        if self.runner.is_main_process:
            atomic_write_json(self.state_path, {"format": STATE_FORMAT, "version": STATE_VERSION, **asdict(self.state)})
            for name in self._superseded:
                (self.checkpoint_dir / name).unlink(missing_ok=True)
        self._superseded = []

    @property
    def history(self) -> list[EpochRecord]:
        return [EpochRecord.from_dict(r) for r in self.state.history]

    # -- observers ----------------------------------------------------------------------
    def start_observers(self, observers: list[LoopObserver], context: RunContext) -> None:
        self.observers = observers
        for observer in observers:
            observer.on_run_start(context, self.history)

    def notify(self, event: str, *args: Any) -> None:
        """Tell every observer; one that raises is dropped with a warning - reporting never stops training."""
        for observer in list(self.observers):
            handler = getattr(observer, event, None)  # a plugin's observer need not subclass LoopObserver
            if handler is None:
                continue
            try:
                handler(*args)
            except Exception as exc:  # a plugin's reporter must not take the run down
                self.observers.remove(observer)
                logger.warning(
                    "[aac] observer %s raised in %s and is dropped for the rest of the run: %s: %s",
                    type(observer).__qualname__,
                    event,
                    type(exc).__name__,
                    exc,
                )

    # -- epochs -------------------------------------------------------------------------
    def record(
        self,
        phase: str,
        level_epoch: int,
        metric: float | None,
        started: float,
        step: float | None = None,
        train_loss: float | None = None,
        lr_scale: float = 1.0,
        level_end: str | None = None,
    ) -> EpochRecord:
        budget = None if metric is None else self.params.budget(metric, self.uncompressed_metric)
        record = EpochRecord(
            epoch=self.runner.cumulative_epochs,
            phase=phase,
            compression_rate=_rate_of(self.runner.controller),
            level_epoch=level_epoch,
            metric=metric,
            budget=budget,
            step=step,
            train_loss=train_loss,
            learning_rate_scale=lr_scale,
            seconds=round(time.perf_counter() - started, 3),
            level_end=level_end,
            learning_rate=self._learning_rate(phase),
        )
        self.state.history.append(record.to_dict())
        self.state.epochs = self.runner.cumulative_epochs
        self.notify("on_epoch_end", record)
        return record

    def _learning_rate(self, phase: str) -> float | None:
        """The optimizer's rate for a trained epoch's record (a probe or the validation before training used none)."""
        runner = self.runner
        if phase == PROBE or runner.cumulative_epochs == 0 or runner.optimizer is None:
            return None
        return runner.backend.learning_rate(runner.optimizer)

    def keep_if_better(self, key: str, record: EpochRecord) -> None:
        """Keep this epoch's model as the best for ``key`` if its metric beats the kept one."""
        assert record.metric is not None and record.budget is not None
        current = self.state.kept.get(key)
        if current is not None and not self.params.is_better(record.metric, current["metric"]):
            return
        # a name of its own (the record's place in the history): the file the saved state names stays intact
        name = f"best_{key}_{len(self.state.history):05d}{self.runner.backend.checkpoint_suffix}"
        self.runner.save_checkpoint(
            self.checkpoint_dir / name,
            with_training_state=False,
            info={"epoch": record.epoch, "metric": record.metric, "rate": record.compression_rate},
        )
        if current is not None:
            self._superseded.append(current["file"])
        self.state.kept[key] = asdict(SavedCheckpoint(name, record.metric, record.budget, record.epoch, record.compression_rate))

    def end_epoch(self) -> None:
        """Persist the training state after an epoch, then the state file that points at it."""
        previous = self.state.last_checkpoint
        if self.dump_checkpoints:
            name = f"last_epoch{self.runner.cumulative_epochs:05d}{self.runner.backend.checkpoint_suffix}"
            self.runner.save_checkpoint(self.checkpoint_dir / name, with_training_state=True, info={"epoch": self.runner.cumulative_epochs})
            self.state.last_checkpoint = name
        self.save_state()
        if previous and previous != self.state.last_checkpoint and self.runner.is_main_process:
            (self.checkpoint_dir / previous).unlink(missing_ok=True)

    def restore_training_state(self) -> None:
        """Resume: put weights, controller, optimizer and RNG back to the last finished epoch."""
        if self.state.last_checkpoint is None:
            raise CheckpointError(f"{self.state_path} has no training checkpoint to resume from (dump_checkpoints was off)")
        path = self.checkpoint_dir / self.state.last_checkpoint
        payload = self.runner.load_checkpoint(path, with_training_state=True)
        self._check_holds(path, payload, epoch=self.state.epochs)
        self.runner.cumulative_epochs = self.state.epochs

    def load_kept(self, key: str) -> SavedCheckpoint:
        kept = self.state.kept_checkpoints()[key]
        path = self.checkpoint_dir / kept.file
        payload = self.runner.load_checkpoint(path, with_training_state=False)
        self._check_holds(path, payload, epoch=kept.epoch, rate=kept.rate)
        return kept

    def _check_holds(self, path: Path, payload: dict[str, Any], epoch: int, rate: float | None = None) -> None:
        """The checkpoint is the one state.json describes (a user's load_checkpoint_fn gives nothing to check)."""
        if not payload:
            return
        info: dict[str, Any] = payload["info"] if isinstance(payload.get("info"), dict) else {}
        wanted = {"epoch": epoch} if rate is None else {"epoch": epoch, "rate": rate}
        found = {key: info.get(key) for key in wanted}
        if found != wanted:
            raise CheckpointError(
                f"{path} holds {found} but {self.state_path} says it holds {wanted}: the file was "
                f"replaced or the folder mixes two runs; {self._afresh}"
            )

    def cap_reached(self) -> bool:
        return self.runner.cumulative_epochs >= self.params.maximal_total_epochs


def _rate_of(controller: Any) -> float:
    """The controller's compression rate for the history; 0.0 for one without a rate (an early-exit run of a
    non-adaptive algorithm, or a controller built in code without the property). Other errors propagate."""
    try:
        return round(float(controller.compression_rate), 6)
    except (CompressionRateError, AttributeError, NotImplementedError):
        return 0.0


def fingerprint(
    mode: str, params: AccuracyAwareParams, uncompressed_metric: float, compression: Any = None, input_info: Any = None, model: Any = None
) -> dict[str, Any]:
    """What must not change between a run and its resumption: the loop's settings, the compression it
    searches and the model's structure.

    ``compression`` and ``input_info`` are the config's sections (JSON values), ``model`` the backend's
    :meth:`~aac.core.backend.Backend.model_structure`: a resumed run with another importance criterion,
    another input or a model of another width would mix two experiments (or fail deep in a weight load).
    """
    settings = {
        "mode": mode,
        "params": asdict(params),
        "uncompressed_metric": uncompressed_metric,
        "compression": compression,
        "input_info": input_info,
        "model": model,
    }
    stored: dict[str, Any] = json.loads(json.dumps(settings))  # as state.json will hold it (tuples become lists)
    return stored


def differences(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted path, old, new)`` for every leaf that differs between two JSON values."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            d
            for key in sorted(set(old) | set(new), key=str)
            for d in differences(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        ]
    nested = any(isinstance(v, (dict, list)) for v in [*(old if isinstance(old, list) else []), *(new if isinstance(new, list) else [])])
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and nested:
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if old == new else [(path or "$", old, new)]
