"""The filter-pruning controller, minus the framework: levels, schedule, rate, state and statistics.

:class:`FilterPruningAlgorithm` owns everything that decides *what* to prune. It receives a
:class:`PruningOps` - implemented once for PyTorch (``aac.pruning.torch.algorithm.TorchPruningOps``) and
once for Keras (``aac.pruning.tf.algorithm.TFPruningOps``) - for the few things that touch tensors:
the graph as pruning sees it, attaching masks, reading a layer's weights, writing and reading the
group masks, and cutting the pruned channels out of a stripped copy. ``TorchFilterPruning`` and
``TFFilterPruning`` only bind the ops to a prepared model.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

import numpy as np

from aac.core.api import CompressionStage, checked_rate
from aac.core.config import AlgorithmSection
from aac.core.errors import CheckpointError, CompressionRateError, ConfigError, ConfigProblem
from aac.core.framework import Framework, FrameworkAlgorithm
from aac.core.graph import Graph, Metatype
from aac.core.statistics import AlgorithmStatistics
from aac.pruning.cost import CostModel
from aac.pruning.groups import PruningAnalysis, PruningRules, analyze
from aac.pruning.importance import IMPORTANCE
from aac.pruning.levels import LevelSolver, group_unit, top_filters
from aac.pruning.params import FilterPruningParams
from aac.pruning.ranking import InterlayerRanking, interlayer_ranking
from aac.pruning.report import coverage, coverage_line, kept_counts, kept_summary, pruning_statistics
from aac.pruning.schedule import SCHEDULES, PruningScheduler


class PruningCoverageWarning(UserWarning):
    """Filter pruning can reach fewer than half of the model's layers (see docs/pruning.md)."""


#: tolerance for "the level has reached the target"
STAGE_TOLERANCE = 1e-5
_WEIGHTED = (Metatype.CONV, Metatype.LINEAR, Metatype.ATTENTION)


class PruningOps(Protocol):
    """What filter pruning needs of a framework, for one prepared model.

    Layers are named as in :attr:`graph` (the analysis' names); :meth:`scope_path` maps one to the path
    ``ignored_scopes`` / ``target_scopes`` select.
    """

    @property
    def framework(self) -> Framework:
        """What every algorithm needs of the backend (copy, fold, export, batch-norm adaptation)."""
        ...

    @property
    def graph(self) -> Graph:
        """The model's graph as filter pruning must see it (layers it cannot mask made opaque)."""
        ...

    @property
    def grouped_convolutions(self) -> bool:
        """True if the backend prunes grouped convolutions exactly (see :class:`~aac.pruning.groups.PruningRules`)."""
        ...

    @property
    def norm_statistics(self) -> bool:
        """True if the backend restricts layer-norm statistics to the kept channels (see :class:`~aac.pruning.groups.PruningRules`)."""
        ...

    def scope_path(self, layer: str) -> str:
        """The path of the model's layer behind ``layer`` of the graph (for the section's scopes)."""
        ...

    def parameter_count(self) -> int:
        """Parameters of the model itself, before any mask is attached."""
        ...

    def unremovable(self, analysis: PruningAnalysis) -> dict[int, str]:
        """Group id -> why strip cannot physically remove that group's filters (they are zeroed instead)."""
        ...

    def attach_masks(self, analysis: PruningAnalysis, owner: str) -> None:
        """Put an all-ones mask, owned by ``owner``, on every layer the analysis plans to change."""
        ...

    def layer_filters(self, layer: str) -> np.ndarray:
        """The layer's stored (unmasked) weights, one row per output channel."""
        ...

    def write_masks(self, keep: Sequence[np.ndarray]) -> None:
        """Make every planned layer mask what ``keep[group]`` (a boolean array per group) drops."""
        ...

    def read_masks(self) -> list[np.ndarray]:
        """The boolean keep mask of each group, as the model holds it now."""
        ...

    def remove_channels(self, model: Any, analysis: PruningAnalysis, keep: Sequence[np.ndarray], owner: str) -> Any:
        """Strip ``model`` (a copy of the live model): drop ``owner``'s masks and the channels ``keep`` drops."""
        ...


class FilterPruningAlgorithm(FrameworkAlgorithm):
    """Adaptive-level filter pruning.

    ``compression_rate`` is the *measured* fraction removed: of the prunable filters (each group's
    channels counted once), or of the model's FLOPs when ``pruning_flops_target`` is set. The setter
    picks the allocation whose measured rate is closest to the value given, so the getter returns
    (up to channel rounding) what was set - both measure the same thing. Masks act in the forward
    pass and weights are kept, so lowering the rate brings the removed filters back.
    """

    name: ClassVar[str] = "filter_pruning"
    adaptive: ClassVar[bool] = True

    #: group id -> why ``strip()`` cannot physically remove that group's filters (it zeroes them instead);
    #: filled for layers the backend cannot rebuild smaller (TensorFlow: subclassed models)
    unremovable: dict[int, str]
    #: how the layers' scores compare under ``all_weights`` (``interlayer_ranking_type``); LeGR's search sets it
    interlayer_ranking: InterlayerRanking

    def __init__(self, ops: PruningOps, section: AlgorithmSection) -> None:
        super().__init__(ops.framework, section)
        self.ops = ops
        params = FilterPruningParams.from_section(section.raw, section.params, section.path)
        scopes = self.section_scopes
        rules = PruningRules(
            prune_first=params.prune_first_conv,
            prune_downsample=params.prune_downsample_convs,
            prune_batch_norms=params.prune_batch_norms,
            is_ignored=lambda layer: ops.scope_path(layer) in scopes.ignored,
            is_target=lambda layer: not scopes.targets or ops.scope_path(layer) in scopes.targets,
            grouped_convolutions=ops.grouped_convolutions,
            norm_statistics=ops.norm_statistics,
        )
        self.interlayer_ranking = interlayer_ranking(section, self.prepared.scopes)
        model_params = ops.parameter_count()
        graph = ops.graph
        self.params = params
        self.analysis: PruningAnalysis = analyze(graph, rules)
        self.unremovable = ops.unremovable(self.analysis)
        self._warn_if_little_is_prunable()
        self.cost = CostModel(graph, self.analysis)
        if params.flops_mode and not self.cost.has_flops:
            raise ConfigError(
                [
                    ConfigProblem(
                        f"{section.path}.params.pruning_flops_target",
                        'a FLOPs target needs layer output sizes: add "input_info": {"sample_size": [...]} to the config',
                    )
                ]
            )
        self._importance = IMPORTANCE[params.filter_importance]
        self._full = np.array([g.channels for g in self.analysis.groups], dtype=np.int64)
        self._other_params = model_params - self.cost.params(self._full)
        self._full_flops = self.cost.flops(self._full) if self.cost.has_flops else 0.0
        self._maximal = self._solver([np.zeros(c) for c in self._full]).maximal
        self._level = 0.0
        schedule = SCHEDULES[params.schedule](params.pruning_init, params.target, params.pruning_steps)
        self._scheduler = PruningScheduler(
            schedule,
            params.num_init_steps,
            params.pruning_steps,
            self._set_level,
            freeze_immediately=params.schedule == "baseline",
        )
        ops.attach_masks(self.analysis, self.name)
        # NNCF builds the model at pruning_init; the schedule caps every later level at the target
        self._set_level(params.pruning_init if params.pruning_init > params.target else self._scheduler.level_at(0))

    def _warn_if_little_is_prunable(self) -> None:
        """Say at once when fewer than half of the layers (the model's outputs aside) can lose filters, and why:
        NNCF's defaults keep most of a residual network whole, which users otherwise find out after a long run."""
        counts = coverage(self.analysis)
        pruned, total = sum(p for p, _ in counts.values()), sum(t for _, t in counts.values())
        total -= kept_counts(self.analysis).get("model outputs", 0)
        if pruned < 0.5 * total:
            warnings.warn(
                f"filter_pruning: only {coverage_line(self.analysis)}: {kept_summary(self.analysis)}. docs/pruning.md explains "
                "which settings keep layers whole",
                PruningCoverageWarning,
                stacklevel=4,
            )

    # -- masks and stripping ----------------------------------------------------------------
    def _read_masks(self) -> list[np.ndarray]:
        """Each group's boolean keep mask, as the model holds it now."""
        return self.ops.read_masks()

    def _strip(self, model: Any) -> Any:
        """Cut the pruned channels out of ``model`` (a copy); groups in :attr:`unremovable` are zeroed, with a warning."""
        masks = self._read_masks()
        zeroed = [g for g in self.unremovable if not masks[g].all()]
        if zeroed:
            layers = sorted({p for g in zeroed for p in self.analysis.groups[g].producers})
            warnings.warn(
                f"filter_pruning: strip() zeroes the pruned filters of {', '.join(layers[:4])}{' …' if len(layers) > 4 else ''} "
                f"but cannot remove them: {self.unremovable[zeroed[0]]}. The stripped model computes the same, "
                "at the original size",
                UserWarning,
                stacklevel=4,
            )
        return self.ops.remove_channels(model, self.analysis, self._removal_masks(), self.name)

    # -- levels ----------------------------------------------------------------------------
    def _measure(self, kept: np.ndarray) -> float:
        if self.params.flops_mode:
            return 1.0 - self.cost.flops(kept) / self._full_flops if self._full_flops else 0.0
        total = int(self._full.sum())
        return 1.0 - float(np.sum(kept)) / total if total else 0.0

    def _solver(self, scores: Sequence[np.ndarray]) -> LevelSolver:
        units = [group_unit(self.params.filters_multiple_of, g.parts, g.block, g.channels) for g in self.analysis.groups]
        return LevelSolver(self._full, units, self._measure, scores if self.params.all_weights else None)

    def _group_scores(self) -> list[np.ndarray]:
        """Importance of each group's channels, summed over the layers whose filters they are.

        Under ``all_weights`` each layer's scores first go through :attr:`interlayer_ranking`
        (L2-normalised, or LeGR's learned coefficients) and are averaged, so that layers of different
        size and scale can be ranked on one list.
        """
        scores = [np.zeros(c) for c in self._full]
        members = np.zeros(len(self._full))
        for plan in self.analysis.layers.values():
            if plan.outputs is None or plan.metatype not in _WEIGHTED:
                continue
            values = self._importance(self.ops.layer_filters(plan.layer))
            if self.params.all_weights:
                values = self.interlayer_ranking(plan.layer, values)
            for group, channels, group_values in plan.outputs.group_values(values):
                scores[group][channels] += group_values
                members[group] += 1
        if self.params.all_weights:
            scores = [s / max(m, 1.0) for s, m in zip(scores, members, strict=True)]
        return scores

    def _set_level(self, level: float) -> None:
        """Recompute the masks from the current weights for ``level`` (scheduler and setter both come here)."""
        scores = self._group_scores()
        kept = self._solver(scores).solve(level)
        groups = self.analysis.groups
        self.ops.write_masks([top_filters(s, int(k), g.parts, g.block) for s, k, g in zip(scores, kept, groups, strict=True)])
        self._level = float(level)

    def _removal_masks(self) -> list[np.ndarray]:
        """Each group's keep mask as ``strip()`` applies it: groups in :attr:`unremovable` keep every channel."""
        return [np.ones_like(m) if g in self.unremovable else m for g, m in enumerate(self._read_masks())]

    def _kept(self) -> np.ndarray:
        return np.array([int(m.sum()) for m in self._read_masks()], dtype=np.int64)

    @property
    def compression_rate(self) -> float:
        return self._measure(self._kept())

    @compression_rate.setter
    def compression_rate(self, value: float) -> None:
        value = checked_rate(value, self.name)
        if value > self._maximal + 1e-9:
            unit = "FLOPs" if self.params.flops_mode else "filters"
            raise CompressionRateError(
                f"filter_pruning: cannot remove {value:.4f} of the {unit}; at most {self._maximal:.4f} is reachable: "
                f"{kept_summary(self.analysis)}, and each prunable group keeps at least {self.params.filters_multiple_of} "
                "filters (filters_multiple_of)"
            )
        self._set_level(value)

    @property
    def maximal_compression_rate(self) -> float:
        return self._maximal

    def reachable_compression_rate(self, rate: float) -> float:
        """The measured rate of the allocation the setter would choose for ``rate`` (masks untouched).

        Groupwise levels depend only on the channel counts; global ranking also reads the current weights.
        """
        scores = self._group_scores() if self.params.all_weights else [np.zeros(c) for c in self._full]
        return self._measure(self._solver(scores).solve(min(max(rate, 0.0), self._maximal)))

    def compression_stage(self) -> CompressionStage:
        if self._level == 0.0:
            return CompressionStage.UNCOMPRESSED
        if self._level >= self.params.target - STAGE_TOLERANCE:
            return CompressionStage.FULLY_COMPRESSED
        return CompressionStage.PARTIALLY_COMPRESSED

    # -- state -----------------------------------------------------------------------------
    def _get_algorithm_state(self) -> dict[str, Any]:
        """The level and each group's mask (hex-packed bits), so the state alone restores pruning."""
        masks = self._read_masks()
        return {
            "level": self._level,
            "masks": {g.producers[0]: np.packbits(m).tobytes().hex() for g, m in zip(self.analysis.groups, masks, strict=True)},
        }

    def _load_algorithm_state(self, state: Mapping[str, Any]) -> None:
        saved = state.get("masks", {})
        keys = [g.producers[0] for g in self.analysis.groups]
        if set(saved) != set(keys):
            raise CheckpointError(
                "filter_pruning state does not match this model's pruning groups "
                f"(state has {sorted(saved)[:5]}…, model has {keys[:5]}…); was it saved with another model or config?"
            )
        masks = [
            np.unpackbits(np.frombuffer(bytes.fromhex(saved[k]), dtype=np.uint8))[:c].astype(bool)
            for k, c in zip(keys, self._full, strict=True)
        ]
        self.ops.write_masks(masks)
        self._level = float(state.get("level", 0.0))

    # -- statistics ------------------------------------------------------------------------
    def _collect_statistics(self) -> AlgorithmStatistics:
        scalars = {  # compression_rate is the loop's rate; the model_*_removed shares come from pruning_statistics
            "compression_rate": self.compression_rate,
            "pruning_target": self.params.target,
            "maximal_compression_rate": self._maximal,
        }
        unremovable = {self.analysis.groups[g].producers: reason for g, reason in self.unremovable.items()}
        return pruning_statistics(self.name, self.analysis, self.cost, self._kept(), self._other_params, scalars, unremovable)
