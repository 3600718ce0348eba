"""The digits demo on PyTorch: ``DigitsNet``, a hand-written training loop, core's adaptive loop, and
DistributedDataParallel over the processes when torchrun starts it (docs/distributed.md).

Under torchrun every process runs all of this: each trains on its own shard of every epoch, the loop
validates on every process and decides on rank 0's number, and only rank 0 writes and measures.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import Digits, epochs_per_optimizer, load_config
from measure import LATENCY_BATCHES, onnxruntime_description, onnxruntime_latency_ms
from ranks import Ranks, launched_processes
from report import Comparison, DemoResult
from torch import nn
from torch.nn import functional as F

ORIGINAL_ONNX = "digits_original.onnx"
PRUNED_ONNX = "digits_pruned.onnx"
PRUNED_PT = "digits_pruned.pt"
FILES = {
    ORIGINAL_ONNX: "the original (uncompressed) model for onnxruntime: the baseline of the latency comparison",
    PRUNED_ONNX: "the stripped, physically smaller model for onnxruntime",
    PRUNED_PT: "the stripped model (torch.load(..., weights_only=False))",
}
#: AdamW's weight decay in pre-training
WEIGHT_DECAY = 1e-4


@dataclass(frozen=True)
class Split:
    """One part of the data as tensors on the training device (images NCHW)."""

    x: torch.Tensor
    y: torch.Tensor

    @classmethod
    def of(cls, images: np.ndarray, labels: np.ndarray, device: torch.device) -> Split:
        return cls(torch.from_numpy(images).unsqueeze(1).to(device), torch.from_numpy(labels).to(device))


@dataclass(frozen=True)
class Original:
    """The uncompressed model's numbers, taken before compression changes it in place."""

    validation_accuracy: float
    test_accuracy: float
    parameters: int
    macs: int


def run(args: argparse.Namespace, data: Digits, out: Path) -> DemoResult | None:
    """The whole demo in this process; the report's numbers on rank 0, ``None`` on the other processes."""
    from aac.torch.testing.models import DigitsNet

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # the network is tiny: more threads only add synchronisation (badly so on a busy machine)
    with launched_processes(args.device) as ranks:
        out = Path(ranks.from_main(str(out)))  # a default --out holds a timestamp: take rank 0's
        train, val, test = (
            Split.of(x, y, ranks.device) for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test))
        )
        print(
            f"[demo] process {ranks.rank}/{ranks.world_size} on {ranks.device}: trains on "
            f"{ranks.shard_size(len(train.y))} of {len(train.y)} training images per epoch",
            flush=True,
        )

        model = DigitsNet(width=args.width).to(ranks.device)
        pretrain(model, train, ranks, args)
        original = measure_original(model, val, test)
        if ranks.is_main:
            print(
                f"[demo] uncompressed model: validation accuracy {original.validation_accuracy:.2f}%, "
                f"test accuracy {original.test_accuracy:.2f}%"
            )
            out.mkdir(parents=True, exist_ok=True)
            export(model, out / ORIGINAL_ONNX, val.x[:1])

        controller, model, loop = search(model, original.validation_accuracy, train, val, ranks, args, out)
        shards = ranks.gather(ranks.shard_size(len(train.y)))
        if not ranks.is_main:
            return None
        stripped = controller.strip()
        controller.export_model(out / PRUNED_PT)
        controller.export_model(out / PRUNED_ONNX)
        original_ms, compressed_ms = (
            onnxruntime_latency_ms(out / name, LATENCY_BATCHES, args.latency_runs) for name in (ORIGINAL_ONNX, PRUNED_ONNX)
        )
        return DemoResult(
            test_accuracy=Comparison(original.test_accuracy, accuracy(stripped, test)),
            validation_accuracy=Comparison(loop.statistics.uncompressed_accuracy, loop.statistics.compressed_accuracy),
            compression_rate=loop.statistics.compression_rate,
            parameters=Comparison(original.parameters, parameter_count(stripped)),
            macs=Comparison(original.macs, macs_per_image(stripped, val.x[:1])),
            macs_counted_by="torch.utils.flop_counter on the models",
            latency_ms={batch: Comparison(original_ms[batch], compressed_ms[batch]) for batch in LATENCY_BATCHES},
            latency_measured_with=onnxruntime_description(),
            latency_runs=args.latency_runs,
            statistics=controller.statistics().to_str(),
            loop_statistics=loop.statistics.to_str(),
            files=FILES,
            processes={
                "world_size": ranks.world_size,
                "backend": ranks.backend,
                "device": str(ranks.device),
                "train_images_per_process": shards,
            },
        )


def pretrain(model: nn.Module, train: Split, ranks: Ranks, args: argparse.Namespace) -> None:
    """Train the uncompressed model to convergence: AdamW under a one-cycle learning-rate schedule.

    The schedule warms up, then anneals the learning rate towards zero, so the last epochs settle into
    a minimum instead of bouncing around it: the baseline the search compares against is the best this
    model gets, not a lucky or unlucky last step.
    """
    trained = ranks.wrap(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=WEIGHT_DECAY)
    steps_per_epoch = -(-ranks.shard_size(len(train.y)) // ranks.local_batch(args.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    for epoch in range(args.epochs):
        loss = train_epoch(trained, optimizer, train, ranks, epoch_seed(args, epoch), args.batch_size, lr_schedule=schedule)
        if ranks.is_main:
            print(f"[demo] pre-training epoch {epoch + 1}/{args.epochs}: loss {loss:.3e}")
    ranks.copy_buffers_from_main(model)


def search(
    model: nn.Module, uncompressed_accuracy: float, train: Split, val: Split, ranks: Ranks, args: argparse.Namespace, out: Path
) -> tuple[Any, nn.Module, Any]:
    """Compress ``model`` and let the accuracy-aware loop search the rate: ``(controller, model, loop)``."""
    from aac.core import create_accuracy_aware_training_loop, create_compressed_model

    config = load_config(args)
    controller, model = create_compressed_model(model, config)
    # batch-norm statistics of the search's probes: the same images on every process, so all probe alike
    controller.initialize(
        [(train.x[i : i + args.batch_size], train.y[i : i + args.batch_size]) for i in range(0, len(train.y), args.batch_size)]
    )
    trained = ranks.wrap(model)  # after compression: DDP must see the parameters the compressed model trains

    def train_epoch_fn(compression_ctrl: Any, model: nn.Module, epoch: int, optimizer: Any, lr_scheduler: Any) -> float:
        return train_epoch(
            trained, optimizer, train, ranks, epoch_seed(args, args.epochs + epoch), args.batch_size, compression_ctrl=compression_ctrl
        )

    def validate_fn(model: nn.Module, epoch: int) -> float:
        return accuracy(model, val)  # on every process; the loop takes rank 0's number

    def configure_optimizers_fn() -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        """A fresh Adam for every compression level, its learning rate annealed by a cosine over the level's epochs.

        The loop steps the schedule after every epoch: a level starts at the pre-training peak, which lets the
        pruned network re-learn, and its last epochs settle, so the level is judged on settled weights.
        """
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs_per_optimizer(config))

    loop = create_accuracy_aware_training_loop(config, controller, uncompressed_model_accuracy=uncompressed_accuracy)
    model = loop.run(
        model, train_epoch_fn=train_epoch_fn, validate_fn=validate_fn, configure_optimizers_fn=configure_optimizers_fn, log_dir=out
    )
    return controller, model, loop


def epoch_seed(args: argparse.Namespace, epoch: int) -> int:
    """The seed of one epoch's shuffle: the same on every process (each takes its shard of it) and on a resumed run."""
    return args.seed * 1_000_003 + epoch


def train_epoch(
    trained: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: Split,
    ranks: Ranks,
    seed: int,
    batch_size: int,
    *,
    lr_schedule: Any = None,
    compression_ctrl: Any = None,
) -> float:
    """One epoch over this process's shard, in batches of ``batch_size`` over all processes; returns the mean
    training loss over all processes.

    :param lr_schedule: a per-batch learning-rate schedule, stepped after every batch.
    :param compression_ctrl: the search's controller: its scheduler steps before every batch and its loss
        joins the task loss.
    """
    trained.train()
    order = ranks.shard(torch.randperm(len(train.y), generator=torch.Generator().manual_seed(seed)))
    local_batch = ranks.local_batch(batch_size)
    total = torch.zeros((), device=ranks.device)
    for start in range(0, len(order), local_batch):
        batch = order[start : start + local_batch].to(ranks.device)
        loss = F.cross_entropy(trained(train.x[batch]), train.y[batch])
        if compression_ctrl is not None:
            compression_ctrl.scheduler.step()
            loss = loss + compression_ctrl.loss()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if lr_schedule is not None:
            lr_schedule.step()
        total += loss.detach() * len(batch)
    return ranks.mean(float(total) / len(order))


def accuracy(model: nn.Module, split: Split) -> float:
    """Accuracy on ``split`` in percent."""
    model.eval()
    with torch.no_grad():
        return 100.0 * int((model(split.x).argmax(1) == split.y).sum()) / len(split.y)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def macs_per_image(model: nn.Module, image: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass of ``image`` (a batch of one), as ``torch.utils.flop_counter`` counts
    them: convolutions and matrix products (it reports FLOPs, two per multiply-accumulate)."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(image)
    return counter.get_total_flops() // 2


def measure_original(model: nn.Module, val: Split, test: Split) -> Original:
    return Original(
        validation_accuracy=accuracy(model, val),
        test_accuracy=accuracy(model, test),
        parameters=parameter_count(model),
        macs=macs_per_image(model, val.x[:1]),
    )


def export(model: nn.Module, path: Path, image: torch.Tensor) -> None:
    """``model`` to ONNX as aac exports stripped models (dynamic batch), so the two files compare like with like."""
    from aac.torch.export import export_module

    export_module(model, path, (image,))
