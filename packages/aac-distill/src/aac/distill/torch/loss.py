"""The distillation loss between a student's outputs and the teacher's, whatever the output's structure.

A model may return a tensor, or tuples, lists and dicts of them. Both structures are flattened in the
same order and paired position by position; a student output enters the loss when it is a floating
tensor that requires gradients (a prediction, not a label or an index it passes through), as in NNCF:

* ``mse``: ``scale * mean((student - teacher) ** 2)`` over outputs with a batch axis (two or more dimensions);
* ``softmax``: ``scale * T**2 * mean over the batch of -sum(softmax(teacher / T) * log_softmax(student / T))``
  over two-dimensional outputs (batch, classes); Hinton et al.'s ``T**2`` keeps the gradient's size
  independent of the temperature. NNCF's expression (a mean over batch and classes, times the number
  of classes) is the same number.

The pairs are summed. Outputs that fit neither rule are skipped; when none fits, the loss is 0 and a
warning says why, once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch.nn import functional as F

from aac.core.api import CompressionLoss
from aac.distill.settings import DistillationSettings

logger = logging.getLogger("aac.distill")


def tensors(output: Any) -> Iterator[Any]:
    """Every leaf of a nested output (tensors and anything else), in a fixed order."""
    if isinstance(output, dict):
        for key in output:
            yield from tensors(output[key])
    elif isinstance(output, (list, tuple)):
        for item in output:
            yield from tensors(item)
    else:
        yield output


def _pair_loss(settings: DistillationSettings, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor | None:
    if student.shape != teacher.shape:
        return None
    if settings.type == "mse":
        return F.mse_loss(student, teacher) if student.dim() >= 2 else None
    if student.dim() != 2:
        return None
    t = settings.temperature
    cross_entropy = -(F.softmax(teacher / t, dim=1) * F.log_softmax(student / t, dim=1)).sum(dim=1).mean()
    return cross_entropy * t * t


class DistillationLoss(CompressionLoss):
    """``controller.loss()`` of knowledge distillation: the loss of the latest training forward pass.

    The forward hook (:mod:`aac.distill.torch.algorithm`) hands each training pass's outputs to
    :meth:`record`; the value stays until the next pass (NNCF's behaviour), and is ``0.0`` before the first.
    """

    def __init__(self, settings: DistillationSettings) -> None:
        self.settings = settings
        self._value: Any = 0.0
        self._warned = False

    def record(self, student_output: Any, teacher_output: Any) -> None:
        pairs = [
            (s, t)
            for s, t in zip(tensors(student_output), tensors(teacher_output), strict=False)
            if isinstance(s, torch.Tensor) and isinstance(t, torch.Tensor) and s.is_floating_point() and s.requires_grad
        ]
        terms = [term for s, t in pairs if (term := _pair_loss(self.settings, s, t.to(s.dtype))) is not None]
        if not terms and not self._warned:
            self._warned = True
            shapes = [tuple(s.shape) for s, _ in pairs]
            logger.warning(
                "[aac] knowledge_distillation (type '%s') found no output to distil: outputs that require grad have "
                "shapes %s; 'softmax' needs (batch, classes) outputs, 'mse' a batch axis",
                self.settings.type,
                shapes,
            )
        self._value = self.settings.scale * torch.stack(terms).sum() if terms else 0.0

    def forward(self) -> Any:
        return self._value

    def statistics(self) -> dict[str, float]:
        value = self._value
        return {"knowledge_distillation_loss": float(value.detach() if isinstance(value, torch.Tensor) else value)}
