"""Tracing a ``torch.nn.Module`` into aac's neutral graph, once, when a model is prepared.

``torch.fx.symbolic_trace`` records the operations of ``forward`` without running real data. When
the config has ``input_info``, one sample forward pass (eval mode, no gradients, training flags and
batch-norm statistics restored) adds every tensor's shape, which FLOPs counting needs.

When fx cannot trace the model (data-dependent Python control flow, for example), the modules
selected by ``ignored_scopes`` are traced again as opaque blocks, so an untraceable submodule only
costs that submodule. The error raised for an untraceable model names the module and the source
line and suggests exactly that.
"""

from __future__ import annotations

import contextlib
import io
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from aac.core.errors import AacError
from aac.core.graph import Graph
from aac.core.input_info import input_entries
from aac.torch.attention import attention_spec
from aac.torch.fx_graph import build_graph
from aac.torch.scopes import ScopeIndex, ScopeSelection

_TORCH_DIR = str(Path(torch.__file__).parent)
_AAC_DIR = str(Path(__file__).parent)

#: ``input_info.type`` values; "float" (the default) means the model's own floating dtype
_DTYPES: dict[str, torch.dtype | None] = {
    "float": None,
    "float32": torch.float32,
    "half": torch.float16,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "long": torch.int64,
    "int64": torch.int64,
    "int": torch.int32,
    "int32": torch.int32,
    "bool": torch.bool,
}


class ModelTraceError(AacError):
    """A model (or one of its modules) cannot be traced, or its sample forward pass failed."""


@dataclass(frozen=True)
class InputSpec:
    """One model input from the config's ``input_info``: shape (batch included), dtype and filler."""

    shape: tuple[int, ...]
    dtype: torch.dtype | None = None
    filler: str = "zeros"

    @classmethod
    def from_config(cls, input_info: Any) -> list[InputSpec]:
        return [cls(e.shape, _DTYPES[e.kind], e.filler) for e in input_entries(input_info, _DTYPES, ModelTraceError, "torch")]

    def make(self, model: nn.Module, batch: int | None = None) -> torch.Tensor:
        """A sample input on the model's device (floating inputs in the model's dtype unless the config says otherwise)."""
        parameter = next((p for p in model.parameters() if p.is_floating_point()), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        dtype = self.dtype or (parameter.dtype if parameter is not None else torch.float32)
        shape = (batch, *self.shape[1:]) if batch is not None else self.shape
        if self.filler == "random":
            generator = torch.Generator().manual_seed(0)
            if dtype.is_floating_point:
                return torch.rand(shape, generator=generator).to(device, dtype)
            return torch.randint(0, 2, shape, generator=generator).to(device, dtype)
        fill = torch.ones if self.filler == "ones" else torch.zeros
        return fill(shape, dtype=dtype, device=device)


@dataclass
class TorchModel:
    """What the torch backend hands to algorithm factories: the user's module plus what was learned about it.

    :ivar module: the user's model; algorithms modify it in place and it is what the user gets back.
    :ivar graph: the neutral graph of ``module.forward``.
    :ivar scopes: names of all modules, for ``ignored_scopes`` / ``target_scopes``.
    :ivar inputs: the ``input_info`` inputs (empty when the config has none).
    :ivar opaque: modules traced as opaque blocks (the ``ignored_scopes`` selection, if the model
        could not be traced otherwise).
    """

    module: nn.Module
    graph: Graph
    scopes: ScopeIndex
    inputs: Sequence[InputSpec] = ()
    opaque: ScopeSelection = field(default_factory=lambda: ScopeSelection(frozenset()))

    def example_inputs(self, batch: int | None = None) -> tuple[torch.Tensor, ...]:
        """Sample inputs built from ``input_info`` on the model's device (for export and checks)."""
        if not self.inputs:
            raise ModelTraceError(
                'this needs sample inputs, but the config has no input_info; add "input_info": {"sample_size": [1, C, H, W]} to the config'
            )
        return tuple(spec.make(self.module, batch) for spec in self.inputs)


class _Tracer(fx.Tracer):
    """fx tracer that keeps opaque modules whole and remembers where tracing was when it failed."""

    def __init__(self, opaque: ScopeSelection) -> None:
        super().__init__()
        self._opaque = opaque
        self._stack: list[tuple[str, str]] = []
        #: (module path, class name) of the innermost module being traced when tracing failed
        self.failed_in: tuple[str, str] | None = None

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        """Opaque modules and attention layers aac knows (:mod:`aac.torch.attention`) stay single operations."""
        return module_qualified_name in self._opaque or attention_spec(m) is not None or super().is_leaf_module(m, module_qualified_name)

    def call_module(self, m: nn.Module, forward: Any, args: Any, kwargs: Any) -> Any:
        self._stack.append((self.path_of_module(m), type(m).__name__))
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception:
            if self.failed_in is None:  # the innermost module sees the exception first
                self.failed_in = self._stack[-1]
            raise
        finally:
            self._stack.pop()


def trace_model(model: nn.Module, input_info: Any = None, ignored: ScopeSelection | None = None) -> TorchModel:
    """Trace ``model`` into a :class:`TorchModel`.

    :param input_info: the config's ``input_info`` (one entry or a list); enables shapes.
    :param ignored: modules that may be kept as single operations if the whole model cannot be traced.
    """
    opaque = ScopeSelection(frozenset())
    try:
        gm = _trace(model, opaque)
    except ModelTraceError:
        if not ignored:
            raise
        opaque = ignored
        gm = _trace(model, opaque)
    inputs = InputSpec.from_config(input_info)
    if inputs:
        _propagate_shapes(model, gm, inputs)
    return TorchModel(module=model, graph=build_graph(gm), scopes=ScopeIndex.from_module(model, gm), inputs=inputs, opaque=opaque)


def _trace(model: nn.Module, opaque: ScopeSelection) -> fx.GraphModule:
    tracer = _Tracer(opaque)
    try:
        fx_graph = tracer.trace(model)
    except Exception as exc:
        raise ModelTraceError(_trace_failure(model, tracer, exc)) from exc
    return fx.GraphModule(tracer.root, fx_graph, type(model).__name__)


def _trace_failure(model: nn.Module, tracer: _Tracer, exc: Exception) -> str:
    path, class_name = tracer.failed_in or ("", type(model).__name__)
    module_text = f"module '{path}' ({class_name})" if path else f"the forward of {class_name} itself"
    line = _user_frame(exc)
    message = f"cannot trace {type(model).__name__} for compression: {first_line(exc)} - in {module_text}{line}. "
    if path:
        message += (
            f'Add it to "ignored_scopes" (e.g. "ignored_scopes": ["{path}"]) so aac treats it as one opaque '
            "operation and leaves it uncompressed, or rewrite its forward without data-dependent Python control flow."
        )
    else:
        message += (
            "The failing code is in the model's own forward, so it cannot be excluded with ignored_scopes: move the "
            "data-dependent part into a submodule and ignore that, or rewrite it without Python control flow on tensors."
        )
    return message


def _user_frame(exc: BaseException) -> str:
    """``" at model.py:42: if x.sum() > 0:"`` for the innermost frame outside torch and aac."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith((_TORCH_DIR, _AAC_DIR))]
    if not frames:
        return ""
    frame = frames[-1]
    code = f": {frame.line.strip()}" if frame.line else ""
    return f" at {frame.filename}:{frame.lineno}{code}"


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The innermost cause's first line: torch's messages run over many lines (graph dumps, C++ frames)."""
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _propagate_shapes(model: nn.Module, gm: fx.GraphModule, inputs: Sequence[InputSpec]) -> None:
    """One eval-mode sample pass through ``gm`` to record shapes (eval mode: batch-norm statistics stay put)."""
    training = {name: m.training for name, m in model.named_modules()}
    try:
        gm.eval()
        # ShapeProp prints a traceback of its own before raising; the error below says what matters
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            ShapeProp(gm).propagate(*(spec.make(model) for spec in inputs))
    except Exception as exc:
        shapes = [list(spec.shape) for spec in inputs]
        raise ModelTraceError(
            f"the sample forward pass of {type(model).__name__} with input_info shapes {shapes} failed: {first_line(exc)}. "
            "Check that input_info.sample_size matches what the model expects (batch dimension included)."
        ) from exc
    finally:
        for name, module in model.named_modules():
            module.training = training[name]
