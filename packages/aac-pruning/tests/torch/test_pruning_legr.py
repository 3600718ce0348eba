"""LeGR (``interlayer_ranking_type: learned_ranking``) on PyTorch: config rules, the search, and a learned ranking in use."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from aac.core import ConfigError, create_compressed_model, load_config
from aac.pruning.legr import EvolutionarySearch, learn_ranking
from aac.pruning.legr_config import LeGRParams
from aac.pruning.params import FilterPruningParams
from aac.pruning.ranking import LearnedRanking, unweighted_ranking
from aac.torch.testing.digits import DigitsCNN, Trainer, batches, digits, pretrain

INPUT = {"sample_size": [1, 1, 8, 8]}


def legr_section(**params):
    return {
        "algorithm": "filter_pruning",
        "params": {
            "interlayer_ranking_type": "learned_ranking",
            "filters_multiple_of": 1,
            "legr_params": {"generations": 6, "population_size": 3, "num_samples": 2, "train_steps": 4},
            **params,
        },
    }


def test_nncf_learned_ranking_config_loads_with_nncf_defaults():
    """examples/torch/classification/configs/pruning/resnet18_imagenet_pruning_learned_ranking.json."""
    section = {
        "algorithm": "filter_pruning",
        "pruning_init": 0.1,
        "params": {
            "pruning_flops_target": 0.3,
            "pruning_steps": 15,
            "interlayer_ranking_type": "learned_ranking",
            "legr_params": {"generations": 200, "max_pruning": 0.3},
        },
    }
    config = load_config({"input_info": {"sample_size": [1, 3, 224, 224]}, "compression": [section]})
    (loaded,) = config.compression_sections()
    params = FilterPruningParams.from_section(loaded.raw, loaded.params)
    assert params.all_weights and params.prune_first_conv and params.prune_downsample_convs  # learned_ranking's defaults
    assert LeGRParams.from_params(loaded.params) == LeGRParams(generations=200, max_pruning=0.3)
    assert LeGRParams() == LeGRParams(400, 200, None, 42, 64, 16, 0.1, 1.0)  # NNCF's defaults


def test_learned_ranking_refuses_all_weights_false():
    with pytest.raises(ConfigError) as info:
        load_config({"compression": legr_section(all_weights=False)})
    assert [p.path for p in info.value.problems] == ["$.compression.params.all_weights"]
    with pytest.raises(ConfigError, match="unknown key 'generation'"):
        load_config({"compression": {"algorithm": "filter_pruning", "params": {"legr_params": {"generation": 3}}}})


def test_the_search_starts_from_the_identity_and_is_reproducible():
    params = LeGRParams(generations=10, population_size=3, num_samples=2, random_seed=7)

    def run() -> list[LearnedRanking]:
        search, asked = EvolutionarySearch({"a": 0.5, "b": 2.0}, params), []
        for score in [0.1, 0.5, 0.3, 0.2, 0.9, 0.4, 0.0, 0.6, 0.2, 0.1]:
            asked.append(search.ask())
            search.tell(asked[-1], score)
        return asked

    asked = run()
    assert asked[0] == LearnedRanking({"a": (1.0, 0.0), "b": (1.0, 0.0)})
    assert asked == run()  # one seeded generator
    assert len({tuple(r.coefficients.items()) for r in asked}) == len(asked)  # every candidate differs
    for i, candidate in enumerate(asked[3:], start=3):  # a mutation of an earlier candidate: 10% of two layers is one layer
        assert any(sum(candidate.coefficients[k] != parent.coefficients[k] for k in "ab") == 1 for parent in asked[:i])


def test_the_learned_ranking_scales_and_shifts_each_layer():
    ranking = LearnedRanking({"conv1": (2.0, -1.0)})
    assert ranking("conv1", np.array([1.0, 3.0])).tolist() == [1.0, 5.0]
    assert ranking("conv2", np.array([1.0, 3.0])).tolist() == [1.0, 3.0]  # no coefficients: the raw scores
    assert np.linalg.norm(unweighted_ranking("conv2", np.array([3.0, 4.0]))) == pytest.approx(1.0)


def kept(controller, layer: str) -> int:
    return int((controller.model.get_submodule(layer).weight.detach().flatten(1).abs().sum(1) > 0).sum())


def test_the_search_learns_the_ranking_its_score_asks_for():
    """A score that rewards keeping conv2's filters: the learned coefficients move the pruning onto conv1."""
    torch.manual_seed(0)
    controller, model = create_compressed_model(
        DigitsCNN(width=16),
        {
            "input_info": INPUT,
            "compression": legr_section(
                schedule="baseline", pruning_target=0.5, legr_params={"generations": 12, "population_size": 4, "num_samples": 2}
            ),
        },
    )
    controller.compression_rate = 0.5
    identity = kept(controller, "conv2")
    ranking = learn_ranking(controller, train_steps_fn=lambda model, steps: None, score_fn=lambda model: kept(controller, "conv2"))
    controller.compression_rate = 0.5
    assert ranking != LearnedRanking(dict.fromkeys(["conv1", "conv2"], (1.0, 0.0)))
    assert kept(controller, "conv2") > identity and controller.compression_rate == pytest.approx(0.5, abs=0.03)
    assert controller.interlayer_ranking is ranking


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    train, val = digits(train=400)
    model = DigitsCNN(width=16)
    pretrain(model, Trainer(model, train, val, lr=0.05), epochs=3)
    return model.state_dict(), train, val


def test_learned_ranking_prunes_to_the_flops_target_and_is_saved_and_loaded(trained, tmp_path):
    state, train, val = trained
    model = DigitsCNN(width=16)
    model.load_state_dict(state)
    path = tmp_path / "coefficients.json"
    section = legr_section(pruning_flops_target=0.3, pruning_steps=2, save_ranking_coeffs_path=str(path))
    controller, model = create_compressed_model(model, {"input_info": INPUT, "compression": section})
    training_batches = batches(*train, size=32)
    val_batches = batches(*val, size=256)

    def train_steps(model, steps):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
        model.train()
        for (x, y), _ in zip(itertools.cycle(training_batches), range(steps), strict=False):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    @torch.no_grad()
    def minus_loss(model):
        model.eval()
        return -sum(float(F.cross_entropy(model(x), y)) for x, y in val_batches)

    before = {k: v.clone() for k, v in model.state_dict().items() if "original" in k}
    ranking = learn_ranking(controller, train_steps, minus_loss)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the candidates' training is undone
    assert controller.interlayer_ranking is ranking and set(ranking.coefficients) == {"conv1", "conv2"}
    assert json.loads(path.read_text()) == {k: list(v) for k, v in ranking.coefficients.items()}
    for _ in range(3):
        controller.scheduler.epoch_step()
    assert controller.compression_rate == pytest.approx(0.3, abs=0.02)  # the FLOPs target

    again = legr_section(pruning_flops_target=0.3, load_ranking_coeffs_path=str(path))
    loaded, other = create_compressed_model(DigitsCNN(width=16), {"input_info": INPUT, "compression": again})
    other.load_state_dict(model.state_dict())
    assert loaded.interlayer_ranking == ranking
    loaded.compression_rate = controller.compression_rate
    assert all(np.array_equal(a, b) for a, b in zip(loaded._read_masks(), controller._read_masks(), strict=True))


def test_a_coefficient_file_written_by_nncf_names_layers_by_nncf_node_names(tmp_path):
    path = tmp_path / "nncf.json"
    path.write_text(json.dumps({"DigitsCNN/NNCFConv2d[conv1]/conv2d_0": [2.0, 0.5], "DigitsCNN/NNCFConv2d[conv2]/conv2d_0": [1.0, 0.0]}))
    controller, _ = create_compressed_model(
        DigitsCNN(), {"input_info": INPUT, "compression": legr_section(load_ranking_coeffs_path=str(path))}
    )
    assert controller.interlayer_ranking == LearnedRanking({"conv1": (2.0, 0.5), "conv2": (1.0, 0.0)})
    path.write_text(json.dumps({"DigitsCNN/NNCFConv2d[conv9]/conv2d_0": [2.0, 0.5]}))
    with pytest.raises(ConfigError, match=r"params.load_ranking_coeffs_path: .*1 entries name no layer"):
        create_compressed_model(DigitsCNN(), {"input_info": INPUT, "compression": legr_section(load_ranking_coeffs_path=str(path))})


def test_learn_ranking_needs_a_learned_ranking_section():
    controller, _ = create_compressed_model(DigitsCNN(), {"compression": {"algorithm": "filter_pruning"}})
    with pytest.raises(Exception, match="interlayer_ranking_type is not 'learned_ranking'"):
        learn_ranking(controller, lambda model, steps: None, lambda model: 0.0)
