"""aac benchmarks: each ratio is measured side by side, in one process, on the same machine.

    python benchmarks/run.py [--quick] [--case NAME ...] [--json PATH]

Cases (add a compression algorithm by adding an entry to ``TRAINING_OVERHEAD`` / ``LATENCY``):

* ``training_overhead/<algorithm>``: time of a training epoch with the algorithm's weight transforms
  (masks) vs plain PyTorch on the same model - target <= 1.10x;
* ``inference_latency/<algorithm>@<rate>``: latency of the stripped model vs the original next to
  its FLOPs ratio - target: latency ratio <= 1.25 x FLOPs ratio;
* ``graph_analysis/resnet50``: tracing, shape pass and pruning analysis of a ResNet-50 built in code;
* ``tf_training`` and ``tf_inference_latency`` (``benchmarks/bench_tf.py``, when TensorFlow is installed):
  the same two ratios on Keras - a ``model.fit`` epoch with masks vs plain Keras, and the stripped
  model's latency vs the original next to its FLOPs ratio (filter pruning at rates 0.3, 0.5, 0.7).

Timings alternate between the two variants of a ratio and take medians, so drifts of a shared
machine hit both sides alike. Results go to stdout as a table and to ``--json`` as data.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aac.core import create_compressed_model
from aac.core.statistics import format_table
from aac.torch.testing.models import BasicBlock, ResNet, resnet50

OVERHEAD_TARGET = 1.10
LATENCY_SLACK = 1.25

#: prune everything prunable; keep channel counts in blocks of 16, the vector width of AVX-512 (and
#: oneDNN's channel blocking): with blocks of 8, narrow stripped layers waste half of every vector
PRUNING = {"algorithm": "filter_pruning", "params": {"prune_downsample_convs": True, "prune_first_conv": True, "filters_multiple_of": 16}}

#: algorithm -> config section whose transforms the training-overhead case measures (at its initial level)
TRAINING_OVERHEAD: dict[str, dict[str, Any]] = {
    "filter_pruning": {**PRUNING, "pruning_init": 0.5},
}
#: algorithm -> (config section, rates at which the stripped model is timed)
LATENCY: dict[str, tuple[dict[str, Any], tuple[float, ...]]] = {
    "filter_pruning": (PRUNING, (0.3, 0.5, 0.7)),
}


@dataclass(frozen=True)
class Settings:
    quick: bool = False
    threads: int | None = None  # intra-op threads (torch and TensorFlow)

    @property
    def repeats(self) -> int:
        return 5 if self.quick else 11


@dataclass(frozen=True)
class Measurement:
    case: str
    value: float
    unit: str
    target: str = ""
    passed: bool | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def _model(widths: tuple[int, int, int] = (64, 128, 256)) -> nn.Module:
    """A CIFAR-sized ResNet: compute-bound on a CPU, yet a forward pass takes tens of milliseconds."""
    return ResNet(BasicBlock, (2, 2, 2), widths, in_channels=3, num_classes=10)


INPUT = (3, 32, 32)


def _config(section: Mapping[str, Any]) -> dict[str, Any]:
    return {"input_info": {"sample_size": [1, *INPUT]}, "compression": copy.deepcopy(dict(section))}


@dataclass(frozen=True)
class Pair:
    """Two variants timed alternately: median seconds of each and the median of the per-round ratios."""

    first_s: float
    second_s: float
    ratio: float


def _alternate(first: Callable[[], None], second: Callable[[], None], repeats: int) -> Pair:
    """Time ``first`` and ``second`` back to back ``repeats`` times, after one warm-up call each.

    The ratio is taken per round, so that a load spike on a shared machine, which slows both calls
    of a round alike, cancels out instead of landing on one side.
    """
    first(), second()
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        first()
        middle = time.perf_counter()
        second()
        rounds.append((middle - start, time.perf_counter() - middle))
    return Pair(
        statistics.median(a for a, _ in rounds), statistics.median(b for _, b in rounds), statistics.median(b / a for a, b in rounds)
    )


def training_overhead(settings: Settings) -> list[Measurement]:
    batches = [(torch.randn(32, *INPUT), torch.randint(0, 10, (32,))) for _ in range(3)]
    results = []
    for algorithm, section in TRAINING_OVERHEAD.items():
        plain = _model((32, 64, 128))
        compressed = copy.deepcopy(plain)
        create_compressed_model(compressed, _config(section))

        def epoch(model: nn.Module, optimizer: torch.optim.Optimizer) -> Callable[[], None]:
            def run() -> None:
                model.train()
                for x, y in batches:
                    loss = nn.functional.cross_entropy(model(x), y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()

            return run

        pair = _alternate(
            epoch(plain, torch.optim.SGD(plain.parameters(), lr=0.01, momentum=0.9)),
            epoch(compressed, torch.optim.SGD(compressed.parameters(), lr=0.01, momentum=0.9)),
            settings.repeats,
        )
        results.append(
            Measurement(
                f"training_overhead/{algorithm}",
                pair.ratio,
                "x plain",
                f"<= {OVERHEAD_TARGET}",
                pair.ratio <= OVERHEAD_TARGET,
                {"plain_epoch_s": pair.first_s, "compressed_epoch_s": pair.second_s, "steps": len(batches), "batch": 32},
            )
        )
    return results


def inference_latency(settings: Settings) -> list[Measurement]:
    x = torch.randn(32, *INPUT)
    results = []
    for algorithm, (section, rates) in LATENCY.items():
        original = _model().eval()
        controller, _ = create_compressed_model(copy.deepcopy(original), _config(section))
        for rate in rates:
            controller.compression_rate = rate
            stripped = controller.strip().eval()
            model_table = controller.statistics()[algorithm].tables[0]
            flops = {row[0]: row for row in model_table.rows}["FLOPs"]
            flops_ratio = flops[2] / flops[1]

            def infer(model: nn.Module) -> Callable[[], None]:
                def run() -> None:
                    with torch.inference_mode():
                        for _ in range(3):
                            model(x)

                return run

            pair = _alternate(infer(original), infer(stripped), settings.repeats)
            latency_ratio = pair.ratio
            bound = LATENCY_SLACK * flops_ratio
            results.append(
                Measurement(
                    f"inference_latency/{algorithm}@{rate}",
                    latency_ratio,
                    "x original",
                    f"<= {LATENCY_SLACK} x FLOPs ratio = {bound:.3f}",
                    latency_ratio <= bound,
                    {
                        "flops_ratio": flops_ratio,
                        "original_s": pair.first_s,
                        "stripped_s": pair.second_s,
                        "measured_rate": controller.compression_rate,
                        "params": {
                            "original": sum(p.numel() for p in original.parameters()),
                            "stripped": sum(p.numel() for p in stripped.parameters()),
                        },
                    },
                )
            )
    return results


def graph_analysis(settings: Settings) -> list[Measurement]:
    from aac.pruning.groups import PruningRules, analyze
    from aac.torch.tracing import trace_model

    model = resnet50()
    start = time.perf_counter()
    traced = trace_model(model)
    trace_s = time.perf_counter() - start
    start = time.perf_counter()
    traced_with_shapes = trace_model(model, {"sample_size": [1, 3, 224, 224]})
    shapes_s = time.perf_counter() - start
    start = time.perf_counter()
    analysis = analyze(traced_with_shapes.graph, PruningRules(prune_downsample=True))
    analyze_s = time.perf_counter() - start
    start = time.perf_counter()
    create_compressed_model(
        model,
        {
            "input_info": {"sample_size": [1, 3, 224, 224]},
            "compression": {"algorithm": "filter_pruning", "pruning_init": 0.3, "params": {"prune_downsample_convs": True}},
        },
    )
    create_s = time.perf_counter() - start
    return [
        Measurement(
            "graph_analysis/resnet50",
            create_s,
            "s",
            details={
                "nodes": len(traced.graph),
                "groups": len(analysis.groups),
                "trace_s": trace_s,
                "trace_with_shape_pass_s": shapes_s,
                "analysis_s": analyze_s,
                "create_compressed_model_s": create_s,
                "parameters": sum(p.numel() for p in model.parameters()),
            },
        )
    ]


def _tf_case(name: str) -> Callable[[Settings], list[Measurement]]:
    """A case of ``bench_tf.py`` (imported on first use: TensorFlow loads only if a TF case runs)."""

    def run(settings: Settings) -> list[Measurement]:
        if importlib.util.find_spec("tensorflow") is None:
            print(f"{name}: skipped, TensorFlow is not installed (pip install aac-tf)")
            return []
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_tf

        bench_tf.set_threads(settings.threads)
        return [Measurement(**m) for m in bench_tf.TF_CASES[name](settings.quick)]

    return run


def _sparsity_quant_case(name: str) -> Callable[[Settings], list[Measurement]]:
    """A case of ``bench_sparsity_quant.py`` (runs when aac-sparsity and aac-quant are installed)."""

    def run(settings: Settings) -> list[Measurement]:
        missing = [m for m in ("aac.sparsity", "aac.quant") if importlib.util.find_spec(m) is None]
        if missing:
            print(f"{name}: skipped, {' and '.join(missing)} not installed")
            return []
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import bench_sparsity_quant

        return bench_sparsity_quant.CASES[name](settings)

    return run


CASES: dict[str, Callable[[Settings], list[Measurement]]] = {
    "training_overhead": training_overhead,
    "inference_latency": inference_latency,
    "graph_analysis": graph_analysis,
    "tf_training": _tf_case("tf_training"),
    "tf_inference_latency": _tf_case("tf_inference_latency"),
    "sparsity_overhead": _sparsity_quant_case("sparsity_overhead"),
    "quantization_overhead": _sparsity_quant_case("quantization_overhead"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="run only these cases (repeatable)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (noisier)")
    parser.add_argument("--json", type=Path, default=Path("runs") / "bench" / "results.json", help="where to write the results")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch and TensorFlow intra-op threads (default 1: steadier timings on a shared machine)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    settings = Settings(quick=args.quick, threads=args.threads)
    results = [m for name in (args.case or CASES) for m in CASES[name](settings)]

    rows = [(m.case, round(m.value, 3), m.unit, m.target or "-", {True: "ok", False: "MISSED", None: "-"}[m.passed]) for m in results]
    print(format_table(("case", "value", "unit", "target", "result"), rows))
    for m in results:
        print(f"  {m.case}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in m.details.items()))
    report = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": args.threads,
            **({"tensorflow": sys.modules["tensorflow"].__version__} if "tensorflow" in sys.modules else {}),
            "processor": platform.processor() or platform.machine(),
        },
        "settings": asdict(settings),
        "results": [asdict(m) for m in results],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.json}")
    return 0 if all(m.passed is not False for m in results) else 1


if __name__ == "__main__":
    sys.exit(main())
