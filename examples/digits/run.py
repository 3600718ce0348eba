"""Accuracy-aware filter pruning of a small residual CNN on sklearn's digits, end to end, on a CPU.

1. train the CNN and measure its accuracy (in percent);
2. let aac's adaptive loop search the highest filter-pruning rate that loses at most one percentage
   point (``filter_pruning.json``, the same file for both frameworks);
3. write the physically pruned model (PyTorch: ``.pt`` and ``.onnx``; TensorFlow: ``.keras`` and a
   SavedModel), the search history and plot, TensorBoard events and the final statistics into one
   run folder.

    python examples/digits/run.py --out runs/digits                     # PyTorch
    python examples/digits/run.py --framework tf --out runs/digits-tf   # TensorFlow/Keras

The frameworks' parts are ``demo_torch.py`` and ``demo_tf.py``; config, data and the report are
shared (``common.py``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRAMEWORKS = ("torch", "tf")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", default="torch", help=f"deep-learning framework of the demo ({' or '.join(FRAMEWORKS)})")
    parser.add_argument("--config", type=Path, default=HERE / "filter_pruning.json", help="aac config (commented JSON)")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: runs/digits/<timestamp>)")
    parser.add_argument("--epochs", type=int, default=15, help="epochs to train the uncompressed model")
    parser.add_argument("--initial-epochs", type=int, help="override initial_training_phase_epochs")
    parser.add_argument("--patience", type=int, help="override patience_epochs")
    parser.add_argument("--max-epochs", type=int, help="override maximal_total_epochs of the search")
    parser.add_argument("--width", type=int, default=32, help="filters of the first stage")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.framework not in FRAMEWORKS:
        parser.error(f"--framework {args.framework} is not available; this demo runs with: {', '.join(FRAMEWORKS)}")
    if args.out is None:
        args.out = Path("runs") / "digits" / datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # TensorFlow (the tf demo, or TensorBoard's writer when it is installed) is quiet only if told before its import
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    sys.path.insert(0, str(HERE))  # common.py and the frameworks' parts, also when run.py is imported
    from common import load_data, write_report

    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    framework = importlib.import_module(f"demo_{args.framework}")
    result = framework.run(args, load_data(args.seed), out)
    write_report(result, args.framework, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
