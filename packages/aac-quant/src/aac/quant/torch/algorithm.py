"""``quantization`` for torch models: where quantizers go, range initialization, strip and export.

Placement:

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
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from aac.core.api import reiterable
from aac.core.config import AlgorithmSection, Config
from aac.quant.algorithm import ActivationSite, QuantizationAlgorithmBase, QuantizationError
from aac.quant.placement import input_sites
from aac.quant.precision.ids import plain_scope
from aac.quant.ranges import Collection, collector_for
from aac.quant.report import MatmulCoverage
from aac.quant.settings import ACTIVATIONS, WEIGHTS, PrecisionSettings
from aac.quant.torch.functional import QUANTIZERS as FUNCTIONAL_QUANTIZERS
from aac.quant.torch.functional import FunctionalQuantization, census
from aac.quant.torch.hessian import hutchinson_traces
from aac.quant.torch.onnx_graph import tidy_qdq
from aac.quant.torch.quantizers import QUANTIZABLE, FakeQuantizer, QuantizeDequantize, make_quantizer, quantize_weight_of
from aac.torch.algorithm import TorchFramework
from aac.torch.batchnorm import InputFn, restore_modes
from aac.torch.tracing import TorchModel
from aac.torch.transforms import Mask, TransformError, WeightTransform, add_transform, detach_parametrized_class

logger = logging.getLogger("aac.quant")

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

    @property
    def algorithm(self) -> QuantizationAlgorithmBase:
        """The controller :meth:`place` bound these ops to."""
        if self._algorithm is None:
            raise QuantizationError("quantization: the torch ops are used before place() bound them to a controller")
        return self._algorithm

    @property
    def functional(self) -> FunctionalQuantization:
        """The quantization of the functional matrix products (placed by :meth:`place`)."""
        if self._functional is None:
            raise QuantizationError("quantization: the functional products are read before place()")
        return self._functional

    # -- placement ----------------------------------------------------------------------------
    def place(self, algorithm: QuantizationAlgorithmBase) -> None:
        self._algorithm = algorithm
        traced = census(self.model, self._prepared.example_inputs()) if self._prepared.inputs else None  # before any quantizer
        self._place_weight_quantizers()
        self._place_activation_quantizers()
        self._functional = FunctionalQuantization.place(self, traced)

    def quantizable_kinds(self) -> str:
        return (
            f"the weights and inputs of {', '.join(t.__name__ for t in QUANTIZABLE)} layers and of functional linear/matmul/attention calls"
        )

    def make_weight_quantizer(
        self, key: str, path: str, tensor_name: str, channels: int, axis: int, *, transform: bool = True
    ) -> FakeQuantizer:
        """A weight quantizer for ``<path>.<tensor_name>`` (``channels`` along ``axis`` when per channel).

        ``transform``: registered as the tensor's weight transform (a layer's weight), else applied by
        whoever reads the tensor (a parameter that a functional call reads, see :mod:`.functional`).
        """
        algorithm = self.algorithm
        module = self.model.get_submodule(path) if path else self.model
        settings, entry = algorithm.quantizer_settings(WEIGHTS, [path])
        tensor = getattr(module, tensor_name)
        quantizer = make_quantizer(settings, algorithm.name, channels, axis, settings.signed is not False, tensor.device)
        quantizer.label = f"{path}.{tensor_name}" if path else tensor_name
        if transform:
            add_transform(module, tensor_name, quantizer)
        else:
            self.functional_weights.add(key)
        algorithm.add_weight_quantizer(key, quantizer, entry)
        self._weight_tensors[key] = (path, tensor_name)
        return quantizer

    def make_activation_quantizer(
        self, names: list[str], label: str, device: torch.device, channels: int | None = None, axis: int = -1
    ) -> FakeQuantizer:
        """An activation quantizer whose overrides ``names`` (layer paths) pick; the caller registers it on a module
        and with the controller (:meth:`~aac.quant.algorithm.QuantizationAlgorithmBase.add_activation_site`)."""
        algorithm = self.algorithm
        settings, entry = algorithm.quantizer_settings(ACTIVATIONS, names)
        if channels is None:  # an operand whose channels nobody knows: one range per tensor
            settings = dataclasses.replace(settings, per_channel=False)
        quantizer = make_quantizer(settings, algorithm.name, channels, axis, bool(settings.signed), device)
        quantizer.label = label
        quantizer.lazy_range = entry
        return quantizer

    def _place_weight_quantizers(self) -> None:
        for path, module in self.model.named_modules():
            if isinstance(module, QUANTIZABLE) and self.algorithm._group_selects(WEIGHTS, path):
                self.make_weight_quantizer(path, path, "weight", *_channels_and_axis(module, weights=True))

    def _place_activation_quantizers(self) -> None:
        modules = dict(self.model.named_modules())
        graph = self._prepared.graph
        algorithm = self.algorithm

        def quantized(node: Any) -> bool:  # a call of a quantizable layer as a module (not a functional use of its weight)
            module = modules.get(node.layer)
            return (
                isinstance(module, QUANTIZABLE)
                and node.op == parametrize.type_before_parametrizations(module).__name__
                and algorithm._group_selects(ACTIVATIONS, node.layer)
            )

        for site in input_sites(graph, quantized, algorithm.settings.quantize_inputs):
            consumers = list(site.consumers)
            first = modules[consumers[0]]
            channels, axis = _channels_and_axis(first, weights=False)
            producers = [graph.node(t).layer for t in site.tensors if graph.node(t).layer]
            settings, entry = algorithm.quantizer_settings(ACTIVATIONS, [*consumers, *producers])
            if settings.per_channel and any(_channels_and_axis(modules[c], weights=False) != (channels, axis) for c in consumers[1:]):
                raise QuantizationError(
                    f"activations.per_channel: layers {consumers} read the same tensor but expect different channel layouts; "
                    "quantize activations per tensor, or exclude some of them with activations.ignored_scopes"
                )
            quantizer = self.make_activation_quantizer(
                [*consumers, *producers], f"input of {', '.join(consumers)}", _device(first), channels, axis
            )
            first.add_module(INPUT_QUANTIZER, quantizer)
            for consumer in consumers:
                modules[consumer].register_forward_pre_hook(QuantizeInput(quantizer))
                weight_quantizer = algorithm.weight_quantizers.get(consumer)
                if weight_quantizer is not None:
                    weight_quantizer.link_input_partner(quantizer, _input_axis(modules[consumer]))
            feeds = [c for c in consumers if c in algorithm.weight_quantizers]
            algorithm.add_activation_site(ActivationSite(consumers[0], quantizer, consumers, list(site.tensors), feeds), entry)

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
    def weight_noise(self, key: str, bits: int) -> float:
        quantizer = self.algorithm.weight_quantizers[key]
        value = self._weight_value(key)
        before, enabled = quantizer.bits, quantizer.enabled
        quantizer.set_bits(bits)
        quantizer.set_enabled(True)
        try:
            return float((quantizer(value) - value).double().pow(2).sum())
        finally:
            quantizer.set_bits(before)
            quantizer.set_enabled(enabled)

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
    def initialize_weights(self) -> None:
        """Set every weight quantizer's range from the weight it quantizes (as the transforms before it leave it)."""
        for key, quantizer in self.algorithm.weight_quantizers.items():
            value = self._weight_value(key)
            collector = collector_for(
                self.algorithm.range_of(quantizer), None if quantizer.channels is None else quantizer.axis % value.dim()
            )
            collector.update(value.detach().float().cpu().numpy())
            quantizer.apply_statistics(collector)

    def rereadable(self, data_loader: Any) -> bool:
        return reiterable(data_loader)

    @torch.no_grad()
    def initialize_activations(self, data_loader: Any, reading: Mapping[str, Any]) -> None:
        input_fn: InputFn = reading["input_fn"]
        sites = []
        for site in self.algorithm.activation_sites:
            entry = self.algorithm.range_of(site.quantizer)
            if entry.num_init_steps == 0 or (entry.num_init_steps is None and entry.num_init_samples == 0):
                site.quantizer.mark_initialized()  # initialization switched off: keep the current range
                continue
            quantizer = site.quantizer
            axis = None if quantizer.channels is None else quantizer.axis  # negative for linear inputs: channels last
            collection = Collection(
                collector_for(entry, axis),
                samples_left=None if entry.num_init_steps is not None else entry.num_init_samples,
                batches_left=entry.num_init_steps,
            )
            quantizer.start_collecting(collection)
            sites.append(site)
        if not sites:
            return
        training = {name: m.training for name, m in self.model.named_modules()}
        self.model.eval()
        try:
            for batch in data_loader:
                args, kwargs = input_fn(batch)
                self.model(*args, **kwargs)
                if all(s.quantizer.collection is None or s.quantizer.collection.done for s in sites):
                    break
        finally:
            restore_modes(self.model, training)
            missing = [s.quantizer.label for s in sites if not s.quantizer.stop_collecting()]
        if missing:
            logger.warning("[aac] quantization: no data reached %s during range initialization; their ranges are unchanged", missing)

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
    def layer_counts(self) -> tuple[int, int]:
        algorithm = self.algorithm
        quantized = {self.weight_layer(k) for k in algorithm.weight_quantizers} | {
            c for s in algorithm.activation_sites for c in s.consumers
        }
        candidates = {p for p, m in self.model.named_modules() if isinstance(m, QUANTIZABLE)}
        return len(quantized & candidates), len(candidates)

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
