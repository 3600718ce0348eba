"""HAWQ and AutoQ precision on a model whose sensitivity is known: two equal linear branches, one scaled by
10 and one by 0.1 in the output - the loss curvature of the first is 10^4 times the second's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from aac.core import create_compressed_model, load_config
from aac.core.errors import ConfigError
from aac.quant.precision.hawq import PrecisionError
from aac.quant.torch.algorithm import QuantizationAlgorithm


class TwoBranches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.sharp = nn.Linear(8, 4, bias=False)
        self.flat = nn.Linear(8, 4, bias=False)
        with torch.no_grad():
            self.flat.weight.copy_(self.sharp.weight)  # the same quantization noise at every bit width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 10.0 * self.sharp(x[:, :8]) + 0.1 * self.flat(x[:, 8:])


def data() -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 16, generator=generator), torch.randn(16, 4, generator=generator)) for _ in range(4)]


def compress(precision: dict[str, Any]) -> tuple[QuantizationAlgorithm, nn.Module]:
    return create_compressed_model(
        TwoBranches(),
        {
            "input_info": {"sample_size": [2, 16]},
            "compression": {
                "algorithm": "quantization",
                "initializer": {"precision": precision, "batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
            },
        },
    )


def test_hawq_gives_fewer_bits_to_the_flatter_layer(tmp_path: Path) -> None:
    controller, _ = compress(
        {
            "type": "hawq",
            "bits": [4, 8],
            "compression_ratio": 1.3,
            "num_data_points": 32,
            "iter_number": 20,
            "tolerance": 1e-3,
            "dump_init_precision_data": True,
        }
    )
    controller.initialize(data(), criterion=nn.MSELoss(), dump_dir=tmp_path)
    bits = controller.bit_widths()
    assert (bits["sharp.weight"], bits["flat.weight"]) == (8, 4)
    assert (bits["input of sharp"], bits["input of flat"]) == (8, 4)  # inputs follow the weights they feed (liberal)
    dump = json.loads((tmp_path / "hawq.json").read_text())
    assert dump["traces"]["sharp"] > 100 * abs(dump["traces"]["flat"])  # unbiased, but noisy around a flat layer's 0
    assert dump["order_by_trace"] == ["sharp", "flat"] and dump["chosen"]["ratio"] == pytest.approx(4 / 3)
    assert [8, "sharp|WEIGHT"] in dump["bitwidth_per_scope"] and [4, "flat|WEIGHT"] in dump["bitwidth_per_scope"]
    assert controller.statistics()["quantization"].scalars["bit_complexity_ratio"] == pytest.approx(4 / 3)


def test_hawq_reads_traces_of_an_earlier_run(tmp_path: Path) -> None:
    traces = tmp_path / "traces.json"
    traces.write_text(json.dumps({"traces": {"sharp": 0.001, "flat": 5.0}}))  # swapped: now "flat" is the sharp one
    controller, _ = compress({"type": "hawq", "bits": [4, 8], "compression_ratio": 1.3, "traces_per_layer_path": str(traces)})
    controller.initialize(data())  # no criterion needed
    assert (controller.bit_widths()["sharp.weight"], controller.bit_widths()["flat.weight"]) == (4, 8)


def test_hawq_says_which_ratios_are_reachable() -> None:
    controller, _ = compress({"type": "hawq", "bits": [4, 8], "compression_ratio": 3.0, "iter_number": 2})
    with pytest.raises(PrecisionError, match=r"ratios from 1.000 to 2.000"):
        controller.initialize(data(), criterion=nn.MSELoss())


def test_hawq_needs_a_criterion() -> None:
    controller, _ = compress({"type": "hawq", "bits": [4, 8]})
    with pytest.raises(PrecisionError, match="criterion"):
        controller.initialize(data())


def neg_error(model: nn.Module, loader: Any) -> float:
    reference = TwoBranches().eval()
    model.eval()
    with torch.no_grad():
        return -float(sum((model(x) - reference(x)).pow(2).mean() for x, _ in loader))


def test_autoq_lowers_the_less_sensitive_layer_first(tmp_path: Path) -> None:
    controller, _ = compress(
        {"type": "autoq", "bits": [2, 4, 8], "compression_ratio": 0.15, "eval_subset_ratio": 0.5, "dump_init_precision_data": True}
    )
    calls = []

    def metric(model: nn.Module, loader: Any) -> float:
        calls.append(len(loader))
        return neg_error(model, loader)

    controller.initialize(data(), eval_fn=metric, dump_dir=tmp_path)
    bits = controller.bit_widths()
    assert bits["flat.weight"] < bits["sharp.weight"]
    assert controller.statistics()["quantization"].scalars["weight_size_ratio"] <= 0.15
    assert calls == [2] * 6  # start, 2 weights x 2 lower widths, result; half the batches each
    dump = json.loads((tmp_path / "autoq.json").read_text())
    assert dump["evaluations"] == 6 and dump["measured"]["sharp"]["2"] < dump["measured"]["flat"]["2"]


def test_autoq_budget_and_unreachable_ratio() -> None:
    controller, _ = compress({"type": "autoq", "bits": [2, 4, 8], "compression_ratio": 0.1, "iter_number": 1})
    calls = []
    controller.initialize(data(), eval_fn=lambda model, loader: calls.append(1) or neg_error(model, loader))
    assert controller.statistics()["quantization"].scalars["weight_size_ratio"] <= 0.1 + 1e-9
    assert len(calls) == 3  # the start, one measurement (the budget), the result; the rest was lowered by size
    impossible, _ = compress({"type": "autoq", "bits": [4, 8], "compression_ratio": 0.05})
    with pytest.raises(PrecisionError, match="all weights at 4 bits"):
        impossible.initialize(data(), eval_fn=neg_error)
    assert set(impossible.bit_widths().values()) == {8}  # left as it was


@pytest.mark.parametrize(
    ("precision", "path"),
    [
        ({"type": "autoq", "tolerance": 0.1}, "$.compression.initializer.precision.tolerance"),
        ({"type": "hawq", "bitwidth_per_scope": [[4, "fc|WEIGHT"]]}, "$.compression.initializer.precision.bitwidth_per_scope"),
        ({"bits": [4, 8]}, "$.compression.initializer.precision.bits"),  # no type: manual, which reads only bitwidth_per_scope
        ({"type": "hawq", "bits": [4]}, "$.compression.initializer.precision.bits"),
    ],
)
def test_keys_the_type_does_not_read_are_config_problems(precision: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"compression": {"algorithm": "quantization", "initializer": {"precision": precision}}})
    assert [p.path for p in info.value.problems] == [path]


class SharedInput(nn.Module):
    """Both branches read one tensor: one activation quantizer feeds both weights."""

    def __init__(self) -> None:
        super().__init__()
        self.branches = TwoBranches()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x[:, :8]
        return 10.0 * self.branches.sharp(h) + 0.1 * self.branches.flat(h)


@pytest.mark.parametrize(("mode", "expected"), [("liberal", (8, 4)), ("strict", (4, 4))])
def test_strict_mode_chooses_the_weights_of_one_input_together(mode: str, expected: tuple[int, int]) -> None:
    controller, _ = create_compressed_model(
        SharedInput(),
        {
            "input_info": {"sample_size": [2, 16]},
            "compression": {
                "algorithm": "quantization",
                "initializer": {
                    "precision": {
                        "type": "hawq",
                        "bits": [4, 8],
                        "compression_ratio": 1.3,
                        "iter_number": 10,
                        "bitwidth_assignment_mode": mode,
                    }
                },
            },
        },
    )
    controller.initialize(data(), criterion=nn.MSELoss())
    bits = controller.bit_widths()
    assert (bits["branches.sharp.weight"], bits["branches.flat.weight"]) == expected
    assert bits["input of branches.sharp, branches.flat"] == 4
