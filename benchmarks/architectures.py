"""Filter pruning of modern architectures (issue 14): how deep aac prunes, next to Torch-Pruning, and how honestly it counts.

    python benchmarks/architectures.py [--rate 0.5] [--model NAME ...] [--no-torchvision] [--json PATH]

Part one, always: the patterns of ``aac.torch.testing.models`` built in code at 8x8 (ResNeXt, RegNet,
EfficientNet, ConvNeXt, ViT, Swin, ShuffleNet). Part two, when torchvision imports next to the installed
torch: ``resnet50``, ``resnext50_32x4d``, ``regnet_x_400mf``, ``regnet_y_400mf``, ``efficientnet_b0``, ``convnext_tiny``,
``shufflenet_v2_x0_5``, ``vit_b_16`` and ``swin_t`` (``weights=None``, 224x224). torchvision's compiled
ops need not load: their schemas are declared with ``torch.library`` first, which is enough to build the
models. Each torchvision model runs in a child process, once with aac and once with Torch-Pruning
(``torch-pruning`` on PyPI; skipped when it is not installed), each under a 6 GB address-space limit so a
run that explodes fails alone.

aac: ``filter_pruning`` with ``prune_first_conv``, ``prune_downsample_convs`` and ``filters_multiple_of``
8 (1 for the 8x8 patterns), ``compression_rate`` = ``--rate``. Torch-Pruning 1.6: ``MetaPruner`` with L2
magnitude importance, ``pruning_ratio`` = ``--rate``, the classifier ignored (``num_heads`` given for
``nn.MultiheadAttention``). Reported per model:

* **params kept / FLOPs kept**: the stripped model over the original, parameters counted and FLOPs measured
  with ``torch.utils.flop_counter`` (``aac.torch.testing.flops.measured_flops``);
* **stats error**: the largest relative difference between aac's statistics (FLOPs and parameters, full and
  stripped) and those measurements;
* **convs / linears / attention**: layers that lose filters, of all (a depthwise convolution that follows
  a pruned layer counts);
* **strip diff**: max |stripped - masked| / max |masked| over a random batch;
* **peak RSS**: the child's peak resident memory through tracing, analysis and setting the rate;
* **TP params kept**: Torch-Pruning's stripped model over the original, or why it did not run.

Targets (exit status 1 if one is missed): stats error <= 2 %, strip diff <= 1e-5, peak RSS <= 4 GB, and
where Torch-Pruning runs, aac's params kept <= Torch-Pruning's + 3 points.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aac.core import create_compressed_model
from aac.core.statistics import format_table
from aac.pruning.report import coverage
from aac.torch.testing import models
from aac.torch.testing.flops import measured_flops

STATS_TARGET, STRIP_TARGET, RSS_TARGET_GB, TP_MARGIN = 0.02, 1e-5, 4.0, 0.03
CHILD_MEMORY = 6 << 30
TORCHVISION = (
    "resnet50",
    "resnext50_32x4d",
    "regnet_x_400mf",
    "regnet_y_400mf",
    "efficientnet_b0",
    "convnext_tiny",
    "shufflenet_v2_x0_5",
    "vit_b_16",
    "swin_t",
)


def _config(size: int, multiple_of: int) -> dict[str, Any]:
    params = {"prune_first_conv": True, "prune_downsample_convs": True, "filters_multiple_of": multiple_of}
    return {"input_info": {"sample_size": [1, 3, size, size]}, "compression": {"algorithm": "filter_pruning", "params": params}}


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)  # kilobytes on Linux


def measure_aac(make: Callable[[], nn.Module], size: int, rate: float, multiple_of: int) -> dict[str, Any]:
    """Compress, set the rate, strip, and compare statistics, outputs and FLOPs with what PyTorch measures."""
    torch.manual_seed(0)
    model = make().eval()
    full_params = sum(p.numel() for p in model.parameters())
    start = time.perf_counter()
    controller, model = create_compressed_model(model, _config(size, multiple_of))
    controller.compression_rate = min(rate, controller.maximal_compression_rate)
    seconds, rss = time.perf_counter() - start, _peak_rss_gb()
    stripped = controller.strip().eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        masked, result = model.eval()(x), stripped(x)
    rows = {row[0]: row for row in controller.statistics()["filter_pruning"].tables[0].rows}
    measured = {
        "FLOPs": (measured_flops(model, x[:1]), measured_flops(stripped, x[:1])),
        "Parameters": (full_params, sum(p.numel() for p in stripped.parameters())),
    }
    error = max(abs(rows[q][i + 1] / measured[q][i] - 1) for q in measured for i in (0, 1))
    layers = coverage(controller.analysis)
    return {
        "params_kept": measured["Parameters"][1] / measured["Parameters"][0],
        "flops_kept": measured["FLOPs"][1] / measured["FLOPs"][0],
        "stats_error": error,
        "layers": {kind: list(counts) for kind, counts in layers.items()},
        "strip_diff": float((result - masked).abs().max() / masked.abs().max().clamp_min(1e-12)),
        "peak_rss_gb": rss,
        "seconds": seconds,
    }


def measure_torch_pruning(make: Callable[[], nn.Module], size: int, rate: float) -> dict[str, Any]:
    import torch_pruning as tp

    torch.manual_seed(0)
    model = make().eval()
    full = sum(p.numel() for p in model.parameters())
    example = torch.randn(1, 3, size, size)
    classifier = [m for m in model.modules() if isinstance(m, nn.Linear)][-1:]
    heads = {m: m.num_heads for m in model.modules() if isinstance(m, nn.MultiheadAttention)}
    pruner = tp.pruner.MetaPruner(
        model,
        example,
        importance=tp.importance.MagnitudeImportance(p=2),
        pruning_ratio=rate,
        ignored_layers=classifier,
        **({"num_heads": heads} if heads else {}),
    )
    pruner.step()
    with torch.no_grad():
        model(example)
    return {"params_kept": sum(p.numel() for p in model.parameters()) / full}


#: torch.library registrations live as long as their Library object
_LIBRARIES: list[torch.library.Library] = []


def torchvision_model(name: str) -> Callable[[], nn.Module]:
    """torchvision's ``name`` builder; declares the schemas of its compiled ops when they do not load with this torch."""
    try:
        import torchvision
    except RuntimeError:  # "operator torchvision::nms does not exist": its C++ ops were built for another torch
        for module in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[module]
        library = torch.library.Library("torchvision", "DEF")
        for schema in (
            "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
            "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
        ):
            library.define(schema)
        _LIBRARIES.append(library)
        import torchvision
    return lambda: getattr(torchvision.models, name)(weights=None)


def child(tool: str, name: str, rate: float) -> None:
    """One torchvision model with one tool (``aac``, ``tp``; ``probe`` only builds it), in this child process; prints one JSON line."""
    make = torchvision_model(name)
    try:
        if tool == "probe":
            make()
            result: dict[str, Any] = {}
        else:
            result = measure_aac(make, 224, rate, 8) if tool == "aac" else measure_torch_pruning(make, 224, rate)
    except Exception as exc:  # reported, not raised: Torch-Pruning fails on some models
        result = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"}
    print(json.dumps(result))


def run_child(tool: str, name: str, rate: float) -> dict[str, Any]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))

    done = subprocess.run(
        [sys.executable, __file__, "--child", tool, name, "--rate", str(rate)],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return {"error": tail[:120]}
    return json.loads(lines[-1])


def torchvision_available() -> bool:
    return "error" not in run_child("probe", "resnet50", 0.0)


def torch_pruning_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch_pruning") is not None


def _row(name: str, aac: dict[str, Any], tp: dict[str, Any] | None) -> tuple[Any, ...]:
    if "error" in aac:
        return (name, f"error: {aac['error']}", "", "", "", "", "", "", "", "")
    layers = aac["layers"]
    counts = [f"{layers[k][0]}/{layers[k][1]}" if k in layers else "-" for k in ("convolutions", "linear layers", "attention layers")]
    if tp is None:
        other = "-"
    else:
        other = f"fails: {tp['error']}" if "error" in tp else f"{tp['params_kept']:.3f}"
    return (
        name,
        f"{aac['params_kept']:.3f}",
        f"{aac['flops_kept']:.3f}",
        f"{aac['stats_error']:.2%}",
        *counts,
        f"{aac['strip_diff']:.1e}",
        f"{aac['peak_rss_gb']:.2f}",
        other,
    )


def _missed(name: str, aac: dict[str, Any], tp: dict[str, Any] | None) -> list[str]:
    if "error" in aac:
        return [f"{name}: {aac['error']}"]
    missed = []
    if aac["stats_error"] > STATS_TARGET:
        missed.append(f"{name}: statistics off by {aac['stats_error']:.2%}")
    if aac["strip_diff"] > STRIP_TARGET:
        missed.append(f"{name}: stripped model differs by {aac['strip_diff']:.1e}")
    if aac["peak_rss_gb"] > RSS_TARGET_GB:
        missed.append(f"{name}: {aac['peak_rss_gb']:.2f} GB while analysed")
    if tp is not None and "params_kept" in tp and aac["params_kept"] > tp["params_kept"] + TP_MARGIN:
        missed.append(f"{name}: keeps {aac['params_kept']:.3f} of its parameters, Torch-Pruning {tp['params_kept']:.3f}")
    return missed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--model", action="append", help="run only these (pattern or torchvision names)")
    parser.add_argument("--no-torchvision", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.rate)
        return 0
    torch.set_num_threads(1)
    wanted = set(args.model or [])
    results: dict[str, dict[str, Any]] = {}
    for name, make in models.ARCHITECTURE_PATTERNS.items():
        if not wanted or name in wanted:
            results[name] = {"aac": measure_aac(make, 8, args.rate, 1), "torch_pruning": None}
    if not args.no_torchvision and torchvision_available():
        with_tp = torch_pruning_available()
        for name in TORCHVISION:
            if not wanted or name in wanted:
                results[name] = {
                    "aac": run_child("aac", name, args.rate),
                    "torch_pruning": run_child("tp", name, args.rate) if with_tp else None,
                }
                print(f"{name}: done", file=sys.stderr, flush=True)
    elif not args.no_torchvision:
        print("torchvision is not installed: only the patterns built in code are measured", file=sys.stderr)
    header = (
        "model",
        "params kept",
        "FLOPs kept",
        "stats error",
        "convs",
        "linears",
        "attention",
        "strip diff",
        "peak RSS GB",
        "TP params kept",
    )
    print(
        format_table(
            header, [_row(name, r["aac"], r["torch_pruning"]) for name, r in results.items()], f"filter pruning at rate {args.rate}"
        )
    )
    missed = [m for name, r in results.items() for m in _missed(name, r["aac"], r["torch_pruning"])]
    for line in missed:
        print(f"target missed: {line}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rate": args.rate, "results": results}, indent=2))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
