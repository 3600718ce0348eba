"""One controller for several algorithms applied to the same model.

The adaptive loop drives the single *adaptive* child (``adaptive = True``); every other child keeps
its own schedule running, so quantization goes on training while pruning's level is searched.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from functools import reduce
from typing import Any

from aac.core.api import CompressionAlgorithm, CompressionLoss, CompressionScheduler, CompressionStage
from aac.core.errors import CompressionRateError
from aac.core.statistics import CompressionStatistics


class CompositeLoss(CompressionLoss):
    """Sum of the children's losses."""

    def __init__(self, children: Sequence[CompressionAlgorithm]) -> None:
        self._children = children

    def forward(self) -> Any:
        return sum((child.loss() for child in self._children), 0.0)

    def statistics(self) -> dict[str, float]:
        return {f"{c.name}/{k}": v for c in self._children for k, v in c.loss.statistics().items()}


class CompositeScheduler(CompressionScheduler):
    """Fans ``step``/``epoch_step`` out to the children's *current* schedulers.

    It reads ``child.scheduler`` on every call, so a child whose scheduler was disabled (replaced by a
    stub) stops moving while its siblings carry on.
    """

    def __init__(self, children: Sequence[CompressionAlgorithm]) -> None:
        super().__init__()
        self._children = children

    def _on_step(self) -> None:
        for child in self._children:
            child.scheduler.step(self.current_step)

    def _on_epoch(self) -> None:
        for child in self._children:
            child.scheduler.epoch_step(self.current_epoch)

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "children": [c.scheduler.get_state() for c in self._children]}

    def load_state(self, state: Mapping[str, Any]) -> None:
        super().load_state(state)
        for child, child_state in zip(self._children, state["children"], strict=True):
            child.scheduler.load_state(child_state)


class CompositeController(CompressionAlgorithm):
    """A controller made of several algorithms; ``compression_rate`` is that of the adaptive child."""

    name = "composite"

    def __init__(self, children: Sequence[CompressionAlgorithm]) -> None:
        models = {id(c.model) for c in children}
        if len(models) > 1:
            raise ValueError("all algorithms of a composite controller must compress the same model object")
        super().__init__(children[0].model if children else None)
        self.children: list[CompressionAlgorithm] = list(children)
        self._scheduler = CompositeScheduler(self.children)
        self._loss = CompositeLoss(self.children)

    @property
    def adaptive_child(self) -> CompressionAlgorithm | None:
        """The child whose level the adaptive loop searches (None when there is none)."""
        adaptive = [c for c in self.children if c.adaptive]
        return adaptive[0] if len(adaptive) == 1 else None

    def _require_adaptive(self) -> CompressionAlgorithm:
        child = self.adaptive_child
        if child is None:
            names = [c.name for c in self.children if c.adaptive]
            raise CompressionRateError(
                "a composite controller has a compression rate only with exactly one adaptive-level "
                f"algorithm; it has {len(names)}: {names}"
            )
        return child

    @property
    def compression_rate(self) -> float:
        return self._require_adaptive().compression_rate

    @compression_rate.setter
    def compression_rate(self, value: float) -> None:
        self._require_adaptive().compression_rate = value

    @property
    def maximal_compression_rate(self) -> float:
        child = self.adaptive_child
        return child.maximal_compression_rate if child else min((c.maximal_compression_rate for c in self.children), default=1.0)

    def reachable_compression_rate(self, rate: float) -> float:
        return self._require_adaptive().reachable_compression_rate(rate)

    def adapt_to_compression(self) -> bool:
        """The children share one model: the first child that can adapt it does so for all."""
        return any(child.adapt_to_compression() for child in self.children)

    def compression_stage(self) -> CompressionStage:
        stages = [c.compression_stage() for c in self.children]
        return reduce(lambda a, b: a + b, stages) if stages else CompressionStage.FULLY_COMPRESSED

    def disable_scheduler(self) -> None:
        """Disable every child's schedule (the adaptive loop disables only the adaptive child's)."""
        for child in self.children:
            child.disable_scheduler()

    @property
    def scheduler_disabled(self) -> bool:
        return all(c.scheduler_disabled for c in self.children)

    def distributed(self) -> None:
        for child in self.children:
            child.distributed()

    def initialize(self, data_loader: Any, **kwargs: Any) -> None:
        """Each algorithm gets the same data and the keywords its ``initialize`` takes (``input_fn=`` on PyTorch,
        ``batch_size=`` on Keras, quantization's ``criterion=``); a keyword no algorithm takes is an error."""
        taken = [_keywords_of(child.initialize, kwargs) for child in self.children]
        unused = sorted(set(kwargs) - {key for keys in taken for key in keys})
        if unused:
            raise TypeError(f"initialize() got keyword(s) {unused} that none of {[c.name for c in self.children]} takes")
        for child, keys in zip(self.children, taken, strict=True):
            child.initialize(data_loader, **{key: kwargs[key] for key in keys})

    def strip_model(self, model: Any) -> Any:
        for child in self.children:
            model = child.strip_model(model)
        return model

    def prepare_for_export(self, stripped_model: Any) -> None:
        for child in self.children:
            child.prepare_for_export(stripped_model)

    def _export(self, stripped_model: Any, path: Any, **kwargs: Any) -> None:
        self.children[0]._export(stripped_model, path, **kwargs)  # the writer is the backend's, shared by all

    def finish_export(self, path: Any) -> None:
        for child in self.children:
            child.finish_export(path)

    def statistics(self) -> CompressionStatistics:
        return reduce(lambda a, b: a.merged(b), (c.statistics() for c in self.children), CompressionStatistics())

    def get_state(self) -> dict[str, Any]:
        # the composite scheduler's own counters: without them a restored composite restarts every
        # child's schedule at epoch 0 on the next epoch_step()
        counters = CompressionScheduler.get_state(self._scheduler)
        return {"algorithm": self.name, "scheduler": counters, "children": {c.name: c.get_state() for c in self.children}}

    def load_state(self, state: Mapping[str, Any]) -> None:
        children = state.get("children", {})
        missing = [c.name for c in self.children if c.name not in children]
        if missing:
            raise KeyError(f"compression state has no entry for algorithm(s) {missing}; it has {sorted(children)}")
        for child in self.children:
            child.load_state(children[child.name])
        if "scheduler" in state:
            CompressionScheduler.load_state(self._scheduler, state["scheduler"])


def _keywords_of(method: Callable[..., Any], kwargs: Mapping[str, Any]) -> list[str]:
    """The keywords of ``kwargs`` that ``method`` accepts (all of them if it takes ``**kwargs``)."""
    parameters = inspect.signature(method).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return list(kwargs)
    names = {p.name for p in parameters if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)}
    return [key for key in kwargs if key in names]
