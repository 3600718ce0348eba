"""Group keep-masks onto layer tensors: what masking and physical removal share on every backend.

A group's keep mask (one boolean per filter) becomes, on each planned layer, a vector along that
layer's output or input channel axis (:meth:`~aac.pruning.groups.ChannelLayout.keep_vector`: runs of
other groups, fixed channels, flatten repeats). :class:`ChannelMasks` keeps the list of masks a
backend attached and writes and reads them; :func:`channel_indices` gives the entries that survive
physical removal. The backend only says how to create, assign and read one mask.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Generic, TypeVar

import numpy as np

from aac.core.graph import Metatype
from aac.pruning.groups import ChannelLayout, LayerPlan, PruningAnalysis

MaskT = TypeVar("MaskT")
_PRODUCERS = (Metatype.CONV, Metatype.LINEAR, Metatype.ATTENTION)


class ChannelMasks(ABC, Generic[MaskT]):
    """The masks filter pruning put on a model, and how the groups' keep masks map onto them.

    Every planned layer whose output channels change and that has parameters to mask gets, from
    :meth:`_attach`, one all-ones mask per masked tensor. Each group is read back from the mask of
    one of its producers (a convolution, linear or attention layer whose whole output is that group).
    """

    def __init__(self, analysis: PruningAnalysis) -> None:
        self._entries: list[tuple[ChannelLayout, MaskT]] = []
        self._group_masks: dict[int, MaskT] = {}
        for plan in analysis.layers.values():
            if plan.outputs is None or not plan.masked:
                continue
            for mask, layout in self._attach_layouts(plan):
                self._entries.append((layout, mask))
                if plan.metatype in _PRODUCERS and layout == plan.outputs and len(layout.runs) == 1 and layout.repeat == 1:
                    group = layout.runs[0].group
                    if group is not None:
                        self._group_masks.setdefault(group, mask)
        self._groups = len(analysis.groups)

    @abstractmethod
    def _attach(self, plan: LayerPlan) -> Sequence[MaskT]:
        """Put an all-ones mask on each output-channel tensor of ``plan.layer`` (weights, biases, norm scales)."""

    def _attach_layouts(self, plan: LayerPlan) -> Sequence[tuple[MaskT, ChannelLayout]]:
        """:meth:`_attach`'s masks with the layout of the axis each covers: the output channels, unless a backend
        masks tensors laid out otherwise (an attention layer's packed query/key/value rows)."""
        assert plan.outputs is not None
        return [(mask, plan.outputs) for mask in self._attach(plan)]

    @abstractmethod
    def _assign(self, mask: MaskT, values: np.ndarray) -> None:
        """Set ``mask`` to ``values`` (float32, one entry per output channel of its layer)."""

    @abstractmethod
    def _values(self, mask: MaskT) -> np.ndarray:
        """The current values of ``mask`` as a NumPy array (any shape with one entry per channel)."""

    def write(self, keep: Sequence[np.ndarray]) -> None:
        """Make every mask drop what ``keep[group]`` (a boolean array per group) drops."""
        for layout, mask in self._entries:
            self._assign(mask, layout.keep_vector(keep).astype(np.float32))

    def read(self) -> list[np.ndarray]:
        """The boolean keep mask of each group, as the model holds it now."""
        return [np.asarray(self._values(self._group_masks[g])).ravel() > 0.5 for g in range(self._groups)]


def channel_indices(layout: ChannelLayout | None, keep: Sequence[np.ndarray]) -> np.ndarray | None:
    """Entries of a layer's channel axis that physical removal keeps, in the stripped model's order (None: the axis does not change)."""
    if layout is None:
        return None
    return layout.kept_indices(keep)
