"""aac-torch's plugin: registers the PyTorch backend. Importing it does not import torch."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from aac.core.hookspecs import hookimpl
from aac.core.specs import BackendSpec


def claims(model: Any) -> bool:
    """True for a ``torch.nn.Module``; torch is only consulted if the caller already imported it."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


@hookimpl
def aac_backends() -> Iterable[BackendSpec]:
    return [
        BackendSpec(
            name="torch",
            claims=claims,
            factory="aac.torch.backend:TorchBackend",
            package="aac-torch",
            description="torch.nn.Module: torch.fx graph, torch.save checkpoints, ONNX export",
        )
    ]
