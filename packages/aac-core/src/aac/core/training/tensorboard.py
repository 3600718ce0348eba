"""A minimal TensorBoard scalar writer that needs only the ``tensorboard`` package (no torch, no TF).

Backends return it from ``create_tensorboard_writer`` unless the user passes a writer of their own
(anything with ``add_scalar(tag, value, step)`` works, e.g. ``torch.utils.tensorboard.SummaryWriter``).
"""

from __future__ import annotations

import time
from pathlib import Path


class ScalarEventWriter:
    """Writes real TensorBoard event files with scalar summaries."""

    def __init__(self, log_dir: str | Path) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._event, self._summary = event_pb2, summary_pb2
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self._writer = EventFileWriter(str(log_dir))
        self.log_dir = str(log_dir)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        summary = self._summary.Summary(value=[self._summary.Summary.Value(tag=tag, simple_value=float(value))])
        self._writer.add_event(self._event.Event(summary=summary, step=int(step), wall_time=time.time()))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def create_scalar_writer(log_dir: str | Path) -> ScalarEventWriter | None:
    """A writer for ``log_dir``, or None when the tensorboard package is not installed."""
    try:
        return ScalarEventWriter(log_dir)
    except ImportError:
        return None
