"""The processes of a ``torchrun`` launch as the PyTorch demo sees them: which one this is, its device, and
the few collectives the demo needs. Started without torchrun the demo is one process and each call is trivial.

torchrun starts ``--nproc_per_node`` copies of the demo per node and tells each its place in the
environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``); see docs/distributed.md.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

#: the process-group backend for each device: gloo runs on CPUs, NCCL between GPUs
BACKENDS = {"cpu": "gloo", "cuda": "nccl"}


@dataclass(frozen=True)
class Ranks:
    """This process's place among the demo's processes."""

    rank: int
    world_size: int
    device: torch.device
    backend: str | None  # None: a single process, no process group

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and prints the report (aac's loop does the same)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None

    def shard_size(self, samples: int) -> int:
        return samples // self.world_size

    def local_batch(self, batch_size: int) -> int:
        """This process's part of a training batch: the processes' parts together make one batch of ``batch_size``,
        so the gradient DDP averages is that of the batch and training takes the same steps as in one process."""
        if batch_size % self.world_size:
            raise ValueError(
                f"a batch of {batch_size} cannot be split evenly over {self.world_size} processes; "
                f"choose a batch size that is a multiple of {self.world_size}"
            )
        return batch_size // self.world_size

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This process's part of ``order``, a permutation that is the same on every process.

        Every process gets the same number of samples (the remainder is dropped, as with
        ``DistributedSampler(drop_last=True)``): DDP needs every process in every gradient all-reduce,
        so all must run the same number of steps.
        """
        return order[self.rank : self.shard_size(len(order)) * self.world_size : self.world_size]

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` in DistributedDataParallel (gradients averaged over the processes), or ``model`` itself alone."""
        if not self.distributed:
            return model
        return DistributedDataParallel(model, device_ids=[self.device] if self.device.type == "cuda" else None)

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the processes (each process's training loss -> the loss of the epoch)."""
        if not self.distributed:
            return value
        total = torch.tensor(value, dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return float(total) / self.world_size

    def from_main(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every process."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order, on every process."""
        if not self.distributed:
            return [obj]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, obj)
        return gathered

    def copy_buffers_from_main(self, model: nn.Module) -> None:
        """Give every process rank 0's buffers (batch-norm running statistics).

        DDP keeps the parameters equal but lets each process update its buffers on its last batch,
        so after training the processes would measure slightly different accuracies of "the same" model.
        """
        if self.distributed:
            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)


@contextlib.contextmanager
def launched_processes(device: str) -> Iterator[Ranks]:
    """Join torchrun's process group if torchrun started this process; leave it cleanly at the end.

    :param device: ``cpu`` or ``cuda``; with ``cuda`` each process uses the GPU of its ``LOCAL_RANK``.
    """
    if device not in BACKENDS:
        raise ValueError(f"device {device!r} is not supported; use one of {', '.join(BACKENDS)}")
    if "RANK" not in os.environ:  # not started by torchrun
        yield Ranks(0, 1, torch.device(device), None)
        return
    place = torch.device(device, int(os.environ["LOCAL_RANK"])) if device == "cuda" else torch.device(device)
    if place.type == "cuda":
        torch.cuda.set_device(place)
    dist.init_process_group(BACKENDS[device], device_id=place if place.type == "cuda" else None)
    try:
        yield Ranks(dist.get_rank(), dist.get_world_size(), place, BACKENDS[device])
        dist.barrier()  # no process leaves the group while another is still in a collective
    finally:
        dist.destroy_process_group()
