"""Average Hessian traces of torch weights (Hutchinson's estimator, :mod:`aac.quant.precision.hutchinson`), for HAWQ.

``H v`` is the gradient of ``g . v`` (``g`` the loss gradient, taken with ``create_graph=True``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from aac.quant.precision.hutchinson import average_traces
from aac.torch.batchnorm import InputFn


def _batches(data_loader: Any, samples: int, input_fn: InputFn) -> list[tuple[tuple[Any, ...], dict[str, Any], Any, int]]:
    """``(args, kwargs, targets, size)`` of the first batches holding ``samples`` samples (at least one batch)."""
    batches = []
    seen = 0
    for batch in data_loader:
        args, kwargs = input_fn(batch)
        targets = batch[1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else None
        first = args[0] if args else next(iter(kwargs.values()), None)
        size = int(first.shape[0]) if isinstance(first, torch.Tensor) and first.dim() > 0 else 1
        batches.append((args, kwargs, targets, size))
        seen += size
        if seen >= samples:
            break
    return batches


def hutchinson_traces(
    model: nn.Module,
    parameters: Mapping[str, torch.Tensor],
    data_loader: Any,
    criterion: Any,
    criterion_fn: Callable[..., Any] | None,
    input_fn: InputFn,
    samples: int,
    iterations: int,
    tolerance: float,
    seed: int = 0,
) -> dict[str, float]:
    """Average Hessian trace of the loss for each of ``parameters`` (key -> the tensor to differentiate).

    :param criterion_fn: ``(outputs, targets, criterion) -> loss``; default ``criterion(outputs, targets)``.
    """
    batches = _batches(data_loader, samples, input_fn)
    if not batches:
        raise ValueError("hawq got no data to estimate Hessian traces on")
    total = sum(size for *_, size in batches)
    keys = list(parameters)
    tensors = [parameters[k] for k in keys]
    generator = torch.Generator().manual_seed(seed)

    def draw() -> list[float]:
        vectors = [torch.randint(0, 2, t.shape, generator=generator).to(t.device, t.dtype) * 2 - 1 for t in tensors]
        estimate = [0.0] * len(keys)
        for args, kwargs, targets, size in batches:
            outputs = model(*args, **kwargs)
            loss = criterion_fn(outputs, targets, criterion) if criterion_fn is not None else criterion(outputs, targets)
            gradients = torch.autograd.grad(loss, tensors, create_graph=True)
            products = torch.autograd.grad(gradients, tensors, grad_outputs=vectors)
            for i, (v, hv) in enumerate(zip(vectors, products, strict=True)):
                estimate[i] += float((v * hv).sum()) * size / total
        return estimate

    traces = average_traces(draw, [t.numel() for t in tensors], iterations, tolerance)
    return dict(zip(keys, traces, strict=True))
