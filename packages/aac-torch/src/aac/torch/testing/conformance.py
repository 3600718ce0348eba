"""The ``framework`` fixture value of aac-core's conformance suite (:mod:`aac.core.testing`) for PyTorch."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aac.torch.testing.models import ResNet


class TorchHarness:
    """A small residual network (convolutions, batch norms, a linear head), its data, ONNX export read back by onnxruntime."""

    export_suffix = ".onnx"
    #: the legacy exporter: the suite checks that export works, not the dynamo exporter (aac-pruning's tests do)
    export_options: Mapping[str, Any] = {"dynamo": False}

    def model(self) -> nn.Module:
        torch.manual_seed(0)
        return ResNet().eval()

    def input_info(self) -> Mapping[str, Any]:
        return {"sample_size": [1, 3, 8, 8]}

    def batches(self) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(1)
        return [torch.randn(4, 3, 8, 8, generator=generator) for _ in range(2)]

    @torch.no_grad()
    def outputs(self, model: nn.Module, batch: torch.Tensor) -> np.ndarray:
        model.eval()
        result: torch.Tensor = model(batch)
        return result.detach().cpu().numpy()

    def exported_outputs(self, path: Path, batch: torch.Tensor) -> np.ndarray:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path))
        (result,) = session.run(None, {session.get_inputs()[0].name: batch.numpy()})
        return np.asarray(result)
