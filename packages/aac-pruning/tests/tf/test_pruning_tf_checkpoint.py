"""A pruned Keras model and its controller survive a TFBackend checkpoint (.npz) into fresh objects."""

import keras
import numpy as np

from aac.core import create_compressed_model
from aac.tf.backend import TFBackend
from aac.tf.testing import resnet_like

CONFIG = {
    "input_info": {"sample_size": [1, 8, 8, 3]},
    "compression": {"algorithm": "filter_pruning", "params": {"prune_downsample_convs": True}},
}


def _compiled(model):
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_checkpoint_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 8, 8, 3)).astype("float32"), rng.integers(0, 10, 16)
    backend = TFBackend()
    model = _compiled(resnet_like())
    controller, model = create_compressed_model(model, CONFIG)
    controller.compression_rate = 0.6
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # trains the kept filters and builds the optimizer's slots
    backend.save_checkpoint(
        tmp_path / "run.npz",
        {
            "model": backend.model_state(model),
            "compression_state": controller.get_state(),
            "optimizer": backend.optimizer_state(model.optimizer),
            "rng": backend.rng_state(),
        },
    )

    payload = TFBackend().load_checkpoint(tmp_path / "run.npz")
    restored = _compiled(resnet_like())  # other initial weights, a fresh optimizer
    restored_controller, restored = create_compressed_model(restored, CONFIG, compression_state=payload["compression_state"])
    fresh = TFBackend()
    fresh.bind(restored)
    fresh.load_model_state(restored, payload["model"])
    fresh.load_optimizer_state(restored.optimizer, payload["optimizer"])

    assert restored_controller.compression_rate == controller.compression_rate
    assert all(np.array_equal(a, b) for a, b in zip(restored_controller._read_masks(), controller._read_masks(), strict=True))
    np.testing.assert_allclose(restored(x, training=False), model(x, training=False), atol=1e-6)
    np.testing.assert_allclose(restored_controller.strip()(x), controller.strip()(x), atol=1e-6)
    assert all(np.allclose(a.numpy(), b.numpy()) for a, b in zip(restored.optimizer.variables, model.optimizer.variables, strict=True))
