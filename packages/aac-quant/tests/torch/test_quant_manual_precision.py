"""Manual mixed precision (``initializer.precision.bitwidth_per_scope``): NNCF's quantizer names and aac's,
the bit widths in the statistics and the state, and in the exported ONNX model (checked in onnxruntime)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from aac.core import create_compressed_model
from aac.core.errors import ConfigError
from aac.quant.testing_models import BasicBlock, ResNet
from aac.quant.torch.algorithm import QuantizationAlgorithm

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

SHAPE = {"sample_size": [2, 3, 32, 32]}
BITS = [
    [2, "ResNet/NNCFConv2d[conv1]/conv2d_0|WEIGHT"],  # NNCF's name of a weight
    [6, "/nncf_model_input_0|OUTPUT"],  # NNCF: the model input
    [4, "ResNet/ReLU[relu]/relu__0|OUTPUT"],  # NNCF: the stem's ReLU, through the max pooling to layer1.0.conv1
    [3, "fc|WEIGHT"],  # aac: a module path
    [5, "layer2.0.conv1|INPUT"],  # aac: a layer's input (shared with layer2.0.downsample.0)
    [4, "ResNet/Sequential[layer1]/BasicBlock[0]/NNCFBatchNorm2d[bn2]/batch_norm_0|OUTPUT"],  # an addition's input: float in aac
]


def compress(bits: list[list[Any]] = BITS, typed: bool = True, **section: Any) -> tuple[QuantizationAlgorithm, torch.nn.Module]:
    torch.manual_seed(0)
    precision: dict[str, Any] = {"bitwidth_per_scope": bits}
    if typed:
        precision["type"] = "manual"
    return create_compressed_model(
        ResNet(BasicBlock, (1, 1, 1, 1)),
        {"input_info": SHAPE, "compression": {"algorithm": "quantization", "initializer": {"precision": precision}, **section}},
    )


def bits_of(controller: QuantizationAlgorithm) -> dict[str, int]:
    return controller.bit_widths()


@pytest.mark.parametrize("typed", [True, False], ids=["type manual", "type omitted (NNCF)"])
def test_names_resolve_to_quantizers(typed: bool, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aac.quant"):
        controller, _ = compress(typed=typed)
    bits = bits_of(controller)
    assert bits["conv1.weight"] == 2 and bits["fc.weight"] == 3
    assert bits["input of conv1"] == 6 and bits["input of layer1.0.conv1"] == 4
    shared = next(s.quantizer for s in controller.activation_sites if "layer2.0.conv1" in s.consumers)
    assert shared.bits == 5 and len(next(s for s in controller.activation_sites if s.quantizer is shared).consumers) == 2
    named = {"conv1.weight", "fc.weight", "input of conv1", "input of layer1.0.conv1", shared.label}
    assert {b for label, b in bits.items() if label not in named} == {8}
    assert "1 bitwidth_per_scope entries name tensors aac keeps in float" in caplog.text and "bn2" in caplog.text
    statistics = controller.statistics()["quantization"]
    assert ("weights", 2, "symmetric", 1) in statistics.tables[0].rows
    assert statistics.scalars["bit_complexity_ratio"] > 1.0  # conv1 and fc compute in fewer bits


def test_unknown_names_are_config_problems() -> None:
    with pytest.raises(ConfigError) as info:
        compress([[4, "ResNet/NNCFConv2d[conv9]/conv2d_0|WEIGHT"], [4, "conv1"], [4, "ResNet/ReLU[relu]/relu__7|OUTPUT"]])
    assert [p.path for p in info.value.problems] == [f"$.compression.initializer.precision.bitwidth_per_scope[{i}]" for i in range(3)]
    assert "names no operation or layer" in str(info.value) and "|WEIGHT" in str(info.value)


def test_validate_scopes_false_warns_instead(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aac"):
        controller, _ = compress([[4, "nothing|WEIGHT"], [2, "fc|WEIGHT"]], validate_scopes=False)
    assert bits_of(controller)["fc.weight"] == 2 and "nothing|WEIGHT" in caplog.text


def test_bits_survive_the_state_round_trip() -> None:
    controller, model = compress()
    controller.initialize([torch.randn(4, 3, 32, 32) for _ in range(2)])
    state = controller.get_state()
    fresh_model = ResNet(BasicBlock, (1, 1, 1, 1))
    fresh, _ = create_compressed_model(
        fresh_model, {"input_info": SHAPE, "compression": {"algorithm": "quantization"}}, compression_state=state
    )
    fresh_model.load_state_dict(model.state_dict())
    assert bits_of(fresh) == bits_of(controller)
    model.eval()
    fresh_model.eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(fresh_model(x), model(x))


# -- ONNX ----------------------------------------------------------------------------------------------
def onnx_products(path: Path, x: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """For every Conv/Gemm/MatMul in graph order: the bit width of its input grid (from the clip in front of the
    input's QuantizeLinear; none: the full 8 bits) and the integers onnxruntime quantizes its weight to."""
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    constants.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node if n.op_type == "Constant"})
    producers = {output: node for node in graph.node for output in node.output}
    products, weight_ints = [], []
    for node in graph.node:
        if node.op_type in ("Conv", "Gemm", "MatMul"):
            activation, weight = (producers[i] for i in node.input[:2])
            assert activation.op_type == weight.op_type == "DequantizeLinear", node.name
            quantize = producers[activation.input[0]]
            clip = producers.get(quantize.input[0])
            levels = 256
            if clip is not None and clip.op_type == "Clip":
                step = float(constants[quantize.input[1]])
                levels = int(round(float(constants[clip.input[2]] - constants[clip.input[1]]) / step)) + 1
            products.append(math.ceil(math.log2(levels)))
            weight_ints.append(weight.input[0])
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in weight_ints)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    values = session.run(weight_ints, {session.get_inputs()[0].name: x})
    return list(zip(products, values, strict=True))


def test_onnx_keeps_each_bit_width(tmp_path: Path) -> None:
    """Activations: the clip in front of QuantizeLinear spans the grid. Weights are stored on their grid (that clip
    is a no-op the exporter folds): their int8 values stay within the narrow range of their bit width."""
    controller, model = compress(activations={"mode": "asymmetric"})
    controller.initialize([torch.randn(4, 3, 32, 32) for _ in range(2)])
    path = controller.export_model(tmp_path / "mixed.onnx")
    layers = [n.layer for n in controller.prepared.graph if n.layer in controller.weight_quantizers]
    sites = {c: s.quantizer for s in controller.activation_sites for c in s.consumers}
    x = torch.randn(3, 3, 32, 32)
    products = onnx_products(path, x.numpy())
    assert len(products) == len(layers)
    for layer, (input_bits, weight_ints) in zip(layers, products, strict=True):
        assert input_bits == sites[layer].bits, layer
        bits = controller.weight_quantizers[layer].bits
        assert np.abs(weight_ints.astype(int)).max() <= 2 ** (bits - 1) - 1, layer
        if bits == 8:
            assert np.abs(weight_ints.astype(int)).max() > 3, layer  # not a low-bit grid by accident
    assert set(np.unique(products[0][1])) <= {-1, 0, 1}  # conv1: 2 bits, three levels
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    model.eval()
    with torch.no_grad():
        want = model(x).numpy()
    assert np.abs(got - want).max() < 1e-3 * max(1.0, np.abs(want).max())
