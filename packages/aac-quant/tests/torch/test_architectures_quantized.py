"""Issue 14's seven architecture patterns, quantized: every Conv/Gemm/MatMul of the exported QDQ ONNX reads
quantized operands, and onnxruntime reproduces the fake-quantized model.

The patterns live in aac-torch's testing models (aac-pruning's tests prune them), the check in aac-quant:
quantization and its backend alone, so it runs with aac-quant's torch tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from aac.core import create_compressed_model
from aac.quant.torch.onnx_graph import PRODUCTS, products_reading_float
from aac.torch.testing import models


@pytest.mark.parametrize("pattern", sorted(models.ARCHITECTURE_PATTERNS))
def test_every_product_of_the_pattern_is_quantized(pattern: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = {"input_info": {"sample_size": [2, 3, 8, 8]}, "compression": {"algorithm": "quantization"}}
    controller, model = create_compressed_model(models.ARCHITECTURE_PATTERNS[pattern](), config)
    controller.initialize([torch.randn(4, 3, 8, 8) for _ in range(3)])
    path = tmp_path / f"{pattern}.onnx"
    controller.export_model(path)

    assert sum(node.op_type in PRODUCTS for node in onnx.load(str(path)).graph.node) >= 2
    assert products_reading_float(path) == []
    x = torch.randn(3, 3, 8, 8)
    model.eval()
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert np.abs(got - expected).max() <= 2e-2 * np.abs(expected).max()
