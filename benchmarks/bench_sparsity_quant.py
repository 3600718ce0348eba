"""Training-epoch overhead of sparsity masks and of fake quantization vs plain PyTorch.

    python benchmarks/bench_sparsity_quant.py [--quick] [--case NAME ...] [--json PATH] [--threads N]

Cases (same conventions as ``benchmarks/run.py``, whose helpers this file uses):

* ``sparsity_overhead``: ``training_overhead/<algorithm>`` for ``magnitude_sparsity`` and
  ``const_sparsity`` (a mask multiplication per weight, target <= 1.05x) and ``rb_sparsity``
  (sampled trainable masks plus the sparsity loss; reported);
* ``quantization_overhead``: ``training_overhead/quantization`` (fake-quantized weights and layer
  inputs, 8-bit, per tensor; target <= 1.3x) and ``training_overhead/quantization+magnitude_sparsity``
  (reported).

Each compressed epoch does what a real one does: ``controller.scheduler.step()`` per batch and
``controller.loss()`` added to the task loss. The plain and compressed epochs are timed alternately
and the ratio is the median of the per-round ratios, so load on a shared machine hits both alike.

To run these cases from ``benchmarks/run.py`` add, after its ``CASES`` dict::

    from bench_sparsity_quant import CASES as SPARSITY_QUANT_CASES
    CASES.update(SPARSITY_QUANT_CASES)
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as base  # benchmarks/run.py: Measurement, Settings, _alternate, _model, INPUT

from aac.core import create_compressed_model

MASK_TARGET = 1.05
FAKE_QUANT_TARGET = 1.3

MAGNITUDE = {"algorithm": "magnitude_sparsity", "sparsity_init": 0.5, "params": {"sparsity_target": 0.6}}
RB = {"algorithm": "rb_sparsity", "sparsity_init": 0.5, "params": {"sparsity_target": 0.6}}
CONST = {"algorithm": "const_sparsity"}
QUANTIZATION = {"algorithm": "quantization", "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 0}}}

#: name -> (config sections, target ratio or None for "reported")
SPARSITY_CASES: dict[str, tuple[list[Mapping[str, Any]], float | None]] = {
    "magnitude_sparsity": ([MAGNITUDE], MASK_TARGET),
    "const_sparsity": ([CONST], MASK_TARGET),
    "rb_sparsity": ([RB], None),
}
QUANTIZATION_CASES: dict[str, tuple[list[Mapping[str, Any]], float | None]] = {
    "quantization": ([QUANTIZATION], FAKE_QUANT_TARGET),
    "quantization+magnitude_sparsity": ([QUANTIZATION, MAGNITUDE], None),
}


def _epoch(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], controller: Any = None) -> Callable[[], None]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def run() -> None:
        model.train()
        for x, y in batches:
            loss = nn.functional.cross_entropy(model(x), y)
            if controller is not None:
                controller.scheduler.step()
                loss = loss + controller.loss()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    return run


def _overhead(cases: Mapping[str, tuple[list[Mapping[str, Any]], float | None]], settings: base.Settings) -> list[base.Measurement]:
    batches = [(torch.randn(32, *base.INPUT), torch.randint(0, 10, (32,))) for _ in range(3)]
    results = []
    for name, (sections, target) in cases.items():
        torch.manual_seed(0)
        plain = base._model((32, 64, 128))
        compressed = copy.deepcopy(plain)
        config = {"input_info": {"sample_size": [1, *base.INPUT]}, "compression": copy.deepcopy(list(sections))}
        controller, _ = create_compressed_model(compressed, config)
        controller.initialize(batches[:1])  # quantization ranges from data (a no-op for sparsity)
        pair = base._alternate(_epoch(plain, batches), _epoch(compressed, batches, controller), settings.repeats)
        results.append(
            base.Measurement(
                f"training_overhead/{name}",
                pair.ratio,
                "x plain",
                f"<= {target}" if target else "",
                None if target is None else pair.ratio <= target,
                {"plain_epoch_s": pair.first_s, "compressed_epoch_s": pair.second_s, "steps": len(batches), "batch": 32},
            )
        )
    return results


def sparsity_overhead(settings: base.Settings) -> list[base.Measurement]:
    return _overhead(SPARSITY_CASES, settings)


def quantization_overhead(settings: base.Settings) -> list[base.Measurement]:
    return _overhead(QUANTIZATION_CASES, settings)


CASES: dict[str, Callable[[base.Settings], list[base.Measurement]]] = {
    "sparsity_overhead": sparsity_overhead,
    "quantization_overhead": quantization_overhead,
}


def main(argv: list[str] | None = None) -> int:
    """``benchmarks/run.py``'s command line, with these cases only."""
    base.CASES.clear()
    base.CASES.update(CASES)
    return base.main(argv)


if __name__ == "__main__":
    sys.exit(main())
