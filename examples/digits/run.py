"""Accuracy-aware filter pruning of a small residual CNN on sklearn's digits, end to end, on a CPU.

1. train the CNN and measure its accuracy (in percent);
2. let aac's adaptive loop search the highest filter-pruning rate that loses at most one percentage
   point (``filter_pruning.json``);
3. write the physically pruned model (``.pt`` and ``.onnx``), the search history and plot, TensorBoard
   events and the final statistics into one run folder.

    python examples/digits/run.py --out runs/digits
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FRAMEWORKS = ("torch",)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--framework", default="torch", help="deep-learning framework of the demo (available: torch)")
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
        parser.error(f"--framework {args.framework} is not available yet; this demo runs with: {', '.join(FRAMEWORKS)}")
    if args.out is None:
        args.out = Path("runs") / "digits" / datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return args


def load_config(args: argparse.Namespace) -> Any:
    """The config file, with the command line's overrides of the search settings."""
    from aac.core import load_config as load

    config = copy.deepcopy(dict(load(args.config)))
    overrides = {"initial_training_phase_epochs": args.initial_epochs, "patience_epochs": args.patience,
                 "maximal_total_epochs": args.max_epochs}
    config["accuracy_aware_training"]["params"].update({k: v for k, v in overrides.items() if v is not None})
    return load(config)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # TensorBoard's writer imports TensorFlow when it is installed; keep its start-up chatter out of the demo
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notes of the exporter
    warnings.filterwarnings("ignore", category=FutureWarning)
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from aac.core import AdaptiveCompressionTrainingLoop, create_compressed_model
    from aac.torch.testing.models import DigitsNet

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # the network is tiny: more threads only add synchronisation (badly so on a busy machine)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    config = load_config(args)

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(digits.target)
    x_train, x_val, y_train, y_val = train_test_split(images, labels, test_size=0.2, random_state=args.seed, stratify=labels)

    def train_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, add_loss: Callable[[], Any]) -> float:
        model.train()
        order = torch.randperm(len(x_train))
        total = 0.0
        for start in range(0, len(order), args.batch_size):
            batch = order[start:start + args.batch_size]
            loss = torch.nn.functional.cross_entropy(model(x_train[batch]), y_train[batch]) + add_loss()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss) * len(batch)
        return total / len(x_train)

    def accuracy(model: torch.nn.Module) -> float:
        """Validation accuracy in percent."""
        model.eval()
        with torch.no_grad():
            return 100.0 * float((model(x_val).argmax(1) == y_val).float().mean())

    # 1. the uncompressed model
    model = DigitsNet(width=args.width)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        loss = train_epoch(model, optimizer, lambda: 0.0)
        print(f"[demo] pre-training epoch {epoch + 1}/{args.epochs}: loss {loss:.4f}")
    baseline = accuracy(model)
    print(f"[demo] uncompressed accuracy: {baseline:.2f}%")

    # 2. the accuracy-aware search
    controller, model = create_compressed_model(model, config)

    def train_epoch_fn(compression_ctrl: Any, model: torch.nn.Module, epoch: int, optimizer: Any, lr_scheduler: Any) -> float:
        def compression_loss() -> Any:
            compression_ctrl.scheduler.step()
            return compression_ctrl.loss()

        return train_epoch(model, optimizer, compression_loss)

    def configure_optimizers_fn() -> tuple[torch.optim.Optimizer, None]:
        return torch.optim.Adam(model.parameters(), lr=args.lr / 3), None

    loop = AdaptiveCompressionTrainingLoop(config, controller, uncompressed_model_accuracy=baseline)
    model = loop.run(model, train_epoch_fn=train_epoch_fn, validate_fn=lambda model, epoch: accuracy(model),
                     configure_optimizers_fn=configure_optimizers_fn, log_dir=out)

    # 3. the physically pruned model
    stripped = controller.strip()
    stripped_accuracy = accuracy(stripped)
    controller.export_model(out / "digits_pruned.pt")
    controller.export_model(out / "digits_pruned.onnx")
    full_params = sum(p.numel() for p in model.parameters())
    kept_params = sum(p.numel() for p in stripped.parameters())
    table = "\n\n".join([controller.statistics().to_str(), loop.statistics.to_str() if loop.statistics else ""])
    (out / "final_table.txt").write_text(table + "\n")
    summary = {"uncompressed_accuracy": baseline, "pruned_accuracy": stripped_accuracy,
               "compression_rate": controller.compression_rate, "parameters": {"full": full_params, "pruned": kept_params}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    print(table)
    print(f"\n[demo] accuracy {baseline:.2f}% -> {stripped_accuracy:.2f}% at filter pruning rate "
          f"{controller.compression_rate:.3f}; parameters {full_params} -> {kept_params}")
    print(f"[demo] everything is in {out}:")
    for name, what in [("digits_pruned.pt", "stripped model (torch.load(..., weights_only=False))"),
                       ("digits_pruned.onnx", "stripped model for onnxruntime"),
                       ("history.json", "search history (also history.csv)"), ("search.png", "plot of the search"),
                       ("tensorboard", "TensorBoard events (tensorboard --logdir ...)"),
                       ("final_table.txt", "final statistics tables"), ("summary.json", "headline numbers")]:
        print(f"  {out / name}  - {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
