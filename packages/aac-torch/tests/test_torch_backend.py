"""TorchBackend: checkpoints (weights_only), RNG, learning rates, evaluation, preparation."""

import random

import numpy as np
import pytest
import torch
from torch import nn

from aac.core import CallbackError, create_accuracy_aware_training_loop, create_compressed_model
from aac.core.backend import Backend
from aac.core.config import load_config
from aac.core.errors import AacError, CheckpointError, ConfigError
from aac.torch.backend import TorchBackend
from aac.torch.testing.models import ResNet
from aac.torch.transforms import Mask, add_transform


@pytest.fixture()
def backend():
    return TorchBackend()


def _trained_optimizer(model):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    return optimizer


def test_checkpoint_round_trip_with_weights_only(backend, tmp_path):
    model = nn.Linear(3, 2)
    add_transform(model, "weight", Mask(torch.tensor([[1.0], [0.0]]), "pruning"))
    optimizer = _trained_optimizer(model)
    payload = {
        "format": "aac-checkpoint",
        "model": backend.model_state(model),
        "compression_state": {"algorithm": "x", "params": {"level": 0.5, "masks": {"fc": "80"}}},
        "optimizer": backend.optimizer_state(optimizer),
        "rng": backend.rng_state(),
        "info": {"epoch": 3, "metric": 98.5},
    }
    path = tmp_path / "ckpt.pt"
    backend.save_checkpoint(path, payload)
    loaded = backend.load_checkpoint(path)
    assert loaded["info"] == payload["info"] and loaded["compression_state"] == payload["compression_state"]
    restored = nn.Linear(3, 2)
    add_transform(restored, "weight", Mask(torch.ones(2, 1), "pruning"))
    backend.load_model_state(restored, loaded["model"])
    assert torch.equal(restored.weight, model.weight)
    fresh = torch.optim.Adam(restored.parameters(), lr=0.01)
    backend.load_optimizer_state(fresh, loaded["optimizer"])
    assert fresh.state_dict()["state"][0]["step"] == 1
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left nothing behind


def test_snapshots_do_not_follow_training(backend):
    model = nn.Linear(3, 2)
    snapshot = backend.model_state(model)
    optimizer_state = backend.optimizer_state(_trained_optimizer(model))
    assert not torch.equal(snapshot["weight"], model.weight)
    before = optimizer_state["state"][0]["exp_avg"].clone()
    model.zero_grad()
    assert torch.equal(optimizer_state["state"][0]["exp_avg"], before)


def test_missing_and_corrupt_checkpoints_name_the_file(backend, tmp_path):
    with pytest.raises(CheckpointError, match="missing.pt does not exist"):
        backend.load_checkpoint(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt.pt"):
        backend.load_checkpoint(corrupt)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"model": nn.Linear(1, 1)}, unsafe)  # a pickled module: weights_only refuses it
    with pytest.raises(CheckpointError, match="unsafe.pt holds objects"):
        backend.load_checkpoint(unsafe)


def test_rng_state_repeats_python_numpy_and_torch_draws(backend, tmp_path):
    state = backend.rng_state()
    draws = (random.random(), np.random.rand(), torch.rand(1).item())
    backend.save_checkpoint(tmp_path / "rng.pt", {"rng": state})
    backend.set_rng_state(backend.load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == draws


def test_numpy_rng_state_from_an_older_checkpoint_is_restored(backend):
    """Checkpoints before NumPy's state moved to the framework-neutral base kept its keys as an int64 tensor."""
    state = backend.rng_state()
    assert all(type(key) is int for key in state["numpy"]["keys"])  # plain types: JSON and weights_only take them
    draw = np.random.rand()
    older = {**state, "numpy": {**state["numpy"], "keys": torch.tensor(state["numpy"]["keys"], dtype=torch.int64)}}
    backend.set_rng_state(older)
    assert np.random.rand() == draw


def test_scaling_the_learning_rate_survives_scheduler_steps(backend):
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    backend.scale_learning_rate(optimizer, scheduler, 0.1)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)  # from the scaled base, not 0.5


def test_sequential_schedulers_are_scaled_too(backend):
    optimizer = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=1.0)
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, total_iters=1)
    decay = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=1.0)
    scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, decay], milestones=[1])
    backend.scale_learning_rate(optimizer, scheduler, 0.5)
    assert decay.base_lrs == [0.5] and warmup.base_lrs == [0.5]


def test_plateau_scheduler_gets_the_metric(backend):
    optimizer = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=1.0)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", patience=0, factor=0.5)
    backend.step_lr_scheduler(plateau, 0, 90.0)
    backend.step_lr_scheduler(plateau, 1, 80.0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)
    backend.step_lr_scheduler(None, 2, 0.0)  # no scheduler: nothing to do


def test_evaluation_mode_disables_gradients_and_single_process_defaults(backend, tmp_path):
    with backend.evaluation_mode(nn.Linear(1, 1)):
        assert not torch.is_grad_enabled()
    assert (backend.rank(), backend.world_size(), backend.broadcast({"a": 1})) == (0, 1, {"a": 1})
    backend.barrier()
    writer = backend.create_tensorboard_writer(tmp_path / "tb")
    writer.add_scalar("x", 1.0, 0)
    writer.close()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert isinstance(backend, Backend) and backend.checkpoint_suffix == ".pt"


def test_evaluation_mode_validates_in_eval_mode_and_gives_each_module_its_mode_back(backend):
    """validate_fn need not call model.eval(); a part the user froze in eval mode stays frozen after validation."""
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.BatchNorm1d(2))
    model.train()
    model[2].eval()
    with backend.evaluation_mode(model):
        assert not any(m.training for m in model.modules())
    assert [m.training for m in model.modules()] == [True, True, True, False]
    with pytest.raises(RuntimeError), backend.evaluation_mode(model):
        raise RuntimeError("validate_fn failed")
    assert [m.training for m in model.modules()] == [True, True, True, False]


def test_prepare_model_checks_scopes_and_refuses_an_already_compressed_model(backend, registry):
    config = load_config({"ignored_scopes": ["layers.9"], "compression": {"algorithm": "halve_weights"}}, registry=registry)
    with pytest.raises(ConfigError, match=r"\$.ignored_scopes: 'layers.9' matches no module"):
        backend.prepare_model(ResNet(), config)
    model = ResNet()
    prepared = backend.prepare_model(model, load_config({}, registry=registry))
    assert prepared.module is model and backend.finalize_model(prepared, None) is model
    add_transform(model.conv1, "weight", Mask(torch.ones(16, 1, 1, 1), "pruning"))
    with pytest.raises(AacError, match="already carries aac compression"):
        backend.prepare_model(model, load_config({}, registry=registry))


def test_a_data_parallel_wrapper_is_refused_with_the_fix(backend):
    """Parametrizations change the parameters a DataParallel/DDP wrapper was built with: compress first, wrap after."""
    model = nn.DataParallel(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()))
    with pytest.raises(AacError, match=r"got a DataParallel wrapper: pass the wrapped model \(model.module\)"):
        backend.prepare_model(model, load_config({"input_info": {"sample_size": [1, 3, 8, 8]}}))


def test_configure_optimizers_fn_returning_no_optimizer_is_named(tmp_path):
    config = {
        "accuracy_aware_training": {
            "mode": "early_exit",
            "params": {"maximal_absolute_accuracy_degradation": 1.0, "maximal_total_epochs": 1},
        }
    }
    controller, model = create_compressed_model(nn.Linear(3, 2), config)
    loop = create_accuracy_aware_training_loop(config, controller, 50.0, verbose=False)
    with pytest.raises(CallbackError, match="returned an optimizer that is a str, not a torch.optim.Optimizer"):
        loop.run(model, lambda *args, **kwargs: 0.0, lambda model, epoch: 50.0, lambda: ("adam", None), log_dir=tmp_path)


def test_learning_rate_is_read_from_the_optimizer_as_the_schedule_moves_it(backend):
    optimizer = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    assert backend.learning_rate(optimizer) == pytest.approx(0.1)
    backend.step_lr_scheduler(scheduler, 0, 0.0)
    assert backend.learning_rate(optimizer) == pytest.approx(0.05)
    assert backend.learning_rate(None) is None
