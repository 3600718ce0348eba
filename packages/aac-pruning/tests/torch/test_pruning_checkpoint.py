"""A pruned model and its controller survive a TorchBackend checkpoint (weights_only) into a fresh process state."""

import torch

from aac.core import create_compressed_model
from aac.torch.backend import TorchBackend
from aac.torch.testing.models import ResNet

CONFIG = {
    "input_info": {"sample_size": [1, 3, 8, 8]},
    "compression": {"algorithm": "filter_pruning", "params": {"prune_downsample_convs": True}},
}


def test_checkpoint_round_trip(tmp_path):
    backend = TorchBackend()
    controller, model = create_compressed_model(ResNet(), CONFIG)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3, 8, 8)).sum().backward()
    optimizer.step()
    controller.compression_rate = 0.6
    backend.save_checkpoint(
        tmp_path / "run.pt",
        {
            "model": backend.model_state(model),
            "compression_state": controller.get_state(),
            "optimizer": backend.optimizer_state(optimizer),
            "rng": backend.rng_state(),
        },
    )

    payload = backend.load_checkpoint(tmp_path / "run.pt")  # weights_only=True inside
    restored_controller, restored = create_compressed_model(ResNet(), CONFIG, compression_state=payload["compression_state"])
    backend.load_model_state(restored, payload["model"])
    restored_optimizer = torch.optim.SGD(restored.parameters(), lr=0.1, momentum=0.9)
    backend.load_optimizer_state(restored_optimizer, payload["optimizer"])

    assert restored_controller.compression_rate == controller.compression_rate
    x = torch.randn(3, 3, 8, 8)
    torch.testing.assert_close(restored.eval()(x), model.eval()(x))
    torch.testing.assert_close(restored_controller.strip()(x), controller.strip()(x))
