"""Average Hessian traces of weights (Hutchinson's estimator), for HAWQ.

For a random vector ``v`` of independent +-1 entries, ``E[v^T H v] = trace(H)``; ``H v`` is the
gradient of ``g . v`` (``g`` the loss gradient), one more backward pass. Each iteration draws one ``v``
per weight and averages ``v^T H v`` over the samples; iterations stop after ``iterations`` or once the
mean trace of all weights moves by less than ``tolerance`` (relative) between two iterations. A
weight's *average* trace is its trace divided by its number of entries (NNCF's convention).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

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
    sums = [0.0] * len(keys)
    mean = None
    for iteration in range(1, max(iterations, 1) + 1):
        vectors = [torch.randint(0, 2, t.shape, generator=generator).to(t.device, t.dtype) * 2 - 1 for t in tensors]
        estimate = [0.0] * len(keys)
        for args, kwargs, targets, size in batches:
            outputs = model(*args, **kwargs)
            loss = criterion_fn(outputs, targets, criterion) if criterion_fn is not None else criterion(outputs, targets)
            gradients = torch.autograd.grad(loss, tensors, create_graph=True)
            products = torch.autograd.grad(gradients, tensors, grad_outputs=vectors)
            for i, (v, hv) in enumerate(zip(vectors, products, strict=True)):
                estimate[i] += float((v * hv).sum()) * size / total
        sums = [s + e for s, e in zip(sums, estimate, strict=True)]
        current = sum(sums) / iteration
        if mean is not None and abs(current - mean) <= tolerance * abs(mean):
            break
        mean = current
    return {key: s / iteration / tensor.numel() for key, s, tensor in zip(keys, sums, tensors, strict=True)}
