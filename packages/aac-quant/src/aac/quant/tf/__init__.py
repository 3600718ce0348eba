"""The TensorFlow/Keras part of ``quantization``: fake quantizers as aac-tf weight transforms and input wrappers."""

try:
    import keras  # noqa: F401

    import aac.tf  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError('quantization for Keras models needs aac-tf: pip install "aac-quant[tf]"') from exc
