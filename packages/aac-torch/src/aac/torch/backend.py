"""``TorchBackend``: how aac's framework-neutral loops save, restore, schedule and synchronise PyTorch runs."""

from __future__ import annotations

import contextlib
import copy
import pickle
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from aac.core.atomic import atomic_write
from aac.core.backend import Backend
from aac.core.config import Config
from aac.core.errors import AacError, CheckpointError
from aac.core.scopes import listed_in
from aac.torch.scopes import ScopeIndex
from aac.torch.tracing import TorchModel, trace_model
from aac.torch.transforms import has_transforms

#: learning-rate fields that LR schedulers keep per parameter group (OneCycleLR, CyclicLR, warm restarts)
_GROUP_LR_KEYS = ("lr", "initial_lr", "max_lr", "min_lr")
#: learning-rate lists that LR schedulers keep on themselves
_SCHEDULER_LR_ATTRS = ("base_lrs", "max_lrs", "min_lrs")


class TorchBackend(Backend):
    """The backend for ``torch.nn.Module`` models."""

    name = "torch"
    checkpoint_suffix = ".pt"

    # -- model preparation -------------------------------------------------------------
    def prepare_model(self, model: nn.Module, config: Config) -> TorchModel:
        """Trace ``model`` once (modules in an ``ignored_scopes`` list become opaque blocks if it cannot be traced whole)."""
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            raise AacError(
                f"create_compressed_model got a {type(model).__name__} wrapper: pass the wrapped model (model.module), "
                f"then wrap the compressed model in {type(model).__name__} - compression changes the parameters the "
                "wrapper was built with"
            )
        if has_transforms(model):
            raise AacError(
                f"{type(model).__name__} already carries aac compression (from an earlier create_compressed_model); "
                "pass the original model, or restore a saved run with compression_state= and load_state_dict()"
            )
        index = ScopeIndex.from_module(model)
        sections = config.compression_sections()
        ignored = [entry for section in sections for entry in section.ignored_scopes]
        selection = index.select(
            ignored,
            key="ignored_scopes",
            where=listed_in(sections, "ignored_scopes"),
            strict=all(section.validate_scopes for section in sections),
        )
        return trace_model(model, config.get("input_info"), selection)

    def finalize_model(self, prepared: TorchModel, controller: Any) -> nn.Module:
        """The user's own module object: algorithms changed it in place, so it is called exactly as before."""
        return prepared.module

    # -- checkpoints -------------------------------------------------------------------
    def model_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return {key: value.detach().clone() for key, value in model.state_dict().items()}

    def load_model_state(self, model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
        model.load_state_dict(state)

    def model_structure(self, model: nn.Module) -> dict[str, Any]:
        """Every entry of the state dict and its shape (no copy of the weights)."""
        return {key: list(value.shape) for key, value in model.state_dict().items()}

    def save_checkpoint(self, path: Path, payload: Mapping[str, Any]) -> None:
        atomic_write(path, lambda handle: torch.save(dict(payload), handle))

    def load_checkpoint(self, path: Path) -> dict[str, Any]:
        """Load with ``weights_only=True`` (no arbitrary code runs), onto the CPU."""
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError as exc:
            raise CheckpointError(f"checkpoint {path} does not exist") from exc
        except pickle.UnpicklingError as exc:
            raise CheckpointError(
                f"checkpoint {path} holds objects that safe (weights_only) loading refuses, or is corrupt: {exc}"
            ) from exc
        except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
            raise CheckpointError(f"checkpoint {path} is corrupt or not a torch checkpoint: {exc}") from exc
        if not isinstance(payload, dict):
            raise CheckpointError(f"checkpoint {path} holds a {type(payload).__name__}, not an aac checkpoint dict")
        return payload

    def optimizer_problem(self, optimizer: Any) -> str | None:
        if isinstance(optimizer, torch.optim.Optimizer):
            return None
        return f"is a {type(optimizer).__name__}, not a torch.optim.Optimizer"

    def optimizer_state(self, optimizer: Any) -> Any:
        """A deep copy: the optimizer keeps updating its live state tensors."""
        return copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None

    def rng_state(self) -> dict[str, Any]:
        """Python, NumPy (the base class's) and torch (CPU and CUDA) generator states, in weights_only-safe types."""
        state = {**super().rng_state(), "torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def set_rng_state(self, state: Any) -> None:
        super().set_rng_state(state)
        if not state:
            return
        if "torch" in state:
            torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])

    # -- learning rate -----------------------------------------------------------------
    def scale_learning_rate(self, optimizer: Any, lr_scheduler: Any, factor: float) -> None:
        """Scale every learning rate the optimizer and its scheduler(s) will use from now on.

        Schedulers derive the rate from their own copies (``base_lrs``, ``max_lrs``, the groups'
        ``initial_lr``), so scaling only ``param_groups[i]["lr"]`` would be undone at the next step.
        """
        for group in getattr(optimizer, "param_groups", ()):
            for key in _GROUP_LR_KEYS:
                if isinstance(group.get(key), (int, float)):
                    group[key] *= factor
        for scheduler in _schedulers(lr_scheduler):
            for attr in _SCHEDULER_LR_ATTRS:
                values = getattr(scheduler, attr, None)
                if isinstance(values, list):
                    setattr(scheduler, attr, [v * factor for v in values])

    def step_lr_scheduler(self, lr_scheduler: Any, epoch: int, metric: float) -> None:
        """``ReduceLROnPlateau`` gets the validation metric; other schedulers just step."""
        if isinstance(lr_scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            lr_scheduler.step(metric)
        elif lr_scheduler is not None:
            lr_scheduler.step()

    # -- evaluation and logging --------------------------------------------------------
    @contextlib.contextmanager
    def evaluation_mode(self, model: nn.Module) -> Iterator[None]:
        """``no_grad`` with every module in eval mode, then each module's own mode back.

        A ``validate_fn`` that forgets ``model.eval()`` would otherwise validate with dropout on and
        update batch-norm statistics; restoring per module keeps a user's frozen (eval-mode) parts frozen.
        """
        modes = [(module, module.training) for module in model.modules()]
        model.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            for module, training in modes:
                module.training = training

    def create_tensorboard_writer(self, log_dir: Path) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is an optional extra
            return None
        return SummaryWriter(log_dir=str(log_dir))

    # -- distributed -------------------------------------------------------------------
    def rank(self) -> int:
        return dist.get_rank() if _distributed() else 0

    def world_size(self) -> int:
        return dist.get_world_size() if _distributed() else 1

    def broadcast(self, obj: Any) -> Any:
        if not _distributed():
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if _distributed():
            dist.barrier()


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def _schedulers(lr_scheduler: Any) -> list[Any]:
    """The scheduler and, for SequentialLR / ChainedScheduler, the ones it drives."""
    if lr_scheduler is None:
        return []
    children = getattr(lr_scheduler, "_schedulers", [])
    return [lr_scheduler, *(s for child in children for s in _schedulers(child))]
