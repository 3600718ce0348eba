"""strip() and export_model(): QuantizeLinear/DequantizeLinear that onnxruntime runs like the torch model."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from aac.core import create_compressed_model
from aac.quant.torch.algorithm import INPUT_QUANTIZER, QuantizationAlgorithm
from aac.quant.torch.quantizers import FakeQuantizer, QuantizedConv2d, QuantizeDequantize

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.down = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn(self.conv1(x)))
        x = F.relu(self.conv2(x)) + self.down(x)
        x = F.max_pool2d(x, 2)
        return self.fc(torch.flatten(x, 1))


CASES: dict[str, dict[str, Any]] = {
    "default": {},
    "per_channel": {"weights": {"per_channel": True}, "activations": {"per_channel": True}},
    "mixed_preset": {"preset": "mixed"},
    "low_bits": {"weights": {"bits": 4, "per_channel": True}, "activations": {"bits": 6}},
    "asymmetric_weights": {"weights": {"mode": "asymmetric"}, "activations": {"mode": "asymmetric", "per_channel": True}},
}


def compressed(section: dict[str, Any]) -> tuple[QuantizationAlgorithm, nn.Module]:
    torch.manual_seed(0)
    controller, model = create_compressed_model(
        Net(), {"input_info": {"sample_size": [1, 3, 8, 8]}, "compression": {"algorithm": "quantization", **section}}
    )
    data = [(torch.randn(8, 3, 8, 8), None) for _ in range(4)]
    controller.initialize(data)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for x, _ in data:  # a few steps so that the learned ranges move away from their initial values
        loss = model(x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return controller, model


def smallest_step(controller: QuantizationAlgorithm) -> float:
    return min(float(q.step_and_zero()[0].detach().min()) for _, _, q in controller.quantizers())


def storage_types(graph: Any) -> set[str]:
    """The zero-point types of the QuantizeLinear nodes: int8 for symmetric grids, uint8 for the others."""
    from onnx import numpy_helper

    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return {str(constants[n.input[2]].dtype) for n in graph.node if n.op_type == "QuantizeLinear" and len(n.input) > 2}


def run_onnx(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


@pytest.mark.parametrize("case", list(CASES))
def test_onnx_qdq_matches_the_fake_quantized_model(case: str, tmp_path: Path) -> None:
    controller, model = compressed(CASES[case])
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        expected = model(x).numpy()
    path = controller.export_model(tmp_path / "m.onnx")
    graph = onnx.load(str(path)).graph
    ops = [n.op_type for n in graph.node]
    quantizers = len(controller.weight_quantizers) + len(controller.activation_sites)
    assert ops.count("QuantizeLinear") == quantizers and ops.count("DequantizeLinear") == quantizers
    producers = {o: n for n in graph.node for o in n.output}
    for node in graph.node:
        if node.op_type == "DequantizeLinear":  # every DQ reads a Q directly: a plain QDQ pair
            assert producers[node.input[0]].op_type == "QuantizeLinear"
    kinds = storage_types(graph)  # symmetric signed grids are int8, unsigned and shifted ones uint8
    assert kinds <= {"int8", "uint8"}
    if case in ("default", "mixed_preset"):
        assert kinds == {"int8", "uint8"}  # int8 weights; the inputs after ReLU are unsigned
    actual = run_onnx(path, x)
    assert np.abs(actual - expected).max() <= smallest_step(controller)
    bigger = torch.randn(7, 3, 8, 8)  # the batch dimension is dynamic
    with torch.no_grad():
        assert np.abs(run_onnx(path, bigger) - model(bigger).numpy()).max() <= smallest_step(controller)


def test_torchscript_exporter_writes_the_same_qdq(tmp_path: Path) -> None:
    controller, model = compressed(CASES["low_bits"])
    x = torch.randn(2, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = controller.export_model(tmp_path / "legacy.onnx", dynamo=False)
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    with torch.no_grad():
        assert np.abs(run_onnx(path, x) - model(x).numpy()).max() <= smallest_step(controller)


def test_strip_gives_a_plain_model_computing_the_same() -> None:
    controller, model = compressed(CASES["per_channel"])
    x = torch.randn(3, 3, 8, 8)
    stripped = controller.strip()
    assert not any(isinstance(m, FakeQuantizer) for m in stripped.modules())
    assert not any(parametrize.is_parametrized(m) for m in stripped.modules())
    assert isinstance(getattr(stripped.conv1, INPUT_QUANTIZER), QuantizeDequantize)
    assert type(stripped.conv1) is QuantizedConv2d and isinstance(stripped.conv1.aac_weight_quantizer, QuantizeDequantize)
    assert set(dict(stripped.named_parameters())) == {n for n, _ in Net().named_parameters()}
    step = float(controller.weight_quantizers["conv1"].step_and_zero()[0].detach()[0])
    grid = stripped.conv1._parameters["weight"][0].detach() / step
    assert torch.allclose(grid, grid.round(), atol=1e-3)  # stored weights are exactly on the grid
    with torch.no_grad():
        assert torch.allclose(stripped(x), model(x), atol=1e-6)
    assert any(isinstance(m, FakeQuantizer) for m in model.modules())  # the live model keeps training
    assert parametrize.is_parametrized(model.conv1)


def test_pt_export(tmp_path: Path) -> None:
    controller, model = compressed({})
    path = controller.export_model(tmp_path / "m.pt")
    loaded = torch.load(path, weights_only=False)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-6)
