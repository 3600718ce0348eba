"""quantization with filter_pruning on a functional Keras model: in both config orders strip() removes the pruned
filters physically, the per-channel weight quantizers follow the cut (``WeightTransform.select_channels``), the
stripped model computes what the compressed one does and exports to ``.keras``."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

import aac.quant.tf  # noqa: F401  (registers QuantizeDequantize for loading the .keras file)
from aac.core import CompositeController, create_compressed_model
from aac.pruning.tf.strip import parameter_count
from aac.quant.algorithm import QuantizationError
from aac.quant.tf.quantizers import QuantizeDequantize, TFFakeQuantizer
from aac.tf.models import iter_layers
from aac.tf.testing import resnet_like
from aac.tf.transforms import Mask, has_transforms, transforms_of

QUANT = {
    "algorithm": "quantization",
    "weights": {"per_channel": True},
    "initializer": {"range": {"num_init_samples": 16}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
}
PRUNING = {"algorithm": "filter_pruning", "params": {"prune_downsample_convs": True}}
SHAPE = (1, 8, 8, 3)


def _sample(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, *SHAPE[1:])).astype("float32")


@pytest.mark.parametrize("order", ["pruning_first", "quantization_first"])
def test_both_orders_strip_to_a_smaller_quantized_model(order: str, tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    model = resnet_like()
    original_parameters = parameter_count(model)
    sections = [PRUNING, QUANT] if order == "pruning_first" else [QUANT, PRUNING]
    controller, compressed = create_compressed_model(model, {"input_info": {"sample_size": list(SHAPE)}, "compression": sections})
    assert isinstance(controller, CompositeController)
    quant = next(c for c in controller.children if c.name == "quantization")
    pruning = next(c for c in controller.children if c.name == "filter_pruning")
    x = _sample(16)
    controller.initialize(x)
    pruning.compression_rate = 0.5
    kinds = [type(t) for t in transforms_of(compressed.get_layer("s1b0_a_conv"), "kernel")]
    assert kinds == ([Mask, TFFakeQuantizer] if order == "pruning_first" else [TFFakeQuantizer, Mask])
    expected = compressed(x, training=False).numpy()

    stripped = controller.strip()
    assert not has_transforms(stripped) and has_transforms(compressed)
    conv = stripped.get_layer("s1b0_a_conv")
    assert conv.filters == 16 and tuple(conv.kernel.shape) == (3, 3, 16, 16)  # 32 -> 16 filters
    assert parameter_count(stripped) < original_parameters
    assert any(isinstance(layer, QuantizeDequantize) for _, layer in iter_layers(stripped))
    # the kept filters' weights lie on their own (cut) per-channel grids
    quantizer = quant.weight_quantizers["s1b0_a_conv"]
    step, zero, _ = quantizer.step_and_zero_numpy()
    kept = np.flatnonzero(transforms_of(compressed.get_layer("s1b0_a_conv"), "kernel")[kinds.index(Mask)].numpy().ravel())
    levels = conv.kernel.numpy() / step[kept]
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)

    # equal up to an activation rounding flipped by a different summation order: within one quantization step
    tolerance = max(float(np.max(site.quantizer.step_and_zero_numpy()[0])) for site in quant.activation_sites)
    actual = stripped(x, training=False).numpy()
    np.testing.assert_allclose(actual, expected, atol=tolerance)
    assert np.mean(np.isclose(actual, expected, atol=1e-4)) > 0.9

    loaded = keras.saving.load_model(controller.export_model(tmp_path / f"{order}.keras"), compile=False)
    np.testing.assert_allclose(loaded(x, training=False), actual, atol=1e-5)
    assert loaded.get_layer("s1b0_a_conv").filters == 16


@pytest.mark.parametrize("order", ["pruning_first", "quantization_first"])
def test_per_channel_activation_quantizers_cannot_follow_removed_channels(order: str) -> None:
    quant = {**QUANT, "activations": {"per_channel": True}}
    sections = [PRUNING, quant] if order == "pruning_first" else [quant, PRUNING]
    controller, _ = create_compressed_model(resnet_like(), {"input_info": {"sample_size": list(SHAPE)}, "compression": sections})
    controller.initialize(_sample(16))
    next(c for c in controller.children if c.name == "filter_pruning").compression_rate = 0.5
    with pytest.raises(QuantizationError, match="activation quantizers do not follow filter_pruning's removal of channels"):
        controller.strip()
