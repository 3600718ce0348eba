"""TensorFlow/Keras part of filter pruning: masks as aac-tf weight transforms, physical removal by rebuilding the model."""

try:
    import keras  # noqa: F401

    import aac.tf  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError('filter_pruning for Keras models needs aac-tf: pip install "aac-pruning[tf]"') from exc
