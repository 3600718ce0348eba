"""knowledge_distillation alone on PyTorch: the loss is that of the latest training pass, and the teacher
runs only for training passes. Mixed with the other algorithms: tests/integration/torch/test_distill_torch.py."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn import functional as F

from aac.core import create_compressed_model
from aac.distill.torch.algorithm import KnowledgeDistillation
from aac.torch.testing.digits import DigitsCNN


def compress(section: dict) -> tuple[torch.nn.Module, KnowledgeDistillation, torch.nn.Module]:
    """(the model before, the controller, the distilled model)."""
    torch.manual_seed(0)
    model = DigitsCNN(width=8)
    original = copy.deepcopy(model)
    controller, compressed = create_compressed_model(model, {"input_info": {"sample_size": [1, 1, 8, 8]}, "compression": section})
    assert isinstance(controller, KnowledgeDistillation)
    return original, controller, compressed


@pytest.mark.parametrize("kd", [{"type": "softmax", "temperature": 3.0, "scale": 0.5}, {"type": "mse", "scale": 2.0}])
def test_the_loss_is_that_of_the_latest_training_pass(kd):
    original, controller, model = compress({"algorithm": "knowledge_distillation", **kd})
    assert controller.loss() == 0.0  # before any training pass
    with torch.no_grad():
        model.fc.weight.mul_(0.5)  # the student moves away from the teacher
    x = torch.rand(6, 1, 8, 8)
    student = model(x)
    with torch.no_grad():
        teacher = original.train()(x)
    if kd["type"] == "softmax":
        t = kd["temperature"]
        expected = kd["scale"] * t * t * -(F.softmax(teacher / t, 1) * F.log_softmax(student / t, 1)).sum(1).mean()
    else:
        expected = kd["scale"] * F.mse_loss(student, teacher)
    loss = controller.loss()
    assert loss.requires_grad and float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    loss.backward()
    assert model.fc.weight.grad is not None and original.fc.weight.grad is None
    assert not any(p.requires_grad for p in controller.teacher.parameters())


def test_the_teacher_runs_only_for_training_passes():
    _, controller, model = compress({"algorithm": "knowledge_distillation", "type": "mse"})
    calls = []
    controller.teacher.register_forward_hook(lambda *args: calls.append(1))
    model.eval()
    model(torch.rand(2, 1, 8, 8))
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 1, 8, 8))
    assert calls == [] and controller.loss() == 0.0
    model(torch.rand(2, 1, 8, 8))
    assert calls == [1]
