"""TensorBoard logging through ``tf.summary``: the writer the TensorFlow backend gives the loops.

Core's observers need ``add_scalar(tag, value, step)`` and ``flush()``; :class:`SummaryWriter` provides
them (plus ``add_text``) on top of ``tf.summary.create_file_writer``, so event files are written by
TensorFlow itself and need no torch and no ``tensorboard`` package (only viewing them does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tensorflow as tf


class SummaryWriter:
    """A ``tf.summary`` file writer with the ``add_scalar`` interface aac's observers use."""

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = str(log_dir)
        Path(self.log_dir).mkdir(parents=True, exist_ok=True)
        with tf.init_scope():  # eager even if created while a tf.function is being traced
            self._writer = tf.summary.create_file_writer(self.log_dir)

    def add_scalar(self, tag: str, value: Any, step: int) -> None:
        with tf.init_scope(), self._writer.as_default():
            tf.summary.scalar(tag, float(value), step=int(step))

    def add_scalars(self, values: dict[str, float], step: int, prefix: str = "") -> None:
        with tf.init_scope(), self._writer.as_default():
            for tag, value in values.items():
                tf.summary.scalar(f"{prefix}{tag}", float(value), step=int(step))

    def add_text(self, tag: str, text: str, step: int) -> None:
        with tf.init_scope(), self._writer.as_default():
            tf.summary.text(tag, text, step=int(step))

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
