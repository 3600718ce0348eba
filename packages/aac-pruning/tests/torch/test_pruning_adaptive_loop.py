"""core's AdaptiveCompressionTrainingLoop searching a filter-pruning rate on a real (small) torch model."""

import pytest
import torch
from sklearn.datasets import load_digits

from aac.core import AacError, AdaptiveCompressionTrainingLoop, create_compressed_model
from aac.core.errors import CheckpointError, CompressionRateError
from aac.torch.testing.models import DigitsNet


@pytest.fixture(scope="module")
def digits():
    data = load_digits()
    images = torch.tensor(data.images[:600], dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(data.target[:600])
    return images[:450], labels[:450], images[450:], labels[450:]


class DigitsTraining:
    """A pre-trained ``DigitsNet`` and the loop's callbacks for it (accuracy in percent)."""

    def __init__(self, digits, width=16):
        self.x_train, self.y_train, self.x_val, self.y_val = digits
        x_train, y_train = self.x_train, self.y_train
        torch.manual_seed(0)
        self.model = DigitsNet(width=width)
        self.batches = [(x_train[i : i + 50], y_train[i : i + 50]) for i in range(0, len(x_train), 50)]
        optimizer = torch.optim.Adam(self.model.parameters(), lr=0.01)
        for _ in range(10):
            self.fit(self.model, optimizer)
        self.baseline = self.validate_fn(self.model, 0)

    def fit(self, model, optimizer, compression_ctrl=None):
        model.train()
        order = torch.randperm(len(self.x_train))
        for start in range(0, len(order), 50):
            batch = order[start : start + 50]
            loss = torch.nn.functional.cross_entropy(model(self.x_train[batch]), self.y_train[batch])
            if compression_ctrl is not None:
                compression_ctrl.scheduler.step()
                loss = loss + compression_ctrl.loss()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def train_epoch_fn(self, compression_ctrl, model, epoch, optimizer, lr_scheduler):
        self.fit(model, optimizer, compression_ctrl)

    def validate_fn(self, model, epoch):
        model.eval()
        with torch.no_grad():
            return 100.0 * float((model(self.x_val).argmax(1) == self.y_val).float().mean())

    def run(self, config, log_dir):
        """create_compressed_model + the adaptive loop; returns (controller, loop)."""
        controller, compressed = create_compressed_model(self.model, config)
        assert compressed is self.model
        controller.initialize(self.batches)  # probes re-estimate batch norms over these
        loop = AdaptiveCompressionTrainingLoop(config, controller, uncompressed_model_accuracy=self.baseline, verbose=False)
        result = loop.run(
            compressed,
            self.train_epoch_fn,
            self.validate_fn,
            configure_optimizers_fn=lambda: (torch.optim.Adam(compressed.parameters(), lr=3e-3), None),
            log_dir=log_dir,
        )
        assert result is self.model
        return controller, loop


def test_adaptive_loop_finds_a_rate_within_budget(digits, tmp_path):
    training = DigitsTraining(digits)
    baseline = training.baseline
    assert baseline > 85
    config = {
        "input_info": {"sample_size": [1, 1, 8, 8]},
        "compression": {
            "algorithm": "filter_pruning",
            "pruning_init": 0.1,
            "params": {"pruning_target": 0.3, "pruning_steps": 2, "filters_multiple_of": 4, "prune_downsample_convs": True},
        },
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {
                "maximal_absolute_accuracy_degradation": 3.0,
                "initial_training_phase_epochs": 2,
                "patience_epochs": 1,
                "initial_compression_rate_step": 0.2,
                "minimal_compression_rate_step": 0.1,
                "maximal_total_epochs": 8,
            },
        },
    }
    controller, loop = training.run(config, tmp_path)
    stats = loop.statistics
    assert stats.feasible and stats.compressed_accuracy >= baseline - 3.0
    assert stats.compression_rate > 0.1
    assert controller.compression_rate == pytest.approx(stats.compression_rate)  # the loop leaves the reported rate
    assert any(r.phase == "search" for r in stats.history)
    stripped = controller.strip()
    assert training.validate_fn(stripped, 0) == pytest.approx(stats.compressed_accuracy)
    assert sum(p.numel() for p in stripped.parameters()) < sum(p.numel() for p in training.model.parameters())
    assert (tmp_path / "history.json").exists()


def test_reachable_rate_is_the_rate_the_setter_gives_without_touching_the_masks(compress):
    """filters_multiple_of 8 on 16/32-filter layers: requests round onto a handful of real levels."""
    controller = compress(DigitsNet(width=16), (1, 1, 8, 8), prune_first_conv=True, prune_downsample_convs=True, filters_multiple_of=8)
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
    config = {
        "input_info": {"sample_size": [1, 1, 8, 8]},
        "compression": {
            "algorithm": "filter_pruning",
            "pruning_init": 0.1,
            "params": {
                "pruning_target": 0.3,
                "pruning_steps": 2,
                "filters_multiple_of": 8,
                "prune_first_conv": True,
                "prune_downsample_convs": True,
            },
        },
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {
                "maximal_absolute_accuracy_degradation": 2.0,
                "initial_training_phase_epochs": 2,
                "patience_epochs": 2,
                "maximal_total_epochs": 12,
            },
        },
    }
    controller, loop = DigitsTraining(digits).run(config, tmp_path)
    stats = loop.statistics
    real_levels = {round(controller.reachable_compression_rate(0.01 * i), 6) for i in range(100)}
    search = [r.compression_rate for r in stats.history if r.phase == "search"]
    starts = [rate for i, rate in enumerate(search) if i == 0 or search[i - 1] != rate]
    assert len(starts) == len(set(starts)), f"a real level was trained twice: {starts}"
    assert set(search) <= real_levels
    assert stats.probes > 0 and all(r.compression_rate in real_levels for r in stats.history if r.is_probe)
    assert controller.compression_rate == pytest.approx(stats.compression_rate)


@pytest.mark.parametrize("value", [1.0, -0.1, float("nan"), True, "0.5", None])
def test_a_rate_that_is_not_a_fraction_below_one_is_refused(compress, value):
    controller = compress(DigitsNet(width=16), (1, 1, 8, 8), filters_multiple_of=8)
    with pytest.raises(CompressionRateError, match=r"filter_pruning: the compression rate must be (a number )?in \[0, 1\)"):
        controller.compression_rate = value


def test_a_model_of_another_width_does_not_resume_the_run(digits, tmp_path):
    """The fingerprint holds the model's parameter shapes: the refusal names them instead of a torch size mismatch."""
    config = {
        "input_info": {"sample_size": [1, 1, 8, 8]},
        "compression": {"algorithm": "filter_pruning", "params": {"schedule": "baseline", "pruning_target": 0.25}},
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {"maximal_absolute_accuracy_degradation": 5.0, "initial_training_phase_epochs": 1, "maximal_total_epochs": 2},
        },
    }
    DigitsTraining(digits).run(config, tmp_path)
    with pytest.raises(CheckpointError, match=r"different settings \(model\.block1\.bn1\.[a-z.0]+: \[16\] -> \[8\];.* more\)"):
        DigitsTraining(digits, width=8).run(config, tmp_path)


def test_stripping_a_stripped_model_again_is_a_clear_error(compress):
    controller = compress(DigitsNet(width=16), (1, 1, 8, 8), schedule="baseline", pruning_target=0.5, filters_multiple_of=2)
    stripped = controller.strip()
    with pytest.raises(AacError, match="carries no 'filter_pruning' transforms: it was stripped already"):
        controller.strip_model(stripped)
