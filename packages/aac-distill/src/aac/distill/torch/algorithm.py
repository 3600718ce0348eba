"""``knowledge_distillation`` for PyTorch: the teacher runs beside every training forward pass of the model.

A forward hook on the user's model runs the teacher (:func:`~aac.distill.torch.teacher.uncompressed_copy`)
on the same inputs, without gradients, whenever the model runs in training mode with gradients on,
and hands both outputs to the loss. Validation, batch-norm adaptation and the adaptive loop's probes
(evaluation mode or no gradients) never run the teacher. The teacher follows the model's mode (NNCF
runs it in training mode, which is the model's mode whenever the hook computes a loss) and its device.

Copies of the model (``strip()``, ``copy.deepcopy``, pickling) get an inert hook without the teacher,
and ``strip()`` removes it: an exported model computes exactly what the model computes.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from aac.core.api import CompressionScheduler
from aac.core.config import AlgorithmSection, Config
from aac.distill.settings import DistillationSettings
from aac.distill.torch.loss import DistillationLoss
from aac.distill.torch.teacher import uncompressed_copy
from aac.torch.algorithm import TorchCompressionAlgorithm
from aac.torch.tracing import TorchModel


class TeacherHook:
    """Forward hook (with keyword arguments) of the model: runs the teacher and records the loss."""

    def __init__(self, teacher: nn.Module | None, loss: DistillationLoss | None) -> None:
        self.teacher = teacher
        self.loss = loss
        self._device: torch.device | None = None

    def __call__(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        if self.teacher is None or self.loss is None or not (module.training and torch.is_grad_enabled()):
            return
        device = next((p.device for p in module.parameters()), None)
        if device is not None and device != self._device:
            self.teacher.to(device)
            self._device = device
        self.teacher.train(module.training)
        with torch.no_grad():
            teacher_output = self.teacher(*args, **kwargs)
        self.loss.record(output, teacher_output)

    def __deepcopy__(self, memo: dict[int, Any]) -> TeacherHook:
        return TeacherHook(None, None)  # a copy of the model must not carry (and run) a copy of the teacher

    def __reduce__(self) -> tuple[type[TeacherHook], tuple[None, None]]:
        return TeacherHook, (None, None)


class KnowledgeDistillation(TorchCompressionAlgorithm):
    """A loss from the uncompressed model; no level of its own (not adaptive), fully compressed from the start."""

    name: ClassVar[str] = "knowledge_distillation"
    adaptive: ClassVar[bool] = False

    def __init__(self, prepared: TorchModel, section: AlgorithmSection) -> None:
        super().__init__(prepared, section)
        self.settings = DistillationSettings.from_section(section.raw, section.path)
        self.teacher = uncompressed_copy(self.model)
        self._scheduler = CompressionScheduler()
        self._loss = DistillationLoss(self.settings)
        self.model.register_forward_hook(TeacherHook(self.teacher, self._loss), with_kwargs=True)

    def _strip(self, model: nn.Module) -> nn.Module:
        """Remove the (inert) teacher hook that the copy of the model carries."""
        for key in [key for key, hook in model._forward_hooks.items() if isinstance(hook, TeacherHook)]:
            del model._forward_hooks[key]
            model._forward_hooks_with_kwargs.pop(key, None)
        return model


def create(prepared: TorchModel, section: AlgorithmSection, config: Config) -> KnowledgeDistillation:
    """Factory registered for ``knowledge_distillation`` on the ``torch`` framework."""
    return KnowledgeDistillation(prepared, section)
