"""Filter pruning of every ``keras.applications`` model: how much is prunable, exact strip, ``.keras`` round trip.

    python benchmarks/keras_applications.py [--model NAME ...] [--rate 0.5] [--json PATH] [--out DIR]

Each model is built in Keras 3 with ``weights=None`` (no download) at a small input (32x32, 75x75 for
the Inception models, 71x71 for Xception), 10 classes as logits (no softmax), batch-norm statistics and
ConvNeXt's layer scales randomised so that a wrongly cut channel shows. ``filter_pruning`` at ``--rate`` (0.5) with ``prune_first_conv``,
``prune_downsample_convs`` and ``filters_multiple_of: 8``; then:

* **params kept / FLOPs kept**: parameters of the stripped model (counted from its variables, as PyTorch
  counts them) and FLOPs (aac's statistics, 2 per multiply-add) over the original's;
* **stats exact**: whether the statistics' parameter counts equal the counts of the original and the
  stripped model (the ``other params`` term is then never negative);
* **strip diff**: max |stripped - masked| / max |masked| over a random batch (target <= 1e-5);
* **.keras**: the stripped model written with ``controller.export_model``, loaded back and compared.

Targets (exit status 1 if one is missed): every model strips exactly (relative difference <= 1e-5)
and keeps at most 60 % of its parameters. Writes a JSON with every number (``--json``) and prints a table.
The largest models (ConvNeXtXLarge, EfficientNetB7) need several GB of memory and minutes each.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras
import numpy as np

from aac.core import create_compressed_model
from aac.core.statistics import format_table
from aac.pruning.tf.strip import parameter_count

STRIP_TARGET = 1e-5
PARAMS_TARGET = 0.60
CLASSES = 10
#: smallest input each family accepts (keras.applications' min_size); everything else runs at 32x32
INPUT_SIZES = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}


def application_names() -> list[str]:
    """Every model constructor of ``keras.applications`` (its public names that are classes' builders)."""
    return sorted(name for name in dir(keras.applications) if name[0].isupper() and callable(getattr(keras.applications, name)))


def build(name: str) -> tuple[Any, int]:
    size = INPUT_SIZES.get(name, 32)
    keras.utils.set_random_seed(0)
    # logits, not softmax probabilities: a softmax over 10 near-equal classes would hide any difference
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classes=CLASSES, classifier_activation=None)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # non-trivial batch-norm statistics and scales, as after training
        if type(layer).__name__ == "LayerScale":  # ConvNeXt's starts at 1e-6, which would hide its blocks' outputs
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape))
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = layer.moving_mean.shape
            layer.moving_mean.assign(rng.uniform(-0.5, 0.5, shape))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, shape))
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, shape))
            if layer.center:
                layer.beta.assign(rng.uniform(-0.5, 0.5, shape))
    return model, size


def measure(name: str, rate: float, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    model, size = build(name)
    full_params = parameter_count(model)
    config = {
        "input_info": {"sample_size": [1, size, size, 3]},
        "compression": {
            "algorithm": "filter_pruning",
            "params": {"prune_first_conv": True, "prune_downsample_convs": True, "filters_multiple_of": 8},
        },
    }
    controller, model = create_compressed_model(model, config)
    row: dict[str, Any] = {
        "model": name,
        "input": size,
        "params": full_params,
        "groups": len(controller.analysis.groups),
        "kept_whole": sum(len(k.producers) for k in controller.analysis.kept),
    }
    controller.compression_rate = min(rate, controller.maximal_compression_rate)
    x = np.random.default_rng(1).normal(size=(4, size, size, 3)).astype("float32")
    masked = np.asarray(model(x, training=False))
    stripped = controller.strip()
    scale = float(np.max(np.abs(masked))) or 1.0
    row["strip_diff"] = float(np.max(np.abs(np.asarray(stripped(x, training=False)) - masked))) / scale
    kept_params = parameter_count(stripped)
    table = {r[0]: r[1:3] for r in controller.statistics()["filter_pruning"].tables[0].rows}
    row.update(
        params_kept=kept_params / full_params,
        flops_kept=table["FLOPs"][1] / table["FLOPs"][0],
        rate=controller.compression_rate,
        stats_exact=table["Parameters"] == (full_params, kept_params),
    )
    path = controller.export_model(out / f"{name}.keras")
    loaded = keras.saving.load_model(path, compile=False)
    row["keras_diff"] = float(np.max(np.abs(np.asarray(loaded(x, training=False)) - masked))) / scale
    path.unlink()
    row["seconds"] = time.perf_counter() - started
    row["ok"] = row["strip_diff"] <= STRIP_TARGET and row["keras_diff"] <= STRIP_TARGET and row["params_kept"] <= PARAMS_TARGET
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="a keras.applications name (repeatable; default: all)")
    parser.add_argument("--rate", type=float, default=0.5, help="filter pruning rate")
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    args = parser.parse_args(argv)
    names = args.model or application_names()
    unknown = sorted(set(names) - set(application_names()))
    if unknown:
        parser.error(f"not in keras.applications: {unknown}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            try:
                row = measure(name, args.rate, Path(folder))
            except Exception as exc:  # one model's failure is a result, not the end of the sweep
                row = {"model": name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", "ok": False}
            rows.append(row)
            print(json.dumps(row), flush=True)
            keras.backend.clear_session()
            gc.collect()
    header = (
        "model",
        "input",
        "params",
        "groups",
        "kept whole",
        "rate",
        "params kept",
        "FLOPs kept",
        "stats exact",
        "strip diff",
        ".keras diff",
        "s",
        "ok",
    )
    print(
        format_table(
            header,
            [
                (
                    r["model"],
                    r.get("input", ""),
                    r.get("params", ""),
                    r.get("groups", ""),
                    r.get("kept_whole", ""),
                    f"{r['rate']:.3f}" if "rate" in r else "",
                    f"{r['params_kept']:.1%}" if "params_kept" in r else r.get("error", ""),
                    f"{r['flops_kept']:.1%}" if "flops_kept" in r else "",
                    r.get("stats_exact", ""),
                    f"{r['strip_diff']:.1e}" if "strip_diff" in r else "",
                    f"{r['keras_diff']:.1e}" if "keras_diff" in r else "",
                    f"{r['seconds']:.0f}" if "seconds" in r else "",
                    "yes" if r["ok"] else "NO",
                )
                for r in rows
            ],
        )
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rate": args.rate, "keras": keras.__version__, "rows": rows}, indent=2))
    failed = [r["model"] for r in rows if not r["ok"]]
    print(f"{len(rows) - len(failed)}/{len(rows)} models meet the targets" + (f"; missed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
