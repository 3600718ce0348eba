"""core's AdaptiveCompressionTrainingLoop searching a filter-pruning rate on a real (small) torch model."""

import pytest
import torch
from sklearn.datasets import load_digits

from aac.core import AdaptiveCompressionTrainingLoop, create_compressed_model
from aac.torch.testing.models import DigitsNet


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    images = torch.tensor(data.images[:600], dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(data.target[:600])
    return images[:450], labels[:450], images[450:], labels[450:]


def test_adaptive_loop_finds_a_rate_within_budget(digits, tmp_path):
    x_train, y_train, x_val, y_val = digits
    torch.manual_seed(0)
    model = DigitsNet(width=16)

    def train(model, optimizer, compression_ctrl=None):
        model.train()
        order = torch.randperm(len(x_train))
        for start in range(0, len(order), 50):
            batch = order[start:start + 50]
            loss = torch.nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
            if compression_ctrl is not None:
                loss = loss + compression_ctrl.loss()
                compression_ctrl.scheduler.step()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def train_epoch_fn(compression_ctrl, model, epoch, optimizer, lr_scheduler):
        train(model, optimizer, compression_ctrl)

    def validate_fn(model, epoch):
        model.eval()
        with torch.no_grad():
            return 100.0 * float((model(x_val).argmax(1) == y_val).float().mean())

    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(10):
        train(model, optimizer)
    baseline = validate_fn(model, 0)
    assert baseline > 85

    config = {
        "input_info": {"sample_size": [1, 1, 8, 8]},
        "compression": {"algorithm": "filter_pruning", "pruning_init": 0.1,
                        "params": {"pruning_target": 0.3, "pruning_steps": 2, "filters_multiple_of": 4,
                                   "prune_downsample_convs": True}},
        "accuracy_aware_training": {"mode": "adaptive_compression_level",
                                    "params": {"maximal_absolute_accuracy_degradation": 3.0, "initial_training_phase_epochs": 2,
                                               "patience_epochs": 1, "initial_compression_rate_step": 0.2,
                                               "minimal_compression_rate_step": 0.1, "maximal_total_epochs": 8}},
    }
    controller, compressed = create_compressed_model(model, config)
    loop = AdaptiveCompressionTrainingLoop(config, controller, uncompressed_model_accuracy=baseline, verbose=False)
    result = loop.run(compressed, train_epoch_fn, validate_fn,
                      configure_optimizers_fn=lambda: (torch.optim.Adam(compressed.parameters(), lr=3e-3), None), log_dir=tmp_path)

    stats = loop.statistics
    assert result is model and stats is not None
    assert stats.feasible and stats.compressed_accuracy >= baseline - 3.0
    assert stats.compression_rate > 0.1
    assert controller.compression_rate == pytest.approx(stats.compression_rate)  # the loop leaves the reported rate
    assert any(r.phase == "search" for r in stats.history)
    stripped = controller.strip()
    assert validate_fn(stripped, 0) == pytest.approx(stats.compressed_accuracy)
    assert sum(p.numel() for p in stripped.parameters()) < sum(p.numel() for p in model.parameters())
    assert (tmp_path / "history.json").exists()


def test_reachable_rate_is_the_rate_the_setter_gives_without_touching_the_masks(compress):
    """filters_multiple_of 8 on 16/32-filter layers: requests round onto a handful of real levels."""
    controller = compress(DigitsNet(width=16), (1, 1, 8, 8), prune_first_conv=True, prune_downsample_convs=True,
                          filters_multiple_of=8)
    masks = [m.copy() for m in controller._read_masks()]
    requests = [round(0.025 * i, 3) for i in range(int(controller.maximal_compression_rate / 0.025) + 1)]
    predicted = [controller.reachable_compression_rate(r) for r in requests]
    assert all(a.tolist() == b.tolist() for a, b in zip(masks, controller._read_masks(), strict=True))  # nothing was set
    for request, real in zip(requests, predicted, strict=True):
        controller.compression_rate = request
        assert controller.compression_rate == pytest.approx(real, abs=1e-9), request
    levels = sorted(set(round(p, 6) for p in predicted))
    assert len(levels) < len(requests) / 2  # many requests share a real level
    assert controller.reachable_compression_rate(0.99) == pytest.approx(controller.maximal_compression_rate)


def test_the_search_trains_each_real_level_once(digits, tmp_path):
    """The frontier search on a coarse pruning grid: distinct real levels only, probes recorded apart."""
    x_train, y_train, x_val, y_val = digits
    torch.manual_seed(0)
    model = DigitsNet(width=16)
    batches = [(x_train[i:i + 50], y_train[i:i + 50]) for i in range(0, len(x_train), 50)]

    def fit(model, optimizer, compression_ctrl=None):
        model.train()
        for x, y in batches:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            if compression_ctrl is not None:
                compression_ctrl.scheduler.step()
                loss = loss + compression_ctrl.loss()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def train_epoch_fn(compression_ctrl, model, epoch, optimizer, lr_scheduler):
        fit(model, optimizer, compression_ctrl)

    def validate_fn(model, epoch):
        model.eval()
        with torch.no_grad():
            return 100.0 * float((model(x_val).argmax(1) == y_val).float().mean())

    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(10):
        fit(model, optimizer)
    baseline = validate_fn(model, 0)
    config = {
        "input_info": {"sample_size": [1, 1, 8, 8]},
        "compression": {"algorithm": "filter_pruning", "pruning_init": 0.1,
                        "params": {"pruning_target": 0.3, "pruning_steps": 2, "filters_multiple_of": 8,
                                   "prune_first_conv": True, "prune_downsample_convs": True}},
        "accuracy_aware_training": {"mode": "adaptive_compression_level",
                                    "params": {"maximal_absolute_accuracy_degradation": 2.0, "initial_training_phase_epochs": 2,
                                               "patience_epochs": 2, "maximal_total_epochs": 12}},
    }
    controller, compressed = create_compressed_model(model, config)
    controller.initialize(batches)  # probes re-estimate batch norms over these
    loop = AdaptiveCompressionTrainingLoop(config, controller, uncompressed_model_accuracy=baseline, verbose=False)
    loop.run(compressed, train_epoch_fn, validate_fn,
             configure_optimizers_fn=lambda: (torch.optim.Adam(compressed.parameters(), lr=3e-3), None), log_dir=tmp_path)
    stats = loop.statistics
    real_levels = {round(controller.reachable_compression_rate(0.01 * i), 6) for i in range(100)}
    search = [r.compression_rate for r in stats.history if r.phase == "search"]
    starts = [rate for i, rate in enumerate(search) if i == 0 or search[i - 1] != rate]
    assert len(starts) == len(set(starts)), f"a real level was trained twice: {starts}"
    assert set(search) <= real_levels
    assert stats.probes > 0 and all(r.compression_rate in real_levels for r in stats.history if r.is_probe)
    assert controller.compression_rate == pytest.approx(stats.compression_rate)
