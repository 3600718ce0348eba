"""Batch-norm adaptation: re-estimate running statistics after compression changed the layers before them.

NNCF's ``initializer.batchnorm_adaptation.num_bn_adaptation_samples`` is accepted by every algorithm
section; :meth:`aac.torch.TorchCompressionAlgorithm.initialize` runs it for any torch algorithm.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from aac.core.errors import AacError

logger = logging.getLogger("aac.torch")

#: maps a batch of the user's data loader to ``(args, kwargs)`` for the model
InputFn = Callable[[Any], tuple[tuple[Any, ...], dict[str, Any]]]


def default_inputs(batch: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """NNCF's convention: a batch is the input, or a sequence whose first element is the input."""
    if isinstance(batch, Mapping):
        return (), dict(batch)
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise AacError("initialize(): the data loader yielded an empty batch")
        first = batch[0]
        if isinstance(first, Mapping):
            return (), dict(first)
        if isinstance(first, (tuple, list)):
            return tuple(first), {}
        return (first,), {}
    return (batch,), {}


def _batch_size(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    for value in itertools.chain(args, kwargs.values()):
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return int(value.shape[0])
    return 1


def restore_modes(model: nn.Module, training: Mapping[str, bool]) -> None:
    """Put back each module's train/eval mode as recorded in ``{name: module.training}``."""
    for name, module in model.named_modules():
        if name in training:
            module.training = training[name]


@torch.no_grad()
def adapt_batchnorm(
    model: nn.Module, data_loader: Any, num_samples: int, input_fn: InputFn = default_inputs, *, quiet: bool = False
) -> int:
    """Re-estimate the running statistics of every batch norm over ``num_samples`` samples.

    The statistics are reset and then averaged cumulatively over the samples, with the rest of the
    model in evaluation mode (deterministic masks, no dropout). Returns the samples used.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms or num_samples <= 0:
        return 0
    training = {name: m.training for name, m in model.named_modules()}
    momenta = [m.momentum for m in norms]
    model.eval()
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    seen = 0
    try:
        for batch in data_loader:
            args, kwargs = input_fn(batch)
            model(*args, **kwargs)
            seen += _batch_size(args, kwargs)
            if seen >= num_samples:
                break
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        restore_modes(model, training)
    if not quiet:
        logger.info("[aac] batch-norm adaptation: %d batch norms re-estimated over %d samples", len(norms), seen)
    return seen
