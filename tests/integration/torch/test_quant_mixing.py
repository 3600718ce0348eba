"""Quantization mixed with filter pruning and sparsity, under both loops: only the adaptive child's
rate moves, quantization keeps training, statistics cover every algorithm, checkpoints round-trip."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from aac.core import CompositeController, create_accuracy_aware_training_loop, create_compressed_model
from aac.quant.torch.algorithm import QuantizationAlgorithm
from aac.torch.testing.digits import DigitsCNN, Trainer, digits, pretrain

pytest.importorskip("sklearn")
SHAPE = {"sample_size": [1, 1, 8, 8]}
QUANT = {
    "algorithm": "quantization",
    "initializer": {"range": {"num_init_samples": 64}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 64}},
}
MAGNITUDE = {"algorithm": "magnitude_sparsity", "sparsity_init": 0.2, "params": {"sparsity_target": 0.4, "sparsity_target_epoch": 1}}
PRUNING = {
    "algorithm": "filter_pruning",
    "pruning_init": 0.1,
    "params": {
        "pruning_target": 0.25,
        "pruning_steps": 2,
        "filters_multiple_of": 1,
        "prune_first_conv": True,
        "prune_downsample_convs": True,
    },
}
RB = {
    "algorithm": "rb_sparsity",
    "params": {"sparsity_init": 0.02, "sparsity_target": 0.3, "sparsity_steps": 2, "sparsity_training_steps": 3},
}


@pytest.fixture(scope="module")
def pretrained() -> tuple[DigitsCNN, float, Any, Any]:
    torch.manual_seed(0)
    train, val = digits(train=480)
    model = DigitsCNN()
    return model, pretrain(model, Trainer(model, train, val), epochs=4), train, val


def adaptive(*sections: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {
        "input_info": SHAPE,
        "compression": list(sections),
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {
                "maximal_absolute_accuracy_degradation": 3.0,
                "initial_training_phase_epochs": 2,
                "patience_epochs": 1,
                "initial_compression_rate_step": 0.2,
                "minimal_compression_rate_step": 0.1,
                "maximal_total_epochs": 5,
                **params,
            },
        },
    }


def early_exit(*sections: dict[str, Any], epochs: int = 4) -> dict[str, Any]:
    return {
        "input_info": SHAPE,
        "compression": list(sections),
        "accuracy_aware_training": {
            "mode": "early_exit",
            "params": {"maximal_relative_accuracy_degradation": 5.0, "maximal_total_epochs": epochs},
        },
    }


def build(pretrained: Any, config: dict[str, Any]) -> tuple[Any, torch.nn.Module, Trainer, float]:
    base, accuracy, train, val = pretrained
    torch.manual_seed(1)
    controller, model = create_compressed_model(copy.deepcopy(base), config)
    assert isinstance(controller, CompositeController) == (len(config["compression"]) > 1)
    trainer = Trainer(model, train, val, lr=0.02)
    controller.initialize(trainer.inputs())
    return controller, model, trainer, accuracy


def run(config: dict[str, Any], controller: Any, model: Any, trainer: Trainer, accuracy: float, log_dir: Path, **kwargs: Any) -> Any:
    loop = create_accuracy_aware_training_loop(config, controller, accuracy, verbose=False)
    loop.run(
        model,
        train_epoch_fn=trainer.train_epoch,
        validate_fn=trainer.validate,
        configure_optimizers_fn=trainer.configure_optimizers,
        log_dir=log_dir,
        **kwargs,
    )
    return loop


def quantizer(controller: CompositeController) -> QuantizationAlgorithm:
    return next(c for c in controller.children if isinstance(c, QuantizationAlgorithm))


@pytest.mark.parametrize("partner", [MAGNITUDE, PRUNING], ids=["magnitude_sparsity", "filter_pruning"])
def test_adaptive_loop_moves_only_the_adaptive_child(pretrained: Any, partner: dict[str, Any], tmp_path: Path) -> None:
    # the step search trains at least one search epoch (the default may settle on probes and the initial phase alone)
    config = adaptive(QUANT, partner, search_strategy="step", early_rejection=False)
    controller, model, trainer, accuracy = build(pretrained, config)
    quant = quantizer(controller)
    scale_before = float(quant.weight_quantizers["fc"].scale.detach())
    seen: list[tuple[bool, bool]] = []  # (adaptive child frozen, quantization frozen) at every epoch
    scales: list[float] = []  # the quantizer's scale after every search epoch

    def train(*args: Any, **kwargs: Any) -> float:
        seen.append((controller.adaptive_child.scheduler_disabled, quant.scheduler_disabled))
        loss = trainer.train_epoch(*args, **kwargs)
        if controller.adaptive_child.scheduler_disabled:
            scales.append(float(quant.weight_quantizers["fc"].scale.detach()))
        return loss

    loop = create_accuracy_aware_training_loop(config, controller, accuracy, verbose=False)
    loop.run(
        model, train_epoch_fn=train, validate_fn=trainer.validate, configure_optimizers_fn=trainer.configure_optimizers, log_dir=tmp_path
    )
    stats = loop.statistics
    adaptive_child = controller.adaptive_child
    assert adaptive_child is not None and adaptive_child.name == partner["algorithm"]
    assert adaptive_child.scheduler_disabled and not quant.scheduler_disabled  # only the searched algorithm was frozen
    assert (True, False) in seen and not any(quant_frozen for _, quant_frozen in seen)  # quantization kept its schedule
    assert scales and all(scale != scale_before for scale in scales)  # and its ranges kept training in the search
    assert len({round(r.compression_rate, 6) for r in stats.history}) >= 2
    assert controller.compression_rate == pytest.approx(stats.compression_rate, abs=1e-6)
    assert set(controller.statistics()) == {"quantization", partner["algorithm"]}
    assert all(s.tables for s in controller.statistics().values())


@pytest.mark.parametrize(
    "sections",
    [
        [RB, QUANT],
        [QUANT, MAGNITUDE],
        [QUANT, PRUNING],
        [QUANT, PRUNING, MAGNITUDE],
        [QUANT],
    ],
    ids=["rb+quant", "quant+magnitude", "quant+pruning", "quant+pruning+magnitude", "quant"],
)
def test_early_exit_runs_any_mix(pretrained: Any, sections: list[dict[str, Any]], tmp_path: Path) -> None:
    config = early_exit(*sections)
    controller, model, trainer, accuracy = build(pretrained, config)
    loop = run(config, controller, model, trainer, accuracy, tmp_path)
    assert loop.statistics.total_epochs <= 4  # quantization alone is fully compressed (and may be within budget) at once
    assert loop.statistics.total_epochs >= 1 or sections == [QUANT]
    assert not any(c.scheduler_disabled for c in getattr(controller, "children", [controller]))
    assert set(controller.statistics()) == {s["algorithm"] for s in sections}
    assert "Statistics of quantization" in controller.statistics().to_str()


def test_composite_checkpoint_round_trip(pretrained: Any) -> None:
    config = adaptive(QUANT, MAGNITUDE)
    controller, model, trainer, _ = build(pretrained, config)
    optimizer, _ = trainer.configure_optimizers()
    controller.scheduler.epoch_step()
    trainer.train_epoch(controller, model, optimizer=optimizer)
    controller.children[1].disable_scheduler()
    controller.compression_rate = 0.35
    state, weights = controller.get_state(), copy.deepcopy(model.state_dict())
    fresh_model = DigitsCNN()
    fresh, _ = create_compressed_model(fresh_model, config, compression_state=state)
    fresh_model.load_state_dict(weights)
    assert fresh.get_state() == state
    assert fresh.compression_rate == 0.35 and fresh.children[1].scheduler_disabled and not fresh.children[0].scheduler_disabled
    model.eval()
    fresh_model.eval()
    x = torch.rand(5, 1, 8, 8)
    assert torch.equal(fresh_model(x), model(x))


def test_interrupted_adaptive_run_resumes_from_its_checkpoints(pretrained: Any, tmp_path: Path) -> None:
    """Quantization mixed with the searched sparsity, killed in its third epoch: the resumed run ends as an
    uninterrupted one does, having trained only the epochs that were lost."""
    config = adaptive(QUANT, MAGNITUDE, maximal_total_epochs=4)
    reference = run(config, *build(pretrained, config), tmp_path / "reference").statistics
    controller, model, trainer, accuracy = build(pretrained, config)
    calls = {"n": 0}

    def crashing(*args: Any, **kwargs: Any) -> float:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated crash")
        return trainer.train_epoch(*args, **kwargs)

    with pytest.raises(KeyboardInterrupt):
        create_accuracy_aware_training_loop(config, controller, accuracy, verbose=False).run(
            model,
            train_epoch_fn=crashing,
            validate_fn=trainer.validate,
            configure_optimizers_fn=trainer.configure_optimizers,
            log_dir=tmp_path / "killed",
        )
    resumed_controller, resumed_model, resumed_trainer, _ = build(pretrained, config)
    resumed = run(config, resumed_controller, resumed_model, resumed_trainer, accuracy, tmp_path / "killed").statistics
    assert reference.total_epochs >= 3  # the kill fell inside the run
    assert (resumed.total_epochs, resumed.compression_rate, resumed.compressed_accuracy) == (
        reference.total_epochs,
        reference.compression_rate,
        reference.compressed_accuracy,
    )
    assert resumed_trainer.epochs_trained == reference.total_epochs - 2  # two epochs were done before the crash
    assert resumed_controller.compression_rate == pytest.approx(resumed.compression_rate)


@pytest.mark.parametrize(
    ("partner", "quant_first", "per_channel"),
    [
        (PRUNING, True, False),
        (PRUNING, False, True),
        (MAGNITUDE, True, True),
        (MAGNITUDE, False, False),
    ],
    ids=["quant+pruning", "pruning+quant-per-channel", "quant+magnitude-per-channel", "magnitude+quant"],
)
def test_export_of_a_compressed_quantized_model(
    pretrained: Any, tmp_path: Path, partner: dict[str, Any], quant_first: bool, per_channel: bool
) -> None:
    ort = pytest.importorskip("onnxruntime")
    quant = {**QUANT, "weights": {"per_channel": per_channel}, "activations": {"per_channel": per_channel}}
    config = early_exit(*((quant, partner) if quant_first else (partner, quant)))
    controller, model, _, _ = build(pretrained, config)
    for _ in range(3):
        controller.scheduler.epoch_step()
    model.eval()
    x = torch.rand(3, 1, 8, 8)
    with torch.no_grad():
        expected = model(x).numpy()
    stripped = controller.strip()
    if partner is PRUNING:
        assert stripped.conv1.out_channels < model.conv1.out_channels  # physically smaller
    else:
        assert (
            float(
                (stripped.fc.parametrizations.weight.original == 0).float().mean()
                if hasattr(stripped.fc, "parametrizations")
                else (stripped.fc._parameters["weight"] == 0).float().mean()
            )
            > 0.2
        )
    with torch.no_grad():
        assert np.abs(stripped(x).numpy() - expected).max() <= 1e-5
    path = controller.export_model(tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    steps = torch.cat([q.step_and_zero()[0].detach().flatten() for _, _, q in quantizer(controller).quantizers()])
    assert np.abs(actual - expected).max() <= float(steps[steps > 1e-6].min())  # channels of constant zeros have no real step
    import onnx

    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("QuantizeLinear") == 6  # three weights, three layer inputs
    assert "Clip" not in ops  # every child post-processes the export, whatever the config order
    loaded = torch.load(controller.export_model(tmp_path / "m.pt"), weights_only=False)
    with torch.no_grad():
        assert np.abs(loaded(x).numpy() - expected).max() <= 1e-5
