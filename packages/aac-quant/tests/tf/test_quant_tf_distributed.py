"""quantization through accuracy_aware_fit under tf.distribute.MirroredStrategy (2 logical CPUs, a fresh process)."""

from aac.tf.testing import fit_under_mirrored_strategy


def test_quantization_trains_under_mirrored_strategy(tmp_path):
    report = fit_under_mirrored_strategy({"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 64}}}, tmp_path)
    assert report["replicas"] == 2 and report["mirrored"] == report["variables"]  # weights and quantizer ranges on both replicas
    assert report["disagreement"] == 0.0
    assert report["epochs"] == 2
    assert report["strip_diff"] < 1e-4
