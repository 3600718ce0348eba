"""magnitude_sparsity through accuracy_aware_fit under tf.distribute.MirroredStrategy (2 logical CPUs, a fresh process)."""

from aac.tf.testing import fit_under_mirrored_strategy


def test_magnitude_sparsity_trains_under_mirrored_strategy(tmp_path):
    report = fit_under_mirrored_strategy(
        {
            "algorithm": "magnitude_sparsity",
            "sparsity_init": 0.5,
            "params": {"schedule": "multistep", "multistep_steps": [], "multistep_sparsity_levels": [0.5]},
        },
        tmp_path,
    )
    assert report["replicas"] == 2 and report["mirrored"] == report["variables"]
    assert report["disagreement"] == 0.0
    assert report["rate"] == 0.5 and report["epochs"] == 2
    assert report["strip_diff"] < 1e-5
