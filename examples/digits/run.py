"""Accuracy-aware filter pruning of a small residual CNN on sklearn's digits, end to end, on a CPU.

1. split the digits into training, validation and held-out test images (stratified);
2. train the CNN to convergence and measure it;
3. let aac's adaptive loop search the highest filter-pruning rate that loses at most one percentage
   point of *validation* accuracy (``filter_pruning.json``, the same file for both frameworks);
4. report what that bought on the *test* images, which the search never saw: accuracy, parameters,
   multiply-accumulates and latency of the original against the physically pruned model, and every
   file of the run folder (models, search history and plot, TensorBoard events, final statistics).

    python examples/digits/run.py --out runs/digits                     # PyTorch
    python examples/digits/run.py --framework tf --out runs/digits-tf   # TensorFlow/Keras
    torchrun --standalone --nproc_per_node 2 examples/digits/run.py --out runs/digits-ddp   # 2 processes, DDP

The frameworks' parts are ``demo_torch.py`` and ``demo_tf.py``; config and data (``common.py``),
latency (``measure.py``) and the report (``report.py``) are shared; ``ranks.py`` joins torchrun's
processes (docs/distributed.md).
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
    parser.add_argument("--epochs", type=int, default=25, help="epochs to train the uncompressed model (one learning-rate cycle)")
    parser.add_argument("--initial-epochs", type=int, help="override initial_training_phase_epochs")
    parser.add_argument("--patience", type=int, help="override patience_epochs")
    parser.add_argument("--max-epochs", type=int, help="override maximal_total_epochs of the search")
    parser.add_argument("--width", type=int, default=32, help="filters of the first stage")
    parser.add_argument("--batch-size", type=int, default=64, help="images per training step (under torchrun, all processes together)")
    parser.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of pre-training (the search fine-tunes at a third)")
    parser.add_argument("--latency-runs", type=int, default=100, help="timed runs per model and batch size (the median is reported)")
    parser.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="PyTorch device; under torchrun with cuda each process takes the GPU of its LOCAL_RANK",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the data split, the initial weights and the shuffles")
    args = parser.parse_args(argv)
    if args.framework not in FRAMEWORKS:
        parser.error(f"--framework {args.framework} is not available; this demo runs with: {', '.join(FRAMEWORKS)}")
    if args.framework != "torch" and "RANK" in os.environ:
        parser.error(f"--framework {args.framework} does not run under torchrun; only the PyTorch demo is distributed")
    if args.out is None:
        args.out = Path("runs") / "digits" / datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # TensorFlow (the tf demo, or TensorBoard's writer when it is installed) is quiet only if told before its import
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    sys.path.insert(0, str(HERE))  # common.py and the frameworks' parts, also when run.py is imported
    from common import load_data
    from report import write_report

    out: Path = args.out.resolve()
    data = load_data(args.seed)
    framework = importlib.import_module(f"demo_{args.framework}")
    result = framework.run(args, data, out)
    if result is not None:  # None: a torchrun process other than rank 0, which reports nothing
        write_report(result, args.framework, data, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
