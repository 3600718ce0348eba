"""The torch filter-pruning controller: reachable rates, FLOPs mode, schedule, stage, statistics (the setter/getter,
rate down and up and state round trip are aac-core's conformance suite: test_pruning_conformance.py)."""

import numpy as np
import pytest
import torch

from aac.core import CompressionStage, create_compressed_model, load_config
from aac.core.errors import CompressionRateError, ConfigError
from aac.torch.testing.models import DigitsNet, ResNet
from aac.torch.transforms import original


def _masked_filters(conv):
    return (conv.weight.detach().flatten(1).abs().sum(1) == 0).numpy()


def test_rates_outside_the_reachable_range_are_refused(compress):
    controller = compress(ResNet(), prune_downsample_convs=True)
    with pytest.raises(CompressionRateError, match=r"must be in \[0, 1\)"):
        controller.compression_rate = 1.0
    maximal = controller.maximal_compression_rate
    assert 0.8 < maximal < 1.0
    controller.compression_rate = maximal
    assert controller.compression_rate == pytest.approx(maximal)
    with pytest.raises(CompressionRateError, match="at most"):
        controller.compression_rate = maximal + 0.01


def test_flops_mode_measures_the_removed_flops(compress):
    controller = compress(ResNet(), pruning_flops_target=0.5, prune_downsample_convs=True, filters_multiple_of=1)
    controller.compression_rate = 0.4
    rate = controller.compression_rate
    assert rate == pytest.approx(0.4, abs=0.01)
    assert controller.statistics()["filter_pruning"].scalars["model_flops_removed"] == pytest.approx(rate)
    filters_only = compress(ResNet(), prune_downsample_convs=True)
    assert controller.maximal_compression_rate > filters_only.maximal_compression_rate  # FLOPs shrink quadratically


def test_flops_target_needs_input_info(compress):
    with pytest.raises(ConfigError, match="needs layer output sizes"):
        compress(ResNet(), shape=None, pruning_flops_target=0.3)


def test_config_rules():
    with pytest.raises(ConfigError, match="set either pruning_target .* or pruning_flops_target .*, not both"):
        create_compressed_model(
            ResNet(), {"compression": {"algorithm": "filter_pruning", "params": {"pruning_target": 0.3, "pruning_flops_target": 0.3}}}
        )
    with pytest.raises(ConfigError, match="unknown key 'pruning_trget'"):
        create_compressed_model(ResNet(), {"compression": {"algorithm": "filter_pruning", "params": {"pruning_trget": 0.3}}})


def test_config_rules_are_reported_by_load_config_before_any_model_exists():
    """The cross-key rules run in load_config (AlgorithmSpec.check), so ``aac validate`` reports them."""
    with pytest.raises(ConfigError) as caught:
        load_config({"compression": [{"algorithm": "filter_pruning", "params": {"pruning_target": 0.5, "pruning_flops_target": 0.3}}]})
    assert [p.path for p in caught.value.problems] == ["$.compression[0].params"]


def test_schedule_moves_the_level_then_freezes(compress):
    controller = compress(ResNet(), section={"pruning_init": 0.1}, pruning_target=0.5, pruning_steps=3, prune_downsample_convs=True)
    rates, stages = [], []
    for _ in range(5):
        controller.scheduler.epoch_step()
        rates.append(controller.compression_rate)
        stages.append(controller.compression_stage())
    assert rates == sorted(rates) and rates[-1] == pytest.approx(0.5, abs=0.03)
    assert stages[0] is CompressionStage.PARTIALLY_COMPRESSED and stages[-1] is CompressionStage.FULLY_COMPRESSED
    assert controller.scheduler.frozen
    conv = controller.model.layers[1][0].conv1
    before = _masked_filters(conv)
    with torch.no_grad():
        original(conv, "weight").mul_(torch.linspace(0.1, 10, 32).view(32, 1, 1, 1))  # reorder importance
    controller.scheduler.epoch_step()
    assert np.array_equal(_masked_filters(conv), before)  # frozen masks do not follow the weights


def test_warm_up_and_stage(compress):
    controller = compress(ResNet(), num_init_steps=2, pruning_target=0.3)
    assert controller.compression_rate == 0.0 and controller.compression_stage() is CompressionStage.UNCOMPRESSED
    controller.disable_scheduler()
    controller.compression_rate = 0.3
    assert controller.compression_stage() is CompressionStage.FULLY_COMPRESSED


@pytest.mark.parametrize(
    "params",
    [
        {"filter_importance": "L1"},
        {"filter_importance": "geometric_median"},
        {"all_weights": True},
        {"schedule": "baseline"},
        {"schedule": "exponential_with_bias", "prune_first_conv": True},
    ],
    ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()),
)
def test_variants_reach_their_level(compress, params):
    controller = compress(DigitsNet(width=16), shape=(1, 1, 8, 8), prune_downsample_convs=True, filters_multiple_of=4, **params)
    controller.compression_rate = 0.5
    assert controller.compression_rate == pytest.approx(0.5, abs=0.1)


def test_geometric_median_and_l2_choose_different_filters(compress):
    def masks(importance):
        controller = compress(ResNet(), filter_importance=importance, prune_downsample_convs=True)
        controller.compression_rate = 0.5
        return [m.tolist() for m in controller._read_masks()]

    torch.manual_seed(1)
    l2 = masks("L2")
    torch.manual_seed(1)
    assert masks("geometric_median") != l2


def test_legacy_weight_importance_and_scopes(compress):
    controller, _ = create_compressed_model(
        ResNet(),
        {
            "input_info": {"sample_size": [1, 3, 8, 8]},
            "compression": {
                "algorithm": "filter_pruning",
                "ignored_scopes": ["layers.2"],
                "params": {"weight_importance": "L1", "prune_downsample_convs": True},
            },
        },
    )
    assert controller.params.filter_importance == "L1"
    assert not any(p.startswith("layers.2") for g in controller.analysis.groups for p in g.producers)
    kept = {p: k.reasons for k in controller.analysis.kept for p in k.producers}
    assert kept["layers.2.0.conv1"][0] == "'layers.2.0.conv1' is in ignored_scopes"


def test_statistics_tables(compress):
    controller = compress(ResNet(), prune_downsample_convs=True)
    controller.compression_rate = 0.5
    stats = controller.statistics()["filter_pruning"]
    model_table, layer_table, kept_table = stats.tables
    assert [row[0] for row in model_table.rows] == ["FLOPs", "Parameters", "Filters"]
    assert all(row[2] < row[1] and 0 < row[3] < 1 for row in model_table.rows)
    layers = {row[0]: row for row in layer_table.rows}
    assert layers["layers.1.0.conv2"][1:3] == (32, 16)
    assert layers["fc"][3:5] == (64, 32)  # inputs of the classifier follow the last stage
    assert "fc" in kept_table.to_str()
    assert stats.scalars["compression_rate"] == controller.compression_rate
    assert "Statistics of the pruned model" in controller.statistics().to_str()


def test_nncf_section_keys_scope_warnings_and_batchnorm_adaptation(caplog):
    """validate_scopes: false turns an unmatched scope into a warning; initializer.batchnorm_adaptation
    re-estimates the BN statistics in initialize(), as NNCF configs expect."""
    section = {
        "algorithm": "filter_pruning",
        "pruning_init": 0.5,
        "validate_scopes": False,
        "ignored_scopes": ["no.such.layer"],
        "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 32}},
        "params": {"schedule": "baseline", "pruning_target": 0.5, "filters_multiple_of": 1},
    }
    model = ResNet()
    with caplog.at_level("WARNING", logger="aac.scopes"):
        controller, compressed = create_compressed_model(model, {"input_info": {"sample_size": [1, 3, 16, 16]}, "compression": section})
    assert "no.such.layer" in caplog.text and "validate_scopes is false" in caplog.text
    norms = [m for m in compressed.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [n.running_var.clone() for n in norms]
    controller.initialize([(torch.randn(16, 3, 16, 16) * 3, torch.zeros(16))] * 2)
    assert all(not torch.equal(b, n.running_var) for b, n in zip(before, norms, strict=True))
    assert all(n.num_batches_tracked > 0 for n in norms)
    with pytest.raises(ConfigError, match="no.such.layer"):
        create_compressed_model(
            ResNet(), {"input_info": {"sample_size": [1, 3, 16, 16]}, "compression": {**section, "validate_scopes": True}}
        )
