"""Weight transforms: how every torch algorithm changes what a layer computes without replacing it.

A transform is a ``torch.nn.utils.parametrize`` parametrization of a layer's tensor (``weight``,
``bias``…): the stored parameter stays untouched and the layer sees ``transform(parameter)`` on each
forward. That gives the properties compression needs:

* the user's model object and its call signature are unchanged - no wrapper, no module swap;
* nothing is destroyed: lowering a pruning or sparsity level brings the old weights back;
* a transform's own tensors (masks, scales) are buffers or parameters of the transform module, so
  ``state_dict()``, ``.to(device)`` and DDP handle them like any other;
* several algorithms can stack transforms on one tensor (a mask, then fake quantization); they
  run in registration order.

Each transform records the algorithm that owns it, so that one algorithm can fold (bake in) its own
transforms at strip time and leave the others alone.

Note that parametrization moves a tensor's parameter in ``state_dict()``: ``conv.weight`` becomes
``conv.parametrizations.weight.original``. Checkpoints of the compressed model load into a model
compressed with the same config.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from aac.core.errors import AacError


class TransformError(AacError):
    """A weight transform cannot be added or folded as asked."""


class WeightTransform(nn.Module):
    """Base class of every transform aac registers; ``owner`` is the algorithm's name."""

    def __init__(self, owner: str) -> None:
        super().__init__()
        self.owner = owner

    def select_channels(self, axis: int, index: torch.Tensor) -> None:
        """Keep only entries ``index`` along ``axis`` of any per-channel state of this transform.

        Called by :func:`cut_channels` when structured pruning removes channels of the tensor this
        transform acts on. A transform whose state has one entry per channel (a per-channel
        quantization scale, an element mask) must override it; the default suits per-tensor state.
        """


class Mask(WeightTransform):
    """Multiplies the tensor by a mask buffer that broadcasts against it (channel or element masks).

    The mask is a buffer (saved in ``state_dict``, moved by ``.to()``); algorithms update it in place
    with :meth:`update` so that references held elsewhere, e.g. by DDP, stay valid.
    """

    mask: torch.Tensor

    def __init__(self, mask: torch.Tensor, owner: str) -> None:
        super().__init__(owner)
        self.register_buffer("mask", mask)

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor * self.mask

    @torch.no_grad()
    def update(self, values: torch.Tensor) -> None:
        self.mask.copy_(values.reshape(self.mask.shape))

    def select_channels(self, axis: int, index: torch.Tensor) -> None:
        if self.mask.dim() > axis and self.mask.shape[axis] > 1:
            self.mask = self.mask.index_select(axis, index.to(self.mask.device))


def add_transform(module: nn.Module, tensor_name: str, transform: WeightTransform) -> None:
    """Make ``module`` see ``transform(tensor)`` instead of its ``tensor_name`` (after earlier transforms)."""
    if not isinstance(getattr(module, tensor_name, None), torch.Tensor):
        raise TransformError(f"{type(module).__name__} has no tensor '{tensor_name}' to transform")
    parametrize.register_parametrization(module, tensor_name, transform)


def transforms_of(module: nn.Module, tensor_name: str) -> list[WeightTransform]:
    """The aac transforms on ``module.<tensor_name>``, in the order they run."""
    if not parametrize.is_parametrized(module, tensor_name):
        return []
    return [t for t in module.parametrizations[tensor_name] if isinstance(t, WeightTransform)]


def has_transforms(model: nn.Module, owner: str | None = None) -> bool:
    """True if any module of ``model`` carries an aac transform (of ``owner``, when given)."""
    return any(isinstance(m, WeightTransform) and owner in (None, m.owner) for m in model.modules())


def original(module: nn.Module, tensor_name: str) -> torch.Tensor:
    """The stored tensor before any transform (the tensor itself if it has none)."""
    if parametrize.is_parametrized(module, tensor_name):
        return module.parametrizations[tensor_name].original
    tensor: torch.Tensor = getattr(module, tensor_name)
    return tensor


@torch.no_grad()
def fold_transforms(module: nn.Module, tensor_name: str, owner: str) -> None:
    """Bake ``owner``'s transforms of one tensor into the stored tensor and remove them.

    Transforms of other algorithms stay registered. ``owner``'s transforms must come first in the
    chain (they act on the raw tensor); a transform of ``owner`` after another algorithm's cannot be
    folded without folding that one too, so it is reported instead.
    """
    chain = list(module.parametrizations[tensor_name]) if parametrize.is_parametrized(module, tensor_name) else []
    owned = [isinstance(t, WeightTransform) and t.owner == owner for t in chain]
    count = owned.index(False) if False in owned else len(owned)
    if any(owned[count:]):
        foreign = chain[count]
        raise TransformError(
            f"cannot fold the '{owner}' transform of {type(module).__name__}.{tensor_name}: it runs after "
            f"{type(foreign).__name__} of '{getattr(foreign, 'owner', '?')}'; strip that algorithm first"
        )
    if count == 0:
        return
    value = module.parametrizations[tensor_name].original
    for transform in chain[:count]:
        value = transform(value)
    rest = chain[count:]
    detach_parametrized_class(module)
    parametrize.remove_parametrizations(module, tensor_name, leave_parametrized=False)
    getattr(module, tensor_name).copy_(value)
    for transform in rest:
        parametrize.register_parametrization(module, tensor_name, transform)


@torch.no_grad()
def cut_channels(module: nn.Module, tensor_name: str, axis: int, index: torch.Tensor) -> None:
    """Physically keep only entries ``index`` along ``axis`` of ``module.<tensor_name>``.

    Works under transforms: the stored tensor is cut and every transform on it cuts its own
    per-channel state (:meth:`WeightTransform.select_channels`), so algorithms stacked on a pruned
    layer keep working on the smaller layer.
    """
    tensor = original(module, tensor_name)
    smaller = tensor.detach().index_select(axis, index.to(tensor.device)).clone()
    if isinstance(tensor, nn.Parameter):
        smaller = nn.Parameter(smaller, requires_grad=tensor.requires_grad)
    if parametrize.is_parametrized(module, tensor_name):
        module.parametrizations[tensor_name].original = smaller
        for transform in transforms_of(module, tensor_name):
            transform.select_channels(axis, index)
    else:
        setattr(module, tensor_name, smaller)


def remove_transforms(model: nn.Module, owner: str) -> None:
    """Drop every transform of ``owner`` without baking it in, for transforms that have become identities
    (a pruning mask once its zeroed channels were cut away); other owners' transforms stay in order."""
    for module in list(model.modules()):
        if not parametrize.is_parametrized(module):
            continue
        for tensor_name in list(module.parametrizations):
            chain = list(module.parametrizations[tensor_name])
            kept = [t for t in chain if not (isinstance(t, WeightTransform) and t.owner == owner)]
            if len(kept) == len(chain):
                continue
            detach_parametrized_class(module)
            parametrize.remove_parametrizations(module, tensor_name, leave_parametrized=False)
            for transform in kept:
                parametrize.register_parametrization(module, tensor_name, transform)


def detach_parametrized_class(module: nn.Module) -> None:
    """Give a parametrized module a class of its own before removing a parametrization.

    parametrize injects one class per module, but ``copy.deepcopy`` shares it between the module and
    its copy; removing a parametrization deletes a property *from the class*, which would break the
    other module (the model still training, when the copy is being stripped).
    """
    cls = type(module)
    module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))


def fold_all(model: nn.Module, owner: str) -> None:
    """Fold every transform of ``owner`` in ``model`` (see :func:`fold_transforms`)."""
    for module in list(model.modules()):
        if parametrize.is_parametrized(module):
            for tensor_name in list(module.parametrizations):
                fold_transforms(module, tensor_name, owner)
