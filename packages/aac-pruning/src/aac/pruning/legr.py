"""LeGR: learn the per-layer ranking coefficients of ``learned_ranking`` with an evolutionary search.

Chin et al., "Towards Efficient Model Compression via Learned Global Ranking" (2020), as NNCF runs it:
each candidate gives every ranked layer an affine map ``(a, b)`` of its filter importance
(:class:`~aac.pruning.ranking.LearnedRanking`); the model is pruned to ``legr_params.max_pruning`` with
that ranking, trained for ``train_steps`` steps and scored; the best-scoring candidate wins. The
candidates (:class:`EvolutionarySearch`):

* the first is the identity ``(1, 0)`` everywhere - the raw importance - so the result is never worse
  on the score than no learning (NNCF evaluates it as the last of its random candidates);
* until ``population_size`` candidates have been scored, each layer gets ``a = exp(N(0, scale_sigma))``
  and ``b = N(0, s_l)``, ``s_l`` the spread of that layer's filter importance;
* after that, ``num_samples`` scored candidates are drawn from the population (the latest
  ``population_size``), the best of them is copied and ``mutate_percent`` of its layers (at least one)
  are perturbed the same way, the scale's spread shrinking over the generations.

One random generator seeded with ``random_seed`` drives the whole search, so a run is reproducible
(NNCF reseeded it for every candidate, which made all its random candidates the same).

Everything here is framework-neutral: the model's weights are saved and restored with its backend's
``model_state`` (masks included), and the pruning math is the controller's own. The user supplies
what only they know: how to train a few steps and how to score a model.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from aac.core.errors import AacError
from aac.core.graph import Metatype
from aac.core.plugins import default_registry
from aac.pruning.algorithm import FilterPruningAlgorithm
from aac.pruning.legr_config import LEARNED, LeGRParams
from aac.pruning.ranking import LearnedRanking

logger = logging.getLogger("aac.pruning.legr")
_RANKED = (Metatype.CONV, Metatype.LINEAR)


class EvolutionarySearch:
    """Asks for candidate rankings and is told their scores; :attr:`best` is the best scored so far."""

    def __init__(self, spreads: dict[str, float], params: LeGRParams) -> None:
        """:param spreads: ranked layer -> spread (standard deviation) of its filter importance, the scale of its shifts."""
        self.spreads = spreads
        self.params = params
        self.population: deque[tuple[LearnedRanking, float]] = deque(maxlen=params.population_size)
        self.best: tuple[LearnedRanking, float] | None = None
        self.generation = 0
        self._random = np.random.default_rng(params.random_seed)

    def ask(self) -> LearnedRanking:
        layers = list(self.spreads)
        if self.generation == 0:
            return LearnedRanking(dict.fromkeys(layers, (1.0, 0.0)))
        if len(self.population) < self.params.population_size:
            return LearnedRanking({layer: self._perturb(layer, (1.0, 0.0), self.params.scale_sigma) for layer in layers})
        drawn = self._random.integers(len(self.population), size=self.params.num_samples)
        parent = max((self.population[i] for i in drawn), key=lambda candidate: candidate[1])[0]
        count = min(len(layers), max(1, int(self.params.mutate_percent * len(layers))))
        mutated = set(self._random.choice(len(layers), size=count, replace=False).tolist())
        sigma = self.params.scale_sigma * max(0.0, 1.0 - self.generation / (1.25 * self.params.generations))
        return LearnedRanking(
            {
                layer: self._perturb(layer, parent.coefficients[layer], sigma) if i in mutated else parent.coefficients[layer]
                for i, layer in enumerate(layers)
            }
        )

    def tell(self, candidate: LearnedRanking, score: float) -> None:
        self.population.append((candidate, score))
        if self.best is None or score > self.best[1]:
            self.best = (candidate, score)
        self.generation += 1

    def _perturb(self, layer: str, coefficients: tuple[float, float], sigma: float) -> tuple[float, float]:
        scale, shift = coefficients
        return scale * float(np.exp(self._random.normal(0.0, sigma))), shift + float(self._random.normal(0.0, self.spreads[layer]))


def filter_pruning_of(controller: Any) -> FilterPruningAlgorithm:
    """The filter-pruning algorithm of a controller (itself, or the child of a composite)."""
    for candidate in (controller, *getattr(controller, "children", ())):
        if isinstance(candidate, FilterPruningAlgorithm):
            return candidate
    raise AacError(f"learn_ranking needs a filter_pruning controller; got {type(controller).__name__}")


def learn_ranking(controller: Any, train_steps_fn: Callable[[Any, int], object], score_fn: Callable[[Any], float]) -> LearnedRanking:
    """Learn the ranking coefficients of a ``learned_ranking`` filter-pruning controller, and use them.

    Call it after ``create_compressed_model`` (and ``controller.initialize``), before training. The
    model ends as it began - same weights, same level - but ranked by the best coefficients found,
    which are also written to ``save_ranking_coeffs_path`` when the config names one.

    :param controller: the controller ``create_compressed_model`` returned (or its filter-pruning child).
    :param train_steps_fn: ``train_steps_fn(model, steps)`` trains the pruned model for ``steps`` optimizer
        steps, with a fresh optimizer (NNCF's ``train_steps_fn`` with its loader and optimizer bound).
    :param score_fn: ``score_fn(model) -> float``, higher is better: NNCF scores with minus the
        validation loss; an accuracy works too.
    """
    pruning = filter_pruning_of(controller)
    section = pruning.section
    if section.params.get("interlayer_ranking_type") != LEARNED:
        raise AacError(f"learn_ranking: {section.path}.params.interlayer_ranking_type is not 'learned_ranking'")
    params = LeGRParams.from_params(section.params)
    level = pruning.params.target if params.max_pruning is None else params.max_pruning
    search = EvolutionarySearch(_importance_spreads(pruning), params)
    backend = default_registry().backend_for(pruning.model).create()
    start, start_level = backend.model_state(pruning.model), pruning._level
    for generation in range(params.generations):
        candidate = search.ask()
        backend.load_model_state(pruning.model, start)
        pruning.interlayer_ranking = candidate
        pruning._set_level(level)
        train_steps_fn(pruning.model, params.train_steps)
        score = float(score_fn(pruning.model))
        search.tell(candidate, score)
        logger.info("[aac] LeGR generation %d/%d: score %.4f (best %.4f)", generation + 1, params.generations, score, search.best[1])
    assert search.best is not None  # generations >= 1 (the schema's minimum)
    backend.load_model_state(pruning.model, start)
    pruning.interlayer_ranking = search.best[0]
    pruning._set_level(start_level)
    if section.params.get("save_ranking_coeffs_path"):
        search.best[0].save(section.params["save_ranking_coeffs_path"])
    return search.best[0]


def _importance_spreads(pruning: FilterPruningAlgorithm) -> dict[str, float]:
    """Each ranked layer's spread of filter importance, in the order the algorithm scores layers."""
    return {
        plan.layer: float(np.std(pruning._importance(pruning.ops.layer_filters(plan.layer))))
        for plan in pruning.analysis.layers.values()
        if plan.outputs is not None and plan.metatype in _RANKED
    }
