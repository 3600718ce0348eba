"""TensorFlow/Keras part of filter pruning: masks as aac-tf weight transforms, physical removal by rebuilding the model."""

try:
    import aac.tf  # noqa: F401 - without TensorFlow, its ImportError says what to install
except ModuleNotFoundError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        'filter_pruning for Keras models needs aac-tf: pip install "aac-pruning[tf]" next to your TensorFlow (or add "aac-tf[cpu]")'
    ) from exc
