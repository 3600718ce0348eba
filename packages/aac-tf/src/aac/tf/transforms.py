"""Weight transforms: how every TensorFlow algorithm changes what a Keras layer computes without replacing it.

A transform is a small Keras layer (:class:`WeightTransform`) attached to one weight of a layer
(``kernel``, ``bias``, ``gamma`` …). Whenever the layer runs, it sees ``transform(weight)`` instead of
the stored variable; the variable itself is never overwritten. That gives what compression needs:

* the user's model object, its class and its call signature stay the same - no model rebuild, no
  layer swap - so Sequential, functional and subclassed models are handled alike;
* nothing is destroyed: lowering a pruning or sparsity level brings the old weights back;
* a transform's own variables (masks, scales, logits) are tracked as a sub-layer of the layer they
  act on, so they are part of ``model.variables``, trainable ones are trained by ``model.fit``, they
  are created as distributed variables under ``tf.distribute`` and aac's checkpoints carry them;
* several algorithms can stack transforms on one weight (a mask, then fake quantization); they run
  in the order they were added, and each records the algorithm that owns it, so that one algorithm
  can fold (bake in) its own transforms at strip time and leave the others alone.

Mechanism: :func:`add_transform` gives the layer an instance-level ``call`` that computes the
transformed weights and runs the layer's own ``call`` inside a :class:`keras.StatelessScope` overlay
mapping each transformed variable to its new value. Reads of the variable inside ``call`` (Keras
reads go through ``Variable.value``) see the transformed tensor; gradients flow through the
transform to the stored variable; every other variable read or write (batch-norm statistics, seed
generators) passes straight through, also when the layer already runs inside an outer stateless
scope (``model.stateless_call``). It works in eager mode, inside ``tf.function``, with XLA and under
``tf.distribute``. Anything the forward pass reads must be a variable (``Mask.update`` assigns):
``model.fit`` traces the forward pass once, so Python floats would be frozen into the graph.

``layer.get_weights()`` and ``model.save_weights()`` of a compressed model include the transforms'
variables; use :meth:`aac.tf.TFCompressionAlgorithm.strip` (or :func:`fold_all`) for a plain model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import keras
import numpy as np
from keras import ops

from aac.core.errors import AacError
from aac.tf.keras_internals import set_stateless_scope, stateless_scope

#: attribute of a layer holding its transforms (set with object.__setattr__: Keras must not track it)
_REGISTRY = "_aac_transforms"


class TransformError(AacError):
    """A weight transform cannot be added, run or folded as asked."""


class WeightTransform(keras.layers.Layer):
    """Base class of every transform aac attaches to a weight; ``owner`` is the algorithm's name.

    Subclasses create their variables in :meth:`build`, which receives the shape of the weight they
    transform, and implement :meth:`call` mapping the weight tensor to a tensor of the same shape
    and dtype (cast your own variables to ``weight.dtype``: under mixed precision the weight arrives
    already cast to the compute dtype). :meth:`get_config` must return the constructor arguments
    (variables excluded): :func:`aac.tf.copy_model` rebuilds a transform from its config and copies
    its variables over.

    :attr:`passes_layer_writes`: whether the layer may keep updating the stored weight in ``call``
    (batch-norm moving statistics) while the transform changes what it reads; False by default, so
    such a layer is refused unless every transform on the weight says True.
    """

    passes_layer_writes: ClassVar[bool] = False

    def __init__(self, owner: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.owner = owner

    def build(self, weight_shape: tuple[int, ...]) -> None:
        """Create the transform's variables for a weight of ``weight_shape``."""
        self.built = True

    def call(self, weight: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement call(weight)")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "owner": self.owner}

    def clone(self, weight_shape: tuple[int, ...]) -> WeightTransform:
        """A new, built transform with this one's config and variable values."""
        twin = type(self).from_config(self.get_config())
        twin.build(weight_shape)
        for mine, theirs in zip(self.variables, twin.variables, strict=True):
            if tuple(mine.shape) != tuple(theirs.shape):
                raise TransformError(
                    f"{type(self).__name__} of '{self.owner}' cannot follow its weight to shape {tuple(weight_shape)}: its variable "
                    f"'{mine.name}' has shape {tuple(mine.shape)}, the new weight needs {tuple(theirs.shape)} "
                    "(a transform with per-channel state implements select_channels)"
                )
            theirs.assign(mine)
        return twin

    def select_channels(self, axis: int, index: np.ndarray, weight_shape: tuple[int, ...]) -> WeightTransform:
        """A new, built transform like this one for the weight that keeps only entries ``index`` along ``axis``
        of a weight of ``weight_shape`` (structured pruning removing channels at strip time, :func:`cut_transforms`).

        Transforms keep their variables' shapes for life, so a cut builds a twin instead of cutting in
        place. A transform whose state has one entry per channel (a channel or element mask, a
        per-channel quantizer scale) overrides it; the default suits per-tensor state and raises
        TransformError when a variable would have to change shape.
        """
        return self.clone(cut_shape(weight_shape, axis, len(index)))


class Mask(WeightTransform):
    """Multiplies the weight by a non-trainable mask variable that broadcasts against it.

    ``shape`` is the mask's shape: the weight's own shape for element masks (the default), or a
    broadcastable one for structured masks - ``(filters,)`` masks output channels of a Conv2D kernel
    ``(kh, kw, in, filters)`` or a Dense kernel ``(in, units)``, ``(1, 1, in, 1)`` input channels.
    Algorithms change it with :meth:`update` (an in-place assign, so the traced training step sees it).
    A layer that updates the masked weight itself (a batch norm's moving mean) updates the stored
    variable; the masked entries still read as zero.
    """

    passes_layer_writes: ClassVar[bool] = True

    def __init__(self, owner: str, shape: Sequence[int] | None = None, initial: Any = None, **kwargs: Any) -> None:
        super().__init__(owner, **kwargs)
        self.mask_shape = None if shape is None else tuple(int(d) for d in shape)
        self._initial = None if initial is None else np.asarray(initial, dtype="float32")
        if self.mask_shape is None and self._initial is not None:
            self.mask_shape = self._initial.shape

    def build(self, weight_shape: tuple[int, ...]) -> None:
        shape = self.mask_shape if self.mask_shape is not None else tuple(weight_shape)
        try:
            np.broadcast_shapes(shape, tuple(weight_shape))
        except ValueError:
            raise TransformError(f"a mask of shape {shape} does not broadcast against a weight of shape {tuple(weight_shape)}") from None
        self.mask_shape = shape
        self.mask = self.add_weight(name="mask", shape=shape, initializer="ones", trainable=False, aggregation="only_first_replica")
        if self._initial is not None:
            self.mask.assign(self._initial.reshape(shape))
            self._initial = None
        self.built = True

    def call(self, weight: Any) -> Any:
        return weight * ops.cast(self.mask, weight.dtype)

    def update(self, values: Any) -> None:
        """Set the mask (any array with the mask's number of elements)."""
        self.mask.assign(np.reshape(np.asarray(values, dtype="float32"), self.mask_shape))

    def numpy(self) -> np.ndarray:
        return np.asarray(self.mask.numpy())

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "shape": list(self.mask_shape) if self.mask_shape is not None else None}

    def select_channels(self, axis: int, index: np.ndarray, weight_shape: tuple[int, ...]) -> WeightTransform:
        values = self.numpy()
        own = axis % len(weight_shape) - len(weight_shape) + values.ndim  # the mask's axis broadcasting against it
        if own >= 0 and values.shape[own] > 1:
            values = np.take(values, np.asarray(index), axis=own)
        twin = type(self).from_config({**self.get_config(), "shape": list(values.shape)})
        twin.build(cut_shape(weight_shape, axis, len(index)))
        twin.mask.assign(values)
        return twin


def cut_shape(shape: Sequence[int], axis: int, size: int) -> tuple[int, ...]:
    """``shape`` with ``size`` entries along ``axis`` (negative counts from the end)."""
    result = [int(d) for d in shape]
    result[axis % len(result)] = int(size)
    return tuple(result)


def cut_transforms(
    transforms: Sequence[WeightTransform], weight_shape: tuple[int, ...], cuts: Sequence[tuple[int, np.ndarray]]
) -> list[WeightTransform]:
    """New transforms for a weight of ``weight_shape`` cut by ``cuts`` (``(axis, kept indices)``, applied in order).

    What :func:`aac.tf.models.copy_model` attaches to a layer rebuilt with fewer channels: every
    transform follows the cut through :meth:`WeightTransform.select_channels`, so algorithms
    stacked on a pruned weight (fake quantization, sparsity masks) keep working on the smaller one.
    """
    result = []
    for transform in transforms:
        shape = tuple(int(d) for d in weight_shape)
        if not cuts:
            result.append(transform.clone(shape))
            continue
        for axis, index in cuts:
            transform = transform.select_channels(axis, np.asarray(index), shape)
            shape = cut_shape(shape, axis, len(index))
        result.append(transform)
    return result


# ---------------------------------------------------------------------------------------------
# attaching transforms to layers
# ---------------------------------------------------------------------------------------------


@dataclass
class _Chain:
    """The transforms of one weight of one layer, in the order they run."""

    variable: Any
    transforms: list[WeightTransform] = field(default_factory=list)


class _OverlayScope(keras.StatelessScope):
    """A stateless scope that overrides only the transformed variables and passes everything else through.

    ``keras.StatelessScope`` would also swallow every variable write (batch-norm statistics) and
    every ``add_loss``; here writes go to the enclosing scope or, outside any scope, to the variable
    itself, and losses to the enclosing scope or back to the layer that added them.
    """

    def __init__(self, overrides: dict[int, Any], outer: Any, layer: Any, writable: frozenset[int] = frozenset()) -> None:
        # no super().__init__: nothing to convert
        self.state_mapping = overrides
        self._writable = writable  # transformed variables the layer may update (the write goes to the stored variable)
        self._outer = outer
        self._layer = layer
        self.initialize_variables = False
        self.collect_losses = True if outer is None else outer.collect_losses
        self.losses = [] if outer is None else outer.losses

    def get_current_value(self, variable: Any) -> Any:
        value = self.state_mapping.get(id(variable))
        if value is None and self._outer is not None:
            return self._outer.get_current_value(variable)
        return value

    def add_update(self, update: tuple[Any, Any]) -> None:
        variable, value = update
        if id(variable) in self.state_mapping and id(variable) not in self._writable:
            raise TransformError(
                f"layer '{self._layer.name}' writes to its weight '{variable.name}' inside call(), and an aac transform "
                "overrides that weight; weights a layer updates itself cannot be compressed - exclude the layer with ignored_scopes"
            )
        if self._outer is not None:
            self._outer.add_update(update)
            return
        set_stateless_scope(None)
        try:
            variable.assign(value)
        finally:
            set_stateless_scope(self)

    def add_loss(self, loss: Any) -> None:
        if self._outer is not None:
            self._outer.add_loss(loss)
        else:
            self.losses.append(loss)

    def give_back_losses(self) -> None:
        """Outside any scope, hand losses added during the call to the layers that added them."""
        if self._outer is not None or not self.losses:
            return
        for sublayer in self._layer._flatten_layers():
            for loss in self.losses:
                if id(loss) in sublayer._loss_ids:
                    sublayer._losses.append(loss)


class _TransformedCall:
    """The instance-level ``call`` of a layer with transforms (an object, so the layer can be copied)."""

    def __init__(self, layer: Any, inner: Any) -> None:
        self.layer = layer
        self.inner = inner  # an instance-level call that was there before, if any

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        layer = self.layer
        chains = getattr(layer, _REGISTRY).values()
        overrides = {id(chain.variable): transformed(chain) for chain in chains}
        writable = frozenset(id(c.variable) for c in chains if all(t.passes_layer_writes for t in c.transforms))
        call = self.inner if self.inner is not None else type(layer).call.__get__(layer)
        scope = _OverlayScope(overrides, stateless_scope(), layer, writable)
        with scope:
            outputs = call(*args, **kwargs)
        scope.give_back_losses()
        return outputs


def transformed(chain: _Chain) -> Any:
    """The weight after its transforms (a tensor; read through any enclosing stateless scope)."""
    value = ops.convert_to_tensor(chain.variable)
    for transform in chain.transforms:
        value = transform.call(value)
    return value


def _registry(layer: Any) -> dict[str, _Chain]:
    registry = layer.__dict__.get(_REGISTRY)
    if registry is None:
        registry = {}
        object.__setattr__(layer, _REGISTRY, registry)
    return registry


def weight_variable(layer: Any, tensor_name: str) -> Any:
    """The ``keras.Variable`` behind ``layer.<tensor_name>``; TransformError if there is none."""
    value = getattr(layer, tensor_name, None)
    if not isinstance(value, keras.Variable):
        names = sorted({v.name for v in layer.weights if not _is_transform_variable(layer, v)})
        raise TransformError(
            f"layer '{layer.name}' ({type(layer).__name__}) has no weight variable '{tensor_name}'"
            + (f"; its weights: {', '.join(names)}" if names else " (is it built?)")
        )
    return value


def _is_transform_variable(layer: Any, variable: Any) -> bool:
    chains = layer.__dict__.get(_REGISTRY, {}).values()
    return any(variable is v for chain in chains for t in chain.transforms for v in t.variables)


def _distribution_strategy(variable: Any) -> Any:
    return getattr(getattr(variable, "value", None), "_distribute_strategy", None)


def add_transform(layer: Any, tensor_name: str, transform: WeightTransform) -> WeightTransform:
    """Make ``layer`` see ``transform(weight)`` instead of its ``tensor_name`` weight (after earlier transforms).

    The transform is built for the weight's shape (under the weight's distribution strategy), tracked
    as a sub-layer of ``layer`` and returned.
    """
    if not isinstance(transform, WeightTransform):
        raise TransformError(f"expected an aac.tf.WeightTransform, got {type(transform).__name__}")
    if isinstance(layer, WeightTransform):
        raise TransformError("transforms cannot be stacked on a transform's own variables")
    variable = weight_variable(layer, tensor_name)
    if not transform.built:
        strategy = _distribution_strategy(variable)
        # under the layer's name, so the transform's variables read "conv2d/mask/mask" in checkpoints
        with strategy.scope() if strategy is not None else contextlib.nullcontext(), keras.name_scope(layer.name):
            transform.build(tuple(variable.shape))
    registry = _registry(layer)
    chain = registry.setdefault(tensor_name, _Chain(variable))
    chain.transforms.append(transform)
    locked = layer._tracker.locked
    layer._tracker.unlock()
    try:
        layer._tracker.add_to_store("layers", transform)
    finally:
        if locked:
            layer._tracker.lock()
    if not isinstance(layer.__dict__.get("call"), _TransformedCall):
        object.__setattr__(layer, "call", _TransformedCall(layer, layer.__dict__.get("call")))
    return transform


def transforms_of(layer: Any, tensor_name: str) -> list[WeightTransform]:
    """The transforms on ``layer.<tensor_name>``, in the order they run."""
    chain = layer.__dict__.get(_REGISTRY, {}).get(tensor_name)
    return list(chain.transforms) if chain else []


def transformed_weights(layer: Any) -> list[str]:
    """Names of the weights of ``layer`` that carry transforms."""
    return [name for name, chain in layer.__dict__.get(_REGISTRY, {}).items() if chain.transforms]


def iter_transforms(model: Any) -> Iterator[tuple[Any, str, list[WeightTransform]]]:
    """``(layer, weight name, transforms)`` for every transformed weight of ``model``."""
    for layer in model._flatten_layers():
        for name, chain in list(layer.__dict__.get(_REGISTRY, {}).items()):
            if chain.transforms:
                yield layer, name, list(chain.transforms)


def has_transforms(model: Any) -> bool:
    """True if any layer of ``model`` carries an aac transform (the model is compressed, not stripped)."""
    return next(iter_transforms(model), None) is not None


def original(layer: Any, tensor_name: str) -> Any:
    """The stored variable, before any transform."""
    return weight_variable(layer, tensor_name)


def effective_value(layer: Any, tensor_name: str) -> np.ndarray:
    """The weight as the layer sees it (after its transforms), as a NumPy array."""
    chain = layer.__dict__.get(_REGISTRY, {}).get(tensor_name)
    if chain is None:
        return np.asarray(weight_variable(layer, tensor_name).numpy())
    return np.asarray(ops.convert_to_numpy(transformed(chain)))


def _detach(layer: Any, tensor_name: str, count: int) -> None:
    registry = _registry(layer)
    chain = registry[tensor_name]
    for transform in chain.transforms[:count]:
        layer._tracker.untrack(transform)
    del chain.transforms[:count]
    if not chain.transforms:
        del registry[tensor_name]
    if not registry:
        call = layer.__dict__.get("call")
        if isinstance(call, _TransformedCall):
            if call.inner is None:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", call.inner)


def _owned_prefix(layer: Any, tensor_name: str, owner: str) -> int:
    chain = layer.__dict__.get(_REGISTRY, {}).get(tensor_name)
    transforms = chain.transforms if chain else []
    owned = [t.owner == owner for t in transforms]
    count = owned.index(False) if False in owned else len(owned)
    if any(owned[count:]):
        foreign = transforms[count]
        raise TransformError(
            f"cannot fold the '{owner}' transform of {layer.name}.{tensor_name}: it runs after "
            f"{type(foreign).__name__} of '{foreign.owner}'; strip that algorithm first"
        )
    return count


def fold_transforms(layer: Any, tensor_name: str, owner: str) -> None:
    """Bake ``owner``'s transforms of one weight into the stored variable and remove them.

    Transforms of other algorithms stay. ``owner``'s transforms must come first in the chain (they
    act on the raw weight); one that runs after another algorithm's transform is reported instead.
    """
    count = _owned_prefix(layer, tensor_name, owner)
    if count == 0:
        return
    chain = _registry(layer)[tensor_name]
    value = ops.convert_to_tensor(chain.variable)
    for transform in chain.transforms[:count]:
        value = transform.call(value)
    chain.variable.assign(value)
    _detach(layer, tensor_name, count)


def remove_transforms(layer: Any, tensor_name: str, owner: str) -> None:
    """Drop ``owner``'s transforms of one weight without baking them in (the raw weight comes back)."""
    count = _owned_prefix(layer, tensor_name, owner)
    if count:
        _detach(layer, tensor_name, count)


def fold_all(model: Any, owner: str) -> None:
    """Fold every transform of ``owner`` in ``model`` (see :func:`fold_transforms`)."""
    for layer, name, _ in list(iter_transforms(model)):
        fold_transforms(layer, name, owner)
