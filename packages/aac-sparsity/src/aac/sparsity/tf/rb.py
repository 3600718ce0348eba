"""``rb_sparsity`` for Keras: the neutral controller with trainable keep/drop logits (:class:`RBMask` transforms).

The same algorithm as :mod:`aac.sparsity.torch.rb`, with the formulas of :mod:`aac.sparsity.rb`: every
sparsified weight gets logits starting at keep probability 0.99; in training (``training=True``, as in
``model.fit``) the mask is sampled - ``logit + logistic noise > 0`` - with a straight-through gradient
through the sigmoid; in evaluation, at strip time and once frozen it is deterministic. ``controller.loss()``,
``((kept fraction - (1 - level)) / 0.05)^2`` (global, or averaged per layer in ``local`` mode), pulls
the kept fraction towards the level; ``aac.tf.CompressionCallback`` adds it to the ``model.fit`` loss.

Everything the traced training step reads is a variable of the transform, assigned in place: the
level each layer's loss term pursues, the frozen flag and the frozen keep pattern (``model.fit``
traces the step once, so Python values would be baked into it). Freezing snapshots ``logits > 0``
into ``keep``; the frozen mask is that snapshot and the loss is 0, so optimizer momentum moving
the logits afterwards changes nothing; unfreezing (``compression_rate`` writes) aligns the logits'
signs with the snapshot. ``compression_lr_multiplier`` (section or config root) stores the logits
divided by it, so any optimizer moves them that many times faster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import keras
import numpy as np
from keras import ops

from aac.core.api import CompressionLoss
from aac.core.config import AlgorithmSection, Config
from aac.sparsity.algorithm import RBSparsityAlgorithm, SparsifiedLayer
from aac.sparsity.rb import NOISE_EPS, initial_logit, loss_term, lr_multiplier
from aac.sparsity.tf.base import TFSparsityOps
from aac.tf.keras_internals import current_call_context
from aac.tf.models import TFModel
from aac.tf.transforms import WeightTransform

#: |logit| given to a logit whose sign disagrees with the frozen pattern when the masks are unfrozen
UNFREEZE_MARGIN = 1e-3


def binarize(logits: Any) -> Any:
    """``(logits > 0)`` as 0/1 whose gradient is that of ``sigmoid(logits)`` (straight-through)."""
    soft = ops.sigmoid(logits)
    return soft + ops.stop_gradient(ops.cast(logits > 0, soft.dtype) - soft)


def _training() -> bool:
    """The ``training`` value of the enclosing Keras layer call (False outside any call: strip, statistics)."""
    context = current_call_context()
    return bool(context is not None and context.training)


class RBMask(WeightTransform):
    """Multiplies a weight by a sampled (training) or thresholded (evaluation) trainable mask; the frozen pattern once frozen.

    Variables: ``logits`` (trainable; the keep/drop logits divided by ``multiplier``), ``keep`` (the
    frozen 0/1 pattern), ``frozen`` (0/1) and ``level`` (the sparsity level this layer's loss term
    pursues), plus the seed state of the training noise.
    """

    #: the transform multiplies by a 0/1 mask element-wise (it commutes with element-wise quantization)
    is_binary_mask: ClassVar[bool] = True

    def __init__(self, owner: str, multiplier: float = 1.0, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(owner, **kwargs)
        self.multiplier = float(multiplier)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, weight_shape: tuple[int, ...]) -> None:
        shape = tuple(int(d) for d in weight_shape)
        start = keras.initializers.Constant(initial_logit(self.multiplier))
        self.logits = self.add_weight(name="logits", shape=shape, initializer=start, trainable=True)
        self.keep = self.add_weight(name="keep", shape=shape, initializer="ones", trainable=False, aggregation="only_first_replica")
        self.frozen = self.add_weight(name="frozen", shape=(), initializer="zeros", trainable=False, aggregation="only_first_replica")
        self.level = self.add_weight(name="level", shape=(), initializer="zeros", trainable=False, aggregation="only_first_replica")
        self.built = True

    def values(self) -> Any:
        """The keep/drop logits (the variable times ``multiplier``)."""
        logits = ops.convert_to_tensor(self.logits)
        return logits if self.multiplier == 1.0 else logits * self.multiplier

    def call(self, weight: Any) -> Any:
        logits = self.values()
        if _training():
            noise = keras.random.uniform(ops.shape(logits), NOISE_EPS, 1.0 - NOISE_EPS, seed=self.seed_generator)
            live = binarize(logits + ops.log(noise) - ops.log1p(-noise))
        else:
            live = ops.cast(logits > 0, logits.dtype)
        frozen = ops.cast(self.frozen, logits.dtype)
        mask = frozen * ops.cast(self.keep, logits.dtype) + (1.0 - frozen) * live
        return weight * ops.cast(mask, weight.dtype)

    def keep_mask(self) -> np.ndarray:
        """The deterministic keep pattern (as in evaluation) as 0/1 NumPy."""
        if float(self.frozen.numpy()) > 0:
            return np.asarray(self.keep.numpy())
        return (np.asarray(self.logits.numpy()) > 0).astype("float32")

    def set_frozen(self, frozen: bool) -> None:
        if frozen:
            self.keep.assign(self.keep_mask())
            self.frozen.assign(1.0)
            return
        if float(self.frozen.numpy()) > 0:  # align the logits with the frozen pattern they come back from
            logits, keep = np.asarray(self.logits.numpy()), np.asarray(self.keep.numpy()) > 0
            margin = UNFREEZE_MARGIN / self.multiplier
            self.logits.assign(np.where((logits > 0) == keep, logits, np.where(keep, margin, -margin)).astype("float32"))
        self.frozen.assign(0.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "multiplier": self.multiplier, "seed": self.seed}

    def select_channels(self, axis: int, index: np.ndarray, weight_shape: tuple[int, ...]) -> WeightTransform:
        """Follow structured pruning: keep the logits and the frozen pattern of the channels that are left."""
        shape = list(weight_shape)
        shape[axis % len(shape)] = len(index)
        twin = type(self).from_config(self.get_config())
        twin.build(tuple(shape))
        for name in ("logits", "keep"):
            getattr(twin, name).assign(np.take(np.asarray(getattr(self, name).numpy()), np.asarray(index), axis=axis))
        twin.frozen.assign(self.frozen.numpy())
        twin.level.assign(self.level.numpy())
        return twin


def _mask(layer: SparsifiedLayer) -> RBMask:
    mask: RBMask = layer.transform
    return mask


class RBSparsityLoss(CompressionLoss):
    """``((kept fraction - (1 - level)) / 0.05)^2``, over all layers (global) or averaged per layer (local); 0 when frozen.

    Built from the transforms' variables only, so the value is right inside a traced training step.
    """

    def __init__(self, algorithm: RBSparsityAlgorithm) -> None:
        self.algorithm = algorithm

    def forward(self) -> Any:
        layers = self.algorithm.layers
        masks = [_mask(layer) for layer in layers]
        active = 1.0 - ops.cast(masks[0].frozen, "float32")
        if self.algorithm.settings.local:
            terms = [
                loss_term(ops.sum(binarize(mask.values())) / layer.numel, ops.cast(mask.level, "float32"))
                for layer, mask in zip(layers, masks, strict=True)
            ]
            return active * ops.mean(ops.stack(terms))
        kept = ops.sum(ops.stack([ops.sum(binarize(mask.values())) for mask in masks]))
        total = float(sum(layer.numel for layer in layers))
        return active * loss_term(kept / total, ops.cast(masks[0].level, "float32"))

    def statistics(self) -> dict[str, float]:
        layers = self.algorithm.layers
        total = sum(layer.numel for layer in layers)
        probability = sum(float(ops.convert_to_numpy(ops.sum(ops.sigmoid(_mask(layer).values())))) for layer in layers) / total
        return {"target_sparsity_level": self.algorithm.compression_rate, "mean_keep_probability": probability}


class TFRBOps(TFSparsityOps):
    """:class:`aac.sparsity.algorithm.RBOps` for Keras layers: an :class:`RBMask` per weight, :class:`RBSparsityLoss`.

    The loss reads the levels from the masks' variables, so :meth:`set_levels` assigns them (a traced
    ``model.fit`` step sees the change).
    """

    def __init__(self, prepared: TFModel, lr_multiplier: float = 1.0) -> None:
        super().__init__(prepared)
        self.lr_multiplier = float(lr_multiplier)

    def make_transform(self, layer: Any, weight_name: str, owner: str) -> RBMask:
        return RBMask(owner, multiplier=self.lr_multiplier)

    def keep_mask(self, layer: SparsifiedLayer) -> np.ndarray:
        return _mask(layer).keep_mask()

    def make_loss(self, algorithm: RBSparsityAlgorithm) -> RBSparsityLoss:
        return RBSparsityLoss(algorithm)

    def set_frozen(self, layers: Sequence[SparsifiedLayer], frozen: bool) -> None:
        for layer in layers:
            _mask(layer).set_frozen(frozen)

    def set_levels(self, layers: Sequence[SparsifiedLayer], levels: Mapping[str, float]) -> None:
        for layer in layers:
            _mask(layer).level.assign(levels[layer.name])


class TFRBSparsity(RBSparsityAlgorithm):
    """RB sparsity for ``keras.Model``s (adaptive: the loop may set its ``compression_rate``)."""

    prepared: TFModel

    def __init__(self, prepared: TFModel, section: AlgorithmSection, lr_multiplier: float = 1.0) -> None:
        super().__init__(TFRBOps(prepared, lr_multiplier), section)


def create(prepared: TFModel, section: AlgorithmSection, config: Config) -> TFRBSparsity:
    """The factory aac-core calls for an ``rb_sparsity`` section on a Keras model (``compression_lr_multiplier`` from it or the root)."""
    return TFRBSparsity(prepared, section, lr_multiplier=lr_multiplier(section, config))
