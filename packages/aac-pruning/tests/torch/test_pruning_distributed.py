"""The adaptive loop with filter pruning in two real torch.distributed (gloo) processes."""

import json
import socket

import pytest

torch = pytest.importorskip("torch")
mp = pytest.importorskip("torch.multiprocessing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ranks_take_rank_zeros_decisions_and_end_with_identical_weights(tmp_path):
    from aac.torch.testing.distributed import adaptive_loop_worker

    config = {
        "input_info": {"sample_size": [1, 1, 8, 8]},
        "compression": {
            "algorithm": "filter_pruning",
            "params": {
                "schedule": "baseline",
                "pruning_target": 0.25,
                "prune_first_conv": True,
                "prune_downsample_convs": True,
                "filters_multiple_of": 2,
            },
        },
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {
                "maximal_absolute_accuracy_degradation": 30.0,
                "initial_training_phase_epochs": 1,
                "patience_epochs": 1,
                "maximal_total_epochs": 4,
            },
        },
    }
    log_dir, results = tmp_path / "run", tmp_path / "results"
    results.mkdir()
    mp.spawn(adaptive_loop_worker, args=(2, _free_port(), config, str(log_dir), str(results)), nprocs=2, join=True)
    rank0, rank1 = (json.loads((results / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["rate"] == rank1["rate"] == pytest.approx(rank0["controller_rate"])
    assert rank0["metric"] == rank1["metric"]  # rank 1's own (lowered) metric never decided anything
    assert rank0["epochs"] == rank1["epochs"] <= 4
    assert rank0["weights"] == pytest.approx(rank1["weights"], rel=1e-6)  # every rank restored the same checkpoint
    assert (log_dir / "state.json").exists() and len(list(log_dir.glob("history.json"))) == 1
