"""``quantization`` for torch models: how quantizers attach, reading weights, running batches, strip and export.

The neutral controller (:mod:`aac.quant.algorithm`) decides where quantizers go, as it does for Keras;
here they attach:

* **weights** - every selected ``Conv*``/``ConvTranspose*``/``Linear`` gets a fake quantizer as a
  weight transform (:mod:`aac.torch.transforms`): the layer computes with ``fq(weight)``;
* **activations** - the input of every such layer is fake-quantized by a forward pre-hook. Layers
  that read the same tensor (found on the neutral graph: a residual sum feeding a block's first
  convolution and its downsample) share one quantizer, so the tensor has one grid, as in a QDQ
  model. The quantizer module is a child of the first of those layers (``<layer>.aac_input_quantizer``),
  so the model's ``state_dict``, ``.to()`` and DDP carry it;
* **functional matrix products** - ``F.linear``, ``matmul``/``@``/``bmm``, scaled-dot-product and
  multi-head attention called inside a module's ``forward`` get quantized operands too
  (:mod:`.functional`).

``initialize(data_loader)`` sets the weight ranges from the weights, the activation ranges from
statistics over ``num_init_samples`` samples, chooses mixed-precision bit widths (``hawq``/``autoq``),
then re-estimates batch-norm statistics (``batchnorm_adaptation``). Activation quantizers that never
saw ``initialize`` set their range from the first batch they see, with a warning.

``strip()`` turns every quantizer into the fixed torch fake quantization that ONNX exports as
QuantizeLinear/DequantizeLinear; ``export_model("m.onnx")`` writes that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from aac.core.api import reiterable
from aac.core.config import AlgorithmSection, Config
from aac.core.graph import Node
from aac.quant.algorithm import ActivationSite, QuantizationAlgorithmBase, QuantizationError
from aac.quant.precision.ids import plain_scope
from aac.quant.report import MatmulCoverage
from aac.quant.settings import ACTIVATIONS, WEIGHTS, PrecisionSettings, QuantizerSettings
from aac.quant.torch.functional import QUANTIZERS as FUNCTIONAL_QUANTIZERS
from aac.quant.torch.functional import FunctionalQuantization, census
from aac.quant.torch.hessian import hutchinson_traces
from aac.quant.torch.onnx_graph import tidy_qdq
from aac.quant.torch.quantizers import QUANTIZABLE, FakeQuantizer, QuantizeDequantize, make_quantizer, quantize_weight_of
from aac.torch.algorithm import TorchFramework
from aac.torch.batchnorm import InputFn, restore_modes
from aac.torch.tracing import TorchModel
from aac.torch.transforms import Mask, TransformError, WeightTransform, add_transform, detach_parametrized_class

#: attribute under which an activation quantizer is registered on the first layer it feeds
INPUT_QUANTIZER = "aac_input_quantizer"


class QuantizeInput:
    """Forward pre-hook: fake-quantize a layer's first input with a (possibly shared) quantizer.

    A callable object rather than a closure, so that ``copy.deepcopy`` of the model (strip works on
    a copy) and ``torch.save`` carry it along with the model's own copy of the quantizer.
    """

    def __init__(self, quantizer: nn.Module) -> None:
        self.quantizer = quantizer

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if not args or not isinstance(args[0], torch.Tensor):
            return None
        return (self.quantizer(args[0]), *args[1:])


def _channels_and_axis(module: nn.Module, weights: bool) -> tuple[int, int]:
    """(channels, axis) of a layer's weight (output channels) or input (input channels)."""
    if isinstance(module, nn.Linear):
        return (module.out_features, 0) if weights else (module.in_features, -1)
    assert isinstance(module, nn.modules.conv._ConvNd)
    if weights:
        axis = 1 if module.transposed else 0
        return module.weight.shape[axis], axis
    return module.in_channels, 1


def _input_axis(module: nn.Module) -> int:
    """The axis of a layer's weight that indexes its input channels."""
    return 0 if isinstance(module, nn.modules.conv._ConvNd) and module.transposed else 1


def _device(module: nn.Module) -> torch.device:
    return next((p.device for p in module.parameters()), torch.device("cpu"))


class TorchQuantizationOps:
    """:class:`aac.quant.algorithm.QuantizationOps` for a ``torch.nn.Module`` (see the module docstring)."""

    def __init__(self, prepared: TorchModel) -> None:
        self.framework = TorchFramework(prepared)
        self.model = prepared.module
        self._prepared = prepared
        self._algorithm: QuantizationAlgorithmBase | None = None
        #: weight key -> (module path, tensor name) of the tensor its quantizer transforms
        self._weight_tensors: dict[str, tuple[str, str]] = {}
        #: weight keys whose quantizer the functional calls apply (not a transform of the tensor)
        self.functional_weights: set[str] = set()
        self._functional: FunctionalQuantization | None = None
        #: the functional calls traced on the float model (:meth:`bind`), until :meth:`place_functional` places their quantizers
        self._traced: Any = None

    @property
    def algorithm(self) -> QuantizationAlgorithmBase:
        """The controller :meth:`bind` bound these ops to."""
        if self._algorithm is None:
            raise QuantizationError("quantization: the torch ops are used before bind() bound them to a controller")
        return self._algorithm

    @property
    def functional(self) -> FunctionalQuantization:
        """The quantization of the functional matrix products (placed by :meth:`place_functional`)."""
        if self._functional is None:
            raise QuantizationError("quantization: the functional products are read before place_functional()")
        return self._functional

    # -- placement ----------------------------------------------------------------------------
    def bind(self, algorithm: QuantizationAlgorithmBase) -> None:
        """Bind to ``algorithm`` and trace the functional calls of the model while it is still float."""
        self._algorithm = algorithm
        self._traced = census(self.model, self._prepared.example_inputs()) if self._prepared.inputs else None

    def quantizable_kinds(self) -> str:
        return (
            f"the weights and inputs of {', '.join(t.__name__ for t in QUANTIZABLE)} layers and of functional linear/matmul/attention calls"
        )

    def quantizable_layers(self) -> list[str]:
        return [path for path, module in self.model.named_modules() if isinstance(module, QUANTIZABLE)]

    def calls_layer(self, node: Node) -> bool:
        """A call of the module itself, not a functional use of its weight (which :mod:`.functional` quantizes)."""
        return node.layer is not None and node.op == parametrize.type_before_parametrizations(self.model.get_submodule(node.layer)).__name__

    def input_layout(self, path: str) -> tuple[int, int]:
        return _channels_and_axis(self.model.get_submodule(path), weights=False)

    def attach_weight_quantizer(self, path: str, settings: QuantizerSettings) -> FakeQuantizer:
        """The quantizer as the last weight transform of the layer (:mod:`aac.torch.transforms`)."""
        module = self.model.get_submodule(path)
        quantizer = self._weight_quantizer(path, path, "weight", settings, *_channels_and_axis(module, weights=True))
        add_transform(module, "weight", quantizer)
        return quantizer

    def attach_input_quantizer(
        self, consumers: Sequence[str], settings: QuantizerSettings, layout: tuple[int, int] | None
    ) -> FakeQuantizer:
        """A child ``aac_input_quantizer`` of the first consumer and a forward pre-hook on each; a consumer's weight
        quantizer cuts it along when structured pruning removes input channels."""
        modules = [self.model.get_submodule(c) for c in consumers]
        channels, axis = layout if layout is not None else (None, _channels_and_axis(modules[0], weights=False)[1])
        quantizer = make_quantizer(settings, self.algorithm.name, channels, axis, bool(settings.signed), _device(modules[0]))
        modules[0].add_module(INPUT_QUANTIZER, quantizer)
        for path, module in zip(consumers, modules, strict=True):
            module.register_forward_pre_hook(QuantizeInput(quantizer))
            weight_quantizer = self.algorithm.weight_quantizers.get(path)
            if weight_quantizer is not None:
                weight_quantizer.link_input_partner(quantizer, _input_axis(module))
        return quantizer

    def place_functional(self) -> None:
        self._functional = FunctionalQuantization.place(self, self._traced)
        self._traced = None

    def make_functional_weight_quantizer(self, key: str, path: str, tensor_name: str, channels: int, axis: int) -> FakeQuantizer:
        """A quantizer of ``<path>.<tensor_name>`` (a parameter that a functional call reads, see :mod:`.functional`),
        applied by that call rather than as a transform of the tensor; registered with the controller as ``key``."""
        algorithm = self.algorithm
        settings, entry = algorithm.quantizer_settings(WEIGHTS, [path])
        quantizer = self._weight_quantizer(key, path, tensor_name, settings, channels, axis)
        self.functional_weights.add(key)
        algorithm.add_weight_quantizer(key, quantizer, entry)
        return quantizer

    def _weight_quantizer(
        self, key: str, path: str, tensor_name: str, settings: QuantizerSettings, channels: int, axis: int
    ) -> FakeQuantizer:
        """A quantizer of ``<path>.<tensor_name>`` (``channels`` along ``axis`` when per channel), remembered as ``key``'s."""
        module = self.model.get_submodule(path) if path else self.model
        tensor = getattr(module, tensor_name)
        quantizer = make_quantizer(settings, self.algorithm.name, channels, axis, settings.signed is not False, tensor.device)
        quantizer.label = f"{path}.{tensor_name}" if path else tensor_name
        self._weight_tensors[key] = (path, tensor_name)
        return quantizer

    def make_functional_activation_quantizer(self, owner: str, label: str, device: torch.device) -> FakeQuantizer:
        """A per-tensor quantizer of an operand of a functional call inside ``owner`` (whose overrides apply; nobody
        knows the operand's channels); the caller registers it on a module and with the controller
        (:meth:`~aac.quant.algorithm.QuantizationAlgorithmBase.add_activation_site`)."""
        algorithm = self.algorithm
        settings, entry = algorithm.quantizer_settings(ACTIVATIONS, [owner])
        settings = dataclasses.replace(settings, per_channel=False)
        quantizer = make_quantizer(settings, algorithm.name, None, -1, bool(settings.signed), device)
        quantizer.label = label
        quantizer.lazy_range = entry
        return quantizer

    # -- what mixed precision reads ------------------------------------------------------------------
    def weight_layer(self, key: str) -> str:
        return self._weight_tensors[key][0]

    def weight_numel(self, key: str) -> int:
        return int(self._weight_tensor(key).numel())

    def parameter_count(self) -> int:
        """Parameters of the model itself (the quantizers' ranges are not model weights)."""
        own = {id(p) for m in self.model.modules() if isinstance(m, FakeQuantizer) for p in m.parameters()}
        return sum(p.numel() for p in self.model.parameters() if id(p) not in own)

    def module_paths(self, scope: str) -> list[str]:
        return self._prepared.scopes.match(plain_scope(scope))

    def _weight_tensor(self, key: str) -> torch.Tensor:
        """The stored tensor a weight quantizer covers (the parameter to differentiate for Hessian traces)."""
        path, tensor_name = self._weight_tensors[key]
        module = self.model.get_submodule(path) if path else self.model
        if key in self.functional_weights:
            return getattr(module, tensor_name)  # type: ignore[no-any-return]
        return module.parametrizations[tensor_name].original  # type: ignore[no-any-return]

    def _weight_value(self, key: str) -> torch.Tensor:
        """What a weight quantizer receives (the stored tensor through the transforms before it)."""
        path, tensor_name = self._weight_tensors[key]
        if key in self.functional_weights:
            return self._weight_tensor(key)
        return _input_of_transform(self.model.get_submodule(path), tensor_name, self.algorithm.weight_quantizers[key])

    @torch.no_grad()
    def fake_quantize(self, quantizer: FakeQuantizer, values: np.ndarray) -> np.ndarray:
        device = next(iter(quantizer.buffers())).device
        return quantizer(torch.from_numpy(values).to(device)).cpu().numpy()  # type: ignore[no-any-return]

    def hessian_traces(
        self, keys: list[str], data_loader: Any, criterion: Any, criterion_fn: Any, precision: PrecisionSettings, reading: Mapping[str, Any]
    ) -> dict[str, float]:
        parameters = {key: self._weight_tensor(key) for key in keys}
        training = {name: m.training for name, m in self.model.named_modules()}
        try:
            self.model.eval()
            return hutchinson_traces(
                self.model,
                parameters,
                data_loader,
                criterion,
                criterion_fn,
                reading["input_fn"],
                precision.num_data_points,
                int(precision.iter_number or 0),
                precision.tolerance,
            )
        finally:
            restore_modes(self.model, training)

    def evaluate(self, eval_fn: Callable[..., Any], data: Any) -> Any:
        training = {name: m.training for name, m in self.model.named_modules()}
        try:
            return eval_fn(self.model, data)
        finally:
            restore_modes(self.model, training)

    # -- ranges ---------------------------------------------------------------------------------
    @torch.no_grad()
    def weight_values(self, key: str) -> np.ndarray:
        return self._weight_value(key).detach().float().cpu().numpy()

    def rereadable(self, data_loader: Any) -> bool:
        return reiterable(data_loader)

    @torch.no_grad()
    def run_batches(self, data_loader: Any, reading: Mapping[str, Any], done: Callable[[], bool]) -> None:
        """In eval mode (batch norm uses its running statistics), every module's mode restored after."""
        input_fn: InputFn = reading["input_fn"]
        training = {name: m.training for name, m in self.model.named_modules()}
        self.model.eval()
        try:
            for batch in data_loader:
                args, kwargs = input_fn(batch)
                self.model(*args, **kwargs)
                if done():
                    break
        finally:
            restore_modes(self.model, training)

    # -- strip and export ---------------------------------------------------------------------------
    def strip(self, model: nn.Module) -> nn.Module:
        """Replace every quantizer in ``model`` (a copy) by its fixed QuantizeLinear/DequantizeLinear form.

        A weight's fake-quantized values (exactly on the grid) become its stored values and its QDQ
        moves to the end of its transform chain: masks of sparsity or pruning that strip later fold
        in front of it (they commute with element-wise quantization), and pruning can still cut
        channels (the QDQ cuts its per-channel scales, and those of the layer's input quantizer).
        Once no other algorithm's transform is left, the layers become importable ``Quantized*``
        layers (:func:`finalize_quantized_layers`), so the stripped model pickles.
        """
        owner = self.algorithm.name
        replaced: dict[int, QuantizeDequantize] = {}

        def qdq(quantizer: FakeQuantizer) -> QuantizeDequantize:
            if id(quantizer) not in replaced:
                replaced[id(quantizer)] = quantizer.to_qdq()
                partner = quantizer.input_partner
                if isinstance(partner, FakeQuantizer):
                    replaced[id(quantizer)].link_input_partner(qdq(partner))
            return replaced[id(quantizer)]

        for module in list(model.modules()):
            child = getattr(module, INPUT_QUANTIZER, None)
            if isinstance(child, FakeQuantizer) and child.owner == owner:
                setattr(module, INPUT_QUANTIZER, qdq(child))
            functional = getattr(module, FUNCTIONAL_QUANTIZERS, None)
            if isinstance(functional, nn.ModuleDict):
                for key, quantizer in list(functional.items()):
                    if isinstance(quantizer, FakeQuantizer) and quantizer.owner == owner:
                        functional[key] = qdq(quantizer)
            for hook in module._forward_pre_hooks.values():
                if isinstance(hook, QuantizeInput) and isinstance(hook.quantizer, FakeQuantizer) and hook.quantizer.owner == owner:
                    hook.quantizer = qdq(hook.quantizer)
            if parametrize.is_parametrized(module):
                for tensor_name in list(module.parametrizations):
                    _strip_weight_quantizer(module, tensor_name, owner, qdq)
        if not any(isinstance(m, WeightTransform) and m.owner != owner for m in model.modules()):
            finalize_quantized_layers(model)  # every other algorithm is stripped already
        return model

    def prepare_for_export(self, stripped_model: nn.Module) -> None:
        """Finalize the quantized layers (see :meth:`_strip`) - also when quantization is not the first algorithm."""
        finalize_quantized_layers(stripped_model)

    def export(self, stripped_model: nn.Module, path: Path, **kwargs: Any) -> None:
        self.framework.export(stripped_model, path, **kwargs)

    def finish_export(self, path: Path) -> None:
        if str(path).lower().endswith(".onnx"):
            tidy_qdq(path)

    # -- reporting ----------------------------------------------------------------------------------
    def coverage(self) -> MatmulCoverage:
        return self.functional.coverage()


class QuantizationAlgorithm(QuantizationAlgorithmBase):
    """Quantization-aware training of a torch model (not adaptive: no level to search); see :class:`TorchQuantizationOps`."""

    prepared: TorchModel
    ops: TorchQuantizationOps

    def __init__(self, prepared: TorchModel, section: AlgorithmSection) -> None:
        super().__init__(TorchQuantizationOps(prepared), section)

    @property
    def functional(self) -> FunctionalQuantization:
        """The quantization of the functional matrix products (``coverage()`` lists them)."""
        return self.ops.functional


def _input_of_transform(module: nn.Module, tensor_name: str, transform: nn.Module) -> torch.Tensor:
    """What ``transform`` receives: the stored tensor through the transforms before it (in eval mode)."""
    chain = module.parametrizations[tensor_name]
    value: torch.Tensor = chain.original
    for t in chain:
        if t is transform:
            break
        training = t.training
        t.eval()
        value = t(value)
        t.train(training)
    return value


def _commutes_with_quantization(transform: nn.Module) -> bool:
    """Element-wise 0/1 masks commute with element-wise quantization (zero stays exactly zero)."""
    return isinstance(transform, Mask) or bool(getattr(transform, "is_binary_mask", False))


def _register_chain(module: nn.Module, tensor_name: str, chain: list[nn.Module], value: torch.Tensor | None = None) -> None:
    """Rebuild the transform chain of ``module.<tensor_name>`` (optionally with a new stored value)."""
    detach_parametrized_class(module)  # the module may share its parametrized class with the live model it was copied from
    parametrize.remove_parametrizations(module, tensor_name, leave_parametrized=False)
    if value is not None:
        with torch.no_grad():
            getattr(module, tensor_name).copy_(value)
    for transform in chain:
        parametrize.register_parametrization(module, tensor_name, transform)


def _strip_weight_quantizer(
    module: nn.Module, tensor_name: str, owner: str, convert: Callable[[FakeQuantizer], QuantizeDequantize]
) -> None:
    chain = list(module.parametrizations[tensor_name])
    positions = [i for i, t in enumerate(chain) if isinstance(t, FakeQuantizer) and t.owner == owner]
    if not positions:
        return
    (index,) = positions
    quantizer = chain[index]
    before, after = chain[:index], chain[index + 1 :]
    blocking = [t for t in after if not _commutes_with_quantization(t)]
    if blocking:
        raise TransformError(
            f"cannot strip quantization of {type(module).__name__}.{tensor_name}: it is followed by "
            f"{type(blocking[0]).__name__} of '{getattr(blocking[0], 'owner', '?')}', which does not commute with "
            "quantization; list quantization after that algorithm in the config"
        )
    value = None
    if not before:  # the usual case: the algorithms listed before this one are stripped already
        with torch.no_grad():
            value = quantizer(module.parametrizations[tensor_name].original).detach()
    _register_chain(module, tensor_name, [*before, *after, convert(quantizer)], value)


def finalize_quantized_layers(model: nn.Module) -> None:
    """Turn layers whose weight is transformed by nothing but its QDQ into ``Quantized*`` layers.

    Needs every other algorithm stripped (their transforms must be gone); checks that per-channel
    quantizers still match their tensors (filter removal cuts them along).
    """
    for path, module in list(model.named_modules()):
        if not parametrize.is_parametrized(module, "weight"):
            continue
        chain = list(module.parametrizations["weight"])
        grids = [t for t in chain if isinstance(t, QuantizeDequantize)]
        if not grids:
            continue
        if len(chain) > 1:
            others = [getattr(t, "owner", type(t).__name__) for t in chain if not isinstance(t, QuantizeDequantize)]
            raise TransformError(f"cannot finish quantizing '{path}': {others} still transform its weight; strip them first")
        _check_channels(path, grids[0], module.parametrizations["weight"].original, "weight")
        _register_chain(module, "weight", [])
        quantize_weight_of(module, grids[0])
    for path, module in model.named_modules():
        grid = getattr(module, INPUT_QUANTIZER, None)
        if isinstance(grid, QuantizeDequantize) and grid.axis is not None:
            channels = module.in_features if isinstance(module, nn.Linear) else getattr(module, "in_channels", None)
            if channels is not None and channels != grid.scale.numel():
                raise QuantizationError(
                    f"the per-channel input quantizer of '{path}' has {grid.scale.numel()} channels but the layer reads "
                    f"{channels}; quantize its weight too (its quantizer cuts the input quantizer along), or use "
                    "activations.per_channel false"
                )


def _check_channels(path: str, grid: QuantizeDequantize, weight: torch.Tensor, what: str) -> None:
    if grid.axis is not None and weight.shape[grid.axis] != grid.scale.numel():
        raise QuantizationError(
            f"the per-channel {what} quantizer of '{path}' has {grid.scale.numel()} channels but the {what} has "
            f"{weight.shape[grid.axis]}; the algorithm that changed the {what} did not cut its quantizer"
        )


def create(model: TorchModel, section: AlgorithmSection, config: Config) -> QuantizationAlgorithm:
    """The factory aac-core calls for a ``quantization`` section."""
    return QuantizationAlgorithm(model, section)


__all__ = [
    "QUANTIZABLE",
    "ActivationSite",
    "QuantizationAlgorithm",
    "QuantizationError",
    "QuantizeInput",
    "TorchQuantizationOps",
    "finalize_quantized_layers",
    "create",
]
