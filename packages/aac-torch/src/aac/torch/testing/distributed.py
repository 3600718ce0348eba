"""A worker that runs an accuracy-aware loop in one rank of a real ``torch.distributed`` (gloo) group.

Used by tests to check that ranks take the same decisions and end with the same weights. It lives in
a package module because ``torch.multiprocessing.spawn`` re-imports the worker by module name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from aac.torch.testing.digits import DigitsCNN, batches, digits


def adaptive_loop_worker(rank: int, world_size: int, port: int, config: dict[str, Any], log_dir: str, result_dir: str) -> None:
    """Compress, wrap in DDP, run the loop; write this rank's result to ``result_dir/rank<r>.json``.

    Rank ``r`` reports its validation metric lowered by ``10 * r`` points and hands the loop an uncompressed
    metric ``10 * r`` points higher: the ranks only agree if the loop takes rank 0's numbers everywhere, as it must.
    """
    from aac.core import create_accuracy_aware_training_loop, create_compressed_model

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        (x_train, y_train), (x_val, y_val) = digits(train=256)
        shard = batches(x_train[rank::world_size], y_train[rank::world_size], size=32)
        model = DigitsCNN()
        controller, model = create_compressed_model(model, config)
        ddp = DistributedDataParallel(model)

        def train_epoch(compression_ctrl: Any, model: Any, epoch: int, optimizer: Any, lr_scheduler: Any) -> None:
            ddp.train()
            for x, y in shard:
                compression_ctrl.scheduler.step()
                loss = torch.nn.functional.cross_entropy(ddp(x), y) + compression_ctrl.loss()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

        def validate(model: Any, epoch: int) -> float:
            model.eval()
            accuracy = float((model(x_val).argmax(1) == y_val).float().mean()) * 100
            return accuracy - 10.0 * rank

        loop = create_accuracy_aware_training_loop(config, controller, uncompressed_model_accuracy=60.0 + 10.0 * rank, verbose=False)
        loop.run(model, train_epoch, validate, lambda: (torch.optim.SGD(model.parameters(), lr=0.05), None), log_dir=log_dir)
        stats = loop.statistics
        weights = {k: float(v.double().sum()) for k, v in model.state_dict().items() if v.is_floating_point()}
        Path(result_dir, f"rank{rank}.json").write_text(
            json.dumps(
                {
                    "rate": stats.compression_rate,
                    "metric": stats.compressed_accuracy,
                    "epochs": stats.total_epochs,
                    "stop_reason": stats.stop_reason,
                    "controller_rate": controller.compression_rate,
                    "weights": weights,
                }
            )
        )
        dist.barrier()  # no rank tears the group down while another is still in a collective
    finally:
        dist.destroy_process_group()
