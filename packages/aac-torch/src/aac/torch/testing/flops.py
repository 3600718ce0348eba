"""FLOPs of a forward pass as PyTorch itself counts them: the reference aac's cost model is checked against.

``torch.utils.flop_counter`` counts what the dispatcher runs: matrix products and convolutions, two
FLOPs per multiply-add. Two settings make it see every product: gradients on (``nn.MultiheadAttention``'s
inference fast path is one fused kernel it does not know) and the math backend of scaled dot-product
attention (the fused CPU kernel is not counted either).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


def measured_flops(model: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs of ``model(*inputs)`` in eval mode (training flags are restored)."""
    training = {name: m.training for name, m in model.named_modules()}
    model.eval()
    try:
        with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            model(*inputs)
    finally:
        for name, module in model.named_modules():
            module.training = training[name]
    return int(counter.get_total_flops())
