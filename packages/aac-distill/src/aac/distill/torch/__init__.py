"""PyTorch part of knowledge distillation: the teacher copy, the loss and the controller."""

try:
    import aac.torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError('knowledge_distillation for PyTorch models needs aac-torch: pip install "aac-distill[torch]"') from exc
