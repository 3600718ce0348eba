"""TensorBoard logging through ``tf.summary``: the writer the TensorFlow backend gives the loops.

Core's observers need ``add_scalar(tag, value, step)`` and ``flush()``; :class:`SummaryWriter` provides
them (plus ``add_text``) on top of ``tf.summary.create_file_writer``. It writes with the low-level
``tf.summary.write`` and the plugin metadata TensorBoard's own ``scalar``/``text`` summaries attach,
because ``tf.summary.scalar`` and ``tf.summary.text`` are implemented by the ``tensorboard`` package
(TensorFlow raises ``TBNotInstalledError`` without it, and TF >= 2.21 no longer depends on it). So the
event files are the ones ``tf.summary.scalar`` would write, and only *viewing* them needs ``tensorboard``
(:func:`tensorboard_note` says so once, at the first flush, when the run's console is set up).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import tensorflow as tf

logger = logging.getLogger("aac.tf")

#: TensorBoard's plugin names for scalar and text summaries (their plugin data at version 0 is empty)
_SCALARS, _TEXT = "scalars", "text"
_noted = False


def _metadata(plugin: str) -> Any:
    return tf.compat.v1.SummaryMetadata(plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name=plugin))


def _tensorboard_installed() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def tensorboard_note(log_dir: str | Path) -> None:
    """Log once per process, when ``tensorboard`` is not installed, where the event files are and how to view them."""
    global _noted
    if _noted or _tensorboard_installed():
        return
    _noted = True
    logger.info(
        "[aac] TensorBoard event files are written to %s; to view them: pip install tensorboard "
        "(or 'aac-tf[tensorboard]') and run tensorboard --logdir %s",
        log_dir,
        log_dir,
    )


class SummaryWriter:
    """A ``tf.summary`` file writer with the ``add_scalar`` interface aac's observers use (no ``tensorboard`` needed)."""

    def __init__(self, log_dir: str | Path) -> None:
        self.log_dir = str(log_dir)
        Path(self.log_dir).mkdir(parents=True, exist_ok=True)
        with tf.init_scope():  # eager even if created while a tf.function is being traced
            self._writer = tf.summary.create_file_writer(self.log_dir)
        self._scalar, self._text = _metadata(_SCALARS), _metadata(_TEXT)

    def _write(self, tag: str, value: Any, step: int, metadata: Any) -> None:
        tf.summary.write(tag, value, step=int(step), metadata=metadata)

    def add_scalar(self, tag: str, value: Any, step: int) -> None:
        with tf.init_scope(), self._writer.as_default():
            self._write(tag, tf.constant(float(value), tf.float32), step, self._scalar)

    def add_scalars(self, values: dict[str, float], step: int, prefix: str = "") -> None:
        with tf.init_scope(), self._writer.as_default():
            for tag, value in values.items():
                self._write(f"{prefix}{tag}", tf.constant(float(value), tf.float32), step, self._scalar)

    def add_text(self, tag: str, text: str, step: int) -> None:
        with tf.init_scope(), self._writer.as_default():
            self._write(tag, tf.constant(str(text)), step, self._text)

    def flush(self) -> None:
        self._writer.flush()
        tensorboard_note(self.log_dir)

    def close(self) -> None:
        self._writer.close()
