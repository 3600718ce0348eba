"""The maths of ``rb_sparsity`` that PyTorch and Keras share, written once.

RB sparsity trains a keep/drop logit per weight. Both backends start the logits at the same keep
probability, draw the same logistic noise in training, and add the same loss,
``((kept fraction - (1 - level)) / LOSS_SCALE)^2``. The formulas here use only Python's arithmetic
operators, so they run unchanged on torch tensors, TensorFlow tensors and Keras variables, and inside a
traced ``model.fit`` step; the backends supply what differs - where the logits live, how a mask is
sampled and binarized, how the kept counts are reduced, and how a frozen mask is expressed (a Python
flag in PyTorch, a variable in a traced Keras step).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: keep probability the logits start at
INITIAL_KEEP_PROBABILITY = 0.99
#: scale of the sparsity loss: a kept fraction this far from the goal costs 1
LOSS_SCALE = 0.05
#: uniform noise is drawn from [NOISE_EPS, 1 - NOISE_EPS] so that its logit stays finite
NOISE_EPS = 1e-6


def initial_logit(multiplier: float) -> float:
    """The stored value of a fresh logit: keep probability :data:`INITIAL_KEEP_PROBABILITY`, divided by the
    ``compression_lr_multiplier`` (logits are stored divided by it, so any optimizer moves them that much faster)."""
    return math.log(INITIAL_KEEP_PROBABILITY / (1.0 - INITIAL_KEEP_PROBABILITY)) / multiplier


def lr_multiplier(section: Mapping[str, Any], config: Mapping[str, Any]) -> float:
    """``compression_lr_multiplier`` from the algorithm's section, else from the config's root, else 1."""
    return float(section.get("compression_lr_multiplier", config.get("compression_lr_multiplier", 1.0)))


def loss_term(kept_fraction: Any, level: Any) -> Any:
    """``((kept fraction - (1 - level)) / LOSS_SCALE)^2``: the RB loss of one layer (local) or of all (global).

    The backends reduce the kept counts with their own ``stack``/``sum``/``mean``: one fused reduction per
    batch instead of a Python chain of additions, which would add an autograd node per layer.
    """
    return ((kept_fraction - (1.0 - level)) / LOSS_SCALE) ** 2
