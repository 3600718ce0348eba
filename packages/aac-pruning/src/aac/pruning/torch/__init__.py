"""PyTorch part of filter pruning: masks on the user's modules and physical removal at strip time."""

try:
    import aac.torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError('filter_pruning for PyTorch models needs aac-torch: pip install "aac-pruning[torch]"') from exc
