"""filter_pruning through accuracy_aware_fit under tf.distribute.MirroredStrategy (2 logical CPUs, a fresh process)."""

from aac.tf.testing import fit_under_mirrored_strategy


def test_filter_pruning_trains_under_mirrored_strategy(tmp_path):
    report = fit_under_mirrored_strategy(
        {
            "algorithm": "filter_pruning",
            "pruning_init": 0.5,
            "params": {"prune_first_conv": True, "filters_multiple_of": 4, "schedule": "baseline"},
        },
        tmp_path,
    )
    assert report["replicas"] == 2 and report["mirrored"] == report["variables"]  # weights and masks live on both replicas
    assert report["disagreement"] == 0.0  # the replicas' copies agree after training
    assert report["rate"] == 0.5 and report["epochs"] == 2
    assert report["strip_diff"] < 1e-5
