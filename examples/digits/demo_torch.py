"""The digits demo on PyTorch: ``DigitsNet``, a hand-written training loop and core's adaptive loop."""

from __future__ import annotations

import argparse
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import DemoResult, Digits, load_config


def run(args: argparse.Namespace, data: Digits, out: Path) -> DemoResult:
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notes of the exporter
    warnings.filterwarnings("ignore", category=FutureWarning)
    import torch

    from aac.core import create_accuracy_aware_training_loop, create_compressed_model
    from aac.torch.testing.models import DigitsNet

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # the network is tiny: more threads only add synchronisation (badly so on a busy machine)
    config = load_config(args)
    x_train, x_val = (torch.from_numpy(x).unsqueeze(1) for x in (data.x_train, data.x_val))  # NCHW
    y_train, y_val = torch.from_numpy(data.y_train), torch.from_numpy(data.y_val)

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
    batches = [(x_train[i:i + args.batch_size], y_train[i:i + args.batch_size]) for i in range(0, len(x_train), args.batch_size)]
    controller.initialize(batches)  # quantization ranges (a no-op for pruning and sparsity)

    def train_epoch_fn(compression_ctrl: Any, model: torch.nn.Module, epoch: int, optimizer: Any, lr_scheduler: Any) -> float:
        def compression_loss() -> Any:
            compression_ctrl.scheduler.step()
            return compression_ctrl.loss()

        return train_epoch(model, optimizer, compression_loss)

    def configure_optimizers_fn() -> tuple[torch.optim.Optimizer, None]:
        return torch.optim.Adam(model.parameters(), lr=args.lr / 3), None

    loop = create_accuracy_aware_training_loop(config, controller, uncompressed_model_accuracy=baseline)  # mode from the config
    model = loop.run(model, train_epoch_fn=train_epoch_fn, validate_fn=lambda model, epoch: accuracy(model),
                     configure_optimizers_fn=configure_optimizers_fn, log_dir=out)

    # 3. the physically pruned model
    stripped = controller.strip()
    controller.export_model(out / "digits_pruned.pt")
    controller.export_model(out / "digits_pruned.onnx")
    return DemoResult(
        uncompressed_accuracy=baseline, pruned_accuracy=accuracy(stripped), compression_rate=loop.statistics.compression_rate,
        parameters=(sum(p.numel() for p in model.parameters()), sum(p.numel() for p in stripped.parameters())),
        statistics=controller.statistics().to_str(), loop_statistics=loop.statistics.to_str() if loop.statistics else "",
        files={"digits_pruned.pt": "stripped model (torch.load(..., weights_only=False))",
               "digits_pruned.onnx": "stripped model for onnxruntime"},
    )
