"""Every matrix product of a transformer block reads quantized operands (issue 14, item 5): functional
``F.linear`` on module weights, ``q @ k.transpose``, scaled-dot-product and ``nn.MultiheadAttention``."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from aac.core import create_compressed_model
from aac.quant.torch.algorithm import QuantizationAlgorithm
from aac.quant.torch.onnx_graph import PRODUCTS, products_reading_float

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

DIM, HEADS, TOKENS = 16, 2, 5


class VitBlock(nn.Module):
    """A ViT encoder block as torchvision writes it: nn.MultiheadAttention without attention weights, then an MLP."""

    def __init__(self) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(DIM)
        self.self_attention = nn.MultiheadAttention(DIM, HEADS, batch_first=True)
        self.ln_2 = nn.LayerNorm(DIM)
        self.mlp = nn.Sequential(nn.Linear(DIM, 2 * DIM), nn.GELU(), nn.Linear(2 * DIM, DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = x + y
        return x + self.mlp(self.ln_2(x))


class WindowAttention(nn.Module):
    """Swin's attention: F.linear on the weights of its own Linear modules and explicit q @ k^T."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, channels = x.shape
        qkv = F.linear(x, self.qkv.weight, self.qkv.bias).reshape(batch, tokens, 3, HEADS, channels // HEADS).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attention = (q * (channels // HEADS) ** -0.5) @ k.transpose(-2, -1)
        x = (attention.softmax(dim=-1) @ v).transpose(1, 2).reshape(batch, tokens, channels)
        return F.linear(x, self.proj.weight, self.proj.bias)


def window_attention(
    x: torch.Tensor, qkv_weight: torch.Tensor, qkv_bias: torch.Tensor, proj_weight: torch.Tensor, proj_bias: torch.Tensor
) -> torch.Tensor:
    """torchvision's shifted_window_attention in small: a function torch.fx does not trace into (fx.wrap)."""
    batch, tokens, channels = x.shape
    q, k, v = F.linear(x, qkv_weight, qkv_bias).reshape(batch, tokens, 3, HEADS, channels // HEADS).permute(2, 0, 3, 1, 4)
    attention = (q @ k.transpose(-2, -1)).softmax(dim=-1)
    return F.linear((attention @ v).transpose(1, 2).reshape(batch, tokens, channels), proj_weight, proj_bias)


torch.fx.wrap("window_attention")


class WrappedWindowAttention(WindowAttention):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return window_attention(x, self.qkv.weight, self.qkv.bias, self.proj.weight, self.proj.bias)


class TorchvisionSwinBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(DIM)
        self.attn = WrappedWindowAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.attn(self.norm1(x))


class SwinBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(DIM)
        self.attn = WindowAttention()
        self.norm2 = nn.LayerNorm(DIM)
        self.mlp = nn.Sequential(nn.Linear(DIM, 2 * DIM), nn.GELU(), nn.Linear(2 * DIM, DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SdpaBlock(nn.Module):
    """Attention through F.scaled_dot_product_attention with a causal mask."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.out = nn.Linear(DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, HEADS, DIM // HEADS).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(batch, tokens, DIM))


def compress(model: nn.Module, **section: Any) -> tuple[QuantizationAlgorithm, nn.Module]:
    torch.manual_seed(0)
    controller, model = create_compressed_model(
        model, {"input_info": {"sample_size": [2, TOKENS, DIM]}, "compression": {"algorithm": "quantization", **section}}
    )
    controller.initialize([torch.randn(4, TOKENS, DIM) for _ in range(3)])
    return controller, model


def count_products(path: Path) -> int:
    return sum(n.op_type in PRODUCTS for n in onnx.load(str(path)).graph.node)


@pytest.mark.parametrize("block", [VitBlock, SwinBlock, SdpaBlock, TorchvisionSwinBlock])
def test_every_product_reads_quantized_operands_in_onnx(block: type[nn.Module], tmp_path: Path) -> None:
    controller, model = compress(block())
    coverage = controller.functional.coverage()
    assert not coverage.float, coverage
    stats = controller.statistics()["quantization"].scalars
    assert stats["matmuls_float"] == 0 and stats["matmuls_quantized"] >= 4
    path = controller.export_model(tmp_path / "block.onnx")
    assert count_products(path) >= 4
    assert products_reading_float(path) == []
    x = torch.randn(3, TOKENS, DIM)
    model.eval()
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert np.abs(got - expected).max() < 2e-2 * np.abs(expected).max()


def test_functional_quantizers_train_and_round_trip(tmp_path: Path) -> None:
    controller, model = compress(SwinBlock())
    quantizers = model.attn.aac_functional_quantizers
    assert len(quantizers) >= 5  # input of qkv, q, k (transposed), probabilities, v, input of proj
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    before = {k: [p.detach().clone() for p in q.parameters()] for k, q in quantizers.items()}
    model.train()
    loss = model(torch.randn(2, TOKENS, DIM)).pow(2).mean()
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(a, b) for k, q in quantizers.items() for a, b in zip(before[k], q.parameters(), strict=True))
    state, weights = controller.get_state(), model.state_dict()
    fresh_model = SwinBlock()
    fresh, _ = create_compressed_model(
        fresh_model,
        {"input_info": {"sample_size": [2, TOKENS, DIM]}, "compression": {"algorithm": "quantization"}},
        compression_state=state,
    )
    fresh_model.load_state_dict(weights)
    model.eval()
    fresh_model.eval()
    x = torch.randn(2, TOKENS, DIM)
    assert torch.equal(fresh_model(x), model(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = controller.export_model(tmp_path / "swin.pt")
    assert torch.equal(torch.load(path, weights_only=False)(x), controller.strip()(x))


def test_excluded_attention_is_counted_not_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aac.quant"):
        controller, _ = compress(SwinBlock(), ignored_scopes=["attn"])
    coverage = controller.functional.coverage()
    assert coverage.float == () and len(coverage.excluded) >= 4
    assert "float" not in caplog.text


class Einsum(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return torch.einsum("btc,bsc->bts", y, y)


def test_float_products_are_named_in_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="aac.quant"):
        controller, _ = compress(Einsum())
    assert "einsum" in caplog.text and "stay in float" in caplog.text
    assert controller.statistics()["quantization"].scalars["matmuls_float"] == 1
