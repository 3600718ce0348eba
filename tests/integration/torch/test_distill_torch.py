"""knowledge_distillation mixed with every algorithm on PyTorch: configs, the teacher, copies and exports, the adaptive loop.

Distillation alone: packages/aac-distill/tests/ (its section) and tests/torch/ (its loss and teacher).
"""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

from aac.core import AdaptiveCompressionTrainingLoop, create_compressed_model, load_config
from aac.distill.settings import DistillationSettings
from aac.distill.torch.algorithm import KnowledgeDistillation, TeacherHook
from aac.torch.testing.digits import DigitsCNN, Trainer, digits, pretrain
from aac.torch.transforms import has_transforms

INPUT = {"sample_size": [1, 1, 8, 8]}
PRUNING = {
    "algorithm": "filter_pruning",
    "pruning_init": 0.5,
    "params": {"pruning_target": 0.5, "filters_multiple_of": 1, "prune_first_conv": True},
}
#: the pruning section of NNCF's resnet34_imagenet_pruning_geometric_median_kd.json
GEOMETRIC_MEDIAN_PRUNING = {
    "algorithm": "filter_pruning",
    "pruning_init": 0.1,
    "params": {"pruning_target": 0.5, "filter_importance": "geometric_median"},
}


def distillation(controller):
    return next(c for c in getattr(controller, "children", [controller]) if isinstance(c, KnowledgeDistillation))


def compress(*sections, model=None):
    torch.manual_seed(0)
    model = model or DigitsCNN(width=8)
    original = copy.deepcopy(model)
    controller, compressed = create_compressed_model(model, {"input_info": INPUT, "compression": list(sections)})
    return original, controller, compressed


@pytest.mark.parametrize(
    "others",
    [
        [PRUNING],
        [{"algorithm": "quantization"}],
        [{"algorithm": "magnitude_sparsity", "sparsity_init": 0.5}],
        [{"algorithm": "rb_sparsity", "sparsity_init": 0.5}],
        [PRUNING, {"algorithm": "quantization"}],
    ],
    ids=["pruning", "quantization", "magnitude", "rb", "pruning+quantization"],
)
def test_the_teacher_is_the_uncompressed_model_whatever_comes_before(others):
    original, controller, model = compress(*others, {"algorithm": "knowledge_distillation", "type": "mse"})
    teacher = distillation(controller).teacher
    x = torch.rand(4, 1, 8, 8)
    original.eval(), teacher.eval(), model.eval()
    with torch.no_grad():
        assert torch.equal(teacher(x), original(x))
    assert has_transforms(model) and not has_transforms(teacher)
    assert set(teacher.state_dict()) == set(original.state_dict())
    assert all(not name.startswith("teacher") for name, _ in model.named_modules())


def test_copies_and_exports_carry_no_teacher(tmp_path):
    _, controller, model = compress(PRUNING, {"algorithm": "knowledge_distillation", "type": "softmax"})
    hooks = [h for h in model._forward_hooks.values() if isinstance(h, TeacherHook)]
    assert len(hooks) == 1 and hooks[0].teacher is not None
    distilled_only = compress({"algorithm": "knowledge_distillation", "type": "mse"})[2]  # parametrized models do not pickle
    for other in (copy.deepcopy(model), pickle.loads(pickle.dumps(distilled_only))):
        (hook,) = [h for h in other._forward_hooks.values() if isinstance(h, TeacherHook)]
        assert hook.teacher is None
        other.train()(torch.rand(2, 1, 8, 8))  # inert
    stripped = controller.strip()
    assert not any(isinstance(h, TeacherHook) for h in stripped._forward_hooks.values())
    controller.export_model(tmp_path / "model.pt")
    loaded = torch.load(tmp_path / "model.pt", weights_only=False)
    assert not any(isinstance(h, TeacherHook) for h in loaded._forward_hooks.values())


def test_state_round_trip_keeps_the_teacher():
    _, controller, model = compress(PRUNING, {"algorithm": "knowledge_distillation", "type": "mse"})
    state = controller.get_state()
    controller.load_state(state)
    assert state["children"]["knowledge_distillation"]["algorithm"] == "knowledge_distillation"
    assert set(model.state_dict()) == set(
        create_compressed_model(DigitsCNN(width=8), {"input_info": INPUT, "compression": [PRUNING]})[1].state_dict()
    )  # the teacher adds nothing to the checkpoint


def test_distillation_under_the_adaptive_loop(tmp_path):
    """Filter pruning's rate is searched; distillation adds its loss at every level and has no rate of its own."""
    torch.manual_seed(0)
    train, val = digits(train=400)
    model = DigitsCNN(width=8)
    trainer = Trainer(model, train, val, lr=0.05)
    baseline = pretrain(model, trainer, epochs=4)
    config = {
        "input_info": INPUT,
        "compression": [
            {
                "algorithm": "filter_pruning",
                "params": {"pruning_target": 0.3, "pruning_steps": 1, "filters_multiple_of": 2, "prune_first_conv": True},
            },
            {"algorithm": "knowledge_distillation", "type": "softmax", "temperature": 2.0},
        ],
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {
                "maximal_absolute_accuracy_degradation": 5.0,
                "initial_training_phase_epochs": 1,
                "patience_epochs": 1,
                "initial_compression_rate_step": 0.2,
                "minimal_compression_rate_step": 0.1,
                "maximal_total_epochs": 4,
            },
        },
    }
    controller, model = create_compressed_model(model, config)
    teacher_passes = []
    distillation(controller).teacher.register_forward_hook(lambda *args: teacher_passes.append(1))
    loop = AdaptiveCompressionTrainingLoop(config, controller, uncompressed_model_accuracy=baseline, verbose=False)
    loop.run(model, trainer.train_epoch, trainer.validate, configure_optimizers_fn=trainer.configure_optimizers, log_dir=tmp_path)
    assert loop.statistics.compression_rate > 0 and teacher_passes  # the teacher ran while the loop trained
    assert float(distillation(controller).loss().detach()) > 0


def test_nncf_pruning_with_distillation_config_loads():
    """examples/torch/classification/configs/pruning/resnet34_imagenet_pruning_geometric_median_kd.json."""
    config = load_config(
        {
            "input_info": {"sample_size": [1, 3, 224, 224]},
            "compression": [GEOMETRIC_MEDIAN_PRUNING, {"algorithm": "knowledge_distillation", "type": "softmax"}],
        }
    )
    section = config.compression_sections()[1]
    assert DistillationSettings.from_section(section.raw, section.path) == DistillationSettings("softmax", 1.0, 1.0)


def test_distillation_mixes_with_an_adaptive_algorithm_under_the_adaptive_loop():
    config = load_config(
        {
            "accuracy_aware_training": {"mode": "adaptive_compression_level", "params": {"maximal_absolute_accuracy_degradation": 1}},
            "compression": [GEOMETRIC_MEDIAN_PRUNING, {"algorithm": "knowledge_distillation", "type": "mse", "scale": 0.5}],
        }
    )
    assert [s.name for s in config.compression_sections()] == ["filter_pruning", "knowledge_distillation"]
