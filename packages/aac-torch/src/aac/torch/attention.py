"""Attention layers aac treats as single operations, and what their tensors and attributes mean.

Multi-head attention splits its channels into heads by reshapes whose sizes are Python attributes
(``self.num_heads``) the traced graph only shows as numbers, so no graph analysis can tell whether
removing channels keeps the code working. aac therefore keeps an attention layer it knows whole while
tracing (one :attr:`~aac.core.graph.Metatype.ATTENTION` node) and describes it with an
:class:`AttentionSpec`: where the packed query/key/value projection and the output projection are,
which attribute holds the number of heads, which tensors have one entry per head. Algorithms use the
spec to remove whole heads (rows of the projections, entries of per-head tensors) and to update the
attributes, and the FLOPs count uses :attr:`AttentionSpec.geometry`.

Known layers: ``torch.nn.MultiheadAttention`` and torchvision's ``ShiftedWindowAttention`` (Swin).
:func:`register_attention` adds a model's own layer of the same shape: a packed ``3 * dim`` input
projection, an output projection back to ``dim``, heads of ``dim / num_heads`` channels, the inner
width equal to the input and output width, and sizes read from the input at run time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.parametrize import type_before_parametrizations

#: (query positions, key positions, keys each query attends to) per sample, from the input shapes
Geometry = tuple[float, float, float]


@dataclass(frozen=True)
class Projection:
    """A projection's tensors: ``module`` is a submodule path relative to the attention layer ("" for the layer itself)."""

    module: str
    weight: str = "weight"
    bias: str = "bias"

    def tensors(self, layer: nn.Module) -> tuple[nn.Module, str, str | None]:
        """(owner module, weight name, bias name or None when the layer has no bias)."""
        owner = layer.get_submodule(self.module) if self.module else layer
        bias = self.bias if isinstance(getattr(owner, self.bias, None), torch.Tensor) else None
        return owner, self.weight, bias


@dataclass(frozen=True)
class AttentionSpec:
    """How one attention layer class is laid out.

    :ivar qkv: the packed input projection; its rows are queries, keys and values, each ``num_heads``
        consecutive blocks of ``head_dim`` rows.
    :ivar out: the output projection (its columns are the heads' outputs).
    :ivar geometry: ``(layer, query shape, key shape) -> (query positions, key positions, keys per query)``
        per sample, for FLOPs.
    :ivar num_heads: the attribute holding the number of heads.
    :ivar width_attributes: attributes equal to the layer's width, set to the new width after pruning.
    :ivar head_tensors: tensors with one entry per head (path relative to the layer -> that axis).
    :ivar problem: why a particular layer of the class cannot lose heads (an option aac does not follow), or None.
    """

    qkv: Projection
    out: Projection
    geometry: Callable[[nn.Module, Sequence[int], Sequence[int]], Geometry]
    num_heads: str = "num_heads"
    width_attributes: tuple[str, ...] = ()
    head_tensors: Mapping[str, int] = field(default_factory=dict)
    problem: Callable[[nn.Module], str | None] = lambda layer: None

    def heads(self, layer: nn.Module) -> int:
        return int(getattr(layer, self.num_heads))

    def width(self, layer: nn.Module) -> int:
        owner, weight, _ = self.out.tensors(layer)
        return int(getattr(owner, weight).shape[0])

    def head_parameters(self, layer: nn.Module) -> int:
        """Entries of the per-head tensors, per head."""
        heads = self.heads(layer)
        return sum(_tensor(layer, path).numel() // heads for path in self.head_tensors)


def _tensor(layer: nn.Module, path: str) -> torch.Tensor:
    owner, _, name = path.rpartition(".")
    tensor = getattr(layer.get_submodule(owner) if owner else layer, name)
    assert isinstance(tensor, torch.Tensor)
    return tensor


def _mha_geometry(layer: nn.Module, query: Sequence[int], key: Sequence[int]) -> Geometry:
    axis = 1 if getattr(layer, "batch_first", False) and len(query) == 3 else 0
    return float(query[axis]), float(key[axis]), float(key[axis])


def _mha_problem(layer: nn.Module) -> str | None:
    if not layer._qkv_same_embed_dim:
        return "its keys and values have their own widths (kdim, vdim)"
    if layer.bias_k is not None or layer.add_zero_attn:
        return "it adds learned or zero key/value positions (add_bias_kv, add_zero_attn)"
    return None


def _window_geometry(layer: nn.Module, query: Sequence[int], key: Sequence[int]) -> Geometry:
    """Swin's window attention on ``[B, H, W, C]``: the input is padded to whole windows."""
    height, width = (math.ceil(extent / size) * size for extent, size in zip(query[-3:-1], layer.window_size, strict=True))
    tokens = float(height * width)
    return tokens, tokens, float(layer.window_size[0] * layer.window_size[1])


MULTIHEAD_ATTENTION = AttentionSpec(
    qkv=Projection("", "in_proj_weight", "in_proj_bias"),
    out=Projection("out_proj"),
    geometry=_mha_geometry,
    width_attributes=("embed_dim", "kdim", "vdim"),
    problem=_mha_problem,
)
#: torchvision's ``ShiftedWindowAttention`` (Swin v1): ``self.qkv``, ``self.proj``, a relative position bias table per head
WINDOW_ATTENTION = AttentionSpec(
    qkv=Projection("qkv"),
    out=Projection("proj"),
    geometry=_window_geometry,
    head_tensors={"relative_position_bias_table": 1},
)

_BY_CLASS: dict[type, AttentionSpec] = {nn.MultiheadAttention: MULTIHEAD_ATTENTION}
#: classes of packages aac does not import, by ``module.qualname`` (exact class: a subclass may compute differently)
_BY_NAME: dict[str, AttentionSpec] = {"torchvision.models.swin_transformer.ShiftedWindowAttention": WINDOW_ATTENTION}


def register_attention(cls: type[nn.Module], spec: AttentionSpec) -> None:
    """Make aac treat layers of exactly ``cls`` as attention described by ``spec`` (see the module docstring)."""
    _BY_CLASS[cls] = spec


def attention_spec(module: nn.Module) -> AttentionSpec | None:
    """The spec of ``module``'s exact class (before weight transforms), or None if it is not an attention layer aac knows."""
    cls = type_before_parametrizations(module)
    return _BY_CLASS.get(cls) or _BY_NAME.get(f"{cls.__module__}.{cls.__qualname__}")
