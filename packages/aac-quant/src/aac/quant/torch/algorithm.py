"""``quantization`` for torch models: where quantizers go, range initialization, strip and export.

Placement:

* **weights** - every selected ``Conv*``/``ConvTranspose*``/``Linear`` gets a fake quantizer as a
  weight transform (:mod:`aac.torch.transforms`): the layer computes with ``fq(weight)``;
* **activations** - the input of every such layer is fake-quantized by a forward pre-hook. Layers
  that read the same tensor (found on the neutral graph: a residual sum feeding a block's first
  convolution and its downsample) share one quantizer, so the tensor has one grid, as in a QDQ
  model. The quantizer module is a child of the first of those layers (``<layer>.aac_input_quantizer``),
  so the model's ``state_dict``, ``.to()`` and DDP carry it.

``initialize(data_loader)`` sets the weight ranges from the weights, the activation ranges from
statistics over ``num_init_samples`` samples, then re-estimates batch-norm statistics
(``batchnorm_adaptation``). Activation quantizers that never saw ``initialize`` set their range
from the first batch they see, with a warning.

``strip()`` turns every quantizer into the fixed torch fake quantization that ONNX exports as
QuantizeLinear/DequantizeLinear; ``export_model("m.onnx")`` writes that.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from aac.core.api import CompressionScheduler
from aac.core.config import AlgorithmSection, Config
from aac.core.statistics import AlgorithmStatistics
from aac.quant.algorithm import QuantizationAlgorithmBase, QuantizationError
from aac.quant.placement import input_sites
from aac.quant.ranges import Collection, collector_for
from aac.quant.report import QuantizerRow, quantization_statistics
from aac.quant.settings import ACTIVATIONS, WEIGHTS
from aac.quant.torch.quantizers import FakeQuantizer, QuantizeDequantize, make_quantizer, quantize_weight_of
from aac.torch.algorithm import TorchCompressionAlgorithm
from aac.torch.batchnorm import InputFn, adapt_batchnorm, default_inputs, restore_modes
from aac.torch.tracing import TorchModel
from aac.torch.transforms import Mask, TransformError, WeightTransform, add_transform, detach_parametrized_class

logger = logging.getLogger("aac.quant")

#: layers whose weights and inputs are quantized
QUANTIZABLE: tuple[type[nn.Module], ...] = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear,
)
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


@dataclass
class ActivationSite:
    """One activation quantizer: the tensor it quantizes feeds ``consumers`` (layer paths)."""

    name: str
    quantizer: FakeQuantizer
    consumers: list[str] = field(default_factory=list)


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


class QuantizationAlgorithm(QuantizationAlgorithmBase, TorchCompressionAlgorithm):
    """Quantization-aware training of a torch model (not adaptive: no level to search)."""


    def __init__(self, prepared: TorchModel, section: AlgorithmSection) -> None:
        super().__init__(prepared, section)
        self._init_scopes()
        self._scheduler = CompressionScheduler()
        self.weight_quantizers: dict[str, FakeQuantizer] = {}
        self.activation_sites: list[ActivationSite] = []
        self._place_weight_quantizers()
        self._place_activation_quantizers()
        if not self.weight_quantizers and not self.activation_sites:
            raise QuantizationError(
                f"quantization ({section.path}) found nothing to quantize: it quantizes the weights and inputs of "
                f"{', '.join(t.__name__ for t in QUANTIZABLE)} layers; check ignored_scopes / target_scopes"
            )
        self.initialize_weights()

    # -- scopes ----------------------------------------------------------------------------

    # -- placement ----------------------------------------------------------------------------
    def _place_weight_quantizers(self) -> None:
        settings = self.settings.weights
        for path, module in self.model.named_modules():
            if not isinstance(module, QUANTIZABLE) or not self._group_selects(WEIGHTS, path):
                continue
            channels, axis = _channels_and_axis(module, weights=True)
            quantizer = make_quantizer(settings, self.name, channels, axis, settings.signed is not False, module.weight.device)
            quantizer.label = f"{path}.weight"
            add_transform(module, "weight", quantizer)
            self.weight_quantizers[path] = quantizer

    def _place_activation_quantizers(self) -> None:
        modules = dict(self.model.named_modules())
        settings = self.settings.activations
        sites = input_sites(self.prepared.graph,
                            lambda layer: isinstance(modules.get(layer), QUANTIZABLE) and self._group_selects(ACTIVATIONS, layer),
                            self.settings.quantize_inputs)
        for consumers in sites:
            first = modules[consumers[0]]
            channels, axis = _channels_and_axis(first, weights=False)
            if settings.per_channel and any(_channels_and_axis(modules[c], weights=False) != (channels, axis) for c in consumers[1:]):
                raise QuantizationError(
                    f"activations.per_channel: layers {consumers} read the same tensor but expect different channel layouts; "
                    "quantize activations per tensor, or exclude some of them with activations.ignored_scopes"
                )
            device = next((p.device for p in first.parameters()), torch.device("cpu"))
            quantizer = make_quantizer(settings, self.name, channels, axis, bool(settings.signed), device)
            quantizer.label = f"input of {', '.join(consumers)}"
            quantizer.lazy_range = self.range_settings(ACTIVATIONS, consumers)
            first.add_module(INPUT_QUANTIZER, quantizer)
            for consumer in consumers:
                modules[consumer].register_forward_pre_hook(QuantizeInput(quantizer))
                weight_quantizer = self.weight_quantizers.get(consumer)
                if weight_quantizer is not None:
                    weight_quantizer.link_input_partner(quantizer, _input_axis(modules[consumer]))
            self.activation_sites.append(ActivationSite(consumers[0], quantizer, list(consumers)))


    # -- initialization ---------------------------------------------------------------------------
    @torch.no_grad()
    def initialize_weights(self) -> None:
        """Set every weight quantizer's range from the weight it quantizes (as the transforms before it leave it)."""
        modules = dict(self.model.named_modules())
        for path, quantizer in self.weight_quantizers.items():
            module = modules[path]
            value = _input_of_transform(module, "weight", quantizer)
            entry = self.range_settings(WEIGHTS, [path])
            collector = collector_for(entry, None if quantizer.channels is None else quantizer.axis % value.dim())
            collector.update(value.detach().float().cpu().numpy())
            quantizer.apply_statistics(collector)

    def initialize(self, data_loader: Any, *, input_fn: InputFn | None = None) -> None:
        """Range initialization from ``data_loader``, then batch-norm adaptation (as configured).

        :param data_loader: an iterable of batches; a batch is a tensor, a tuple/list whose first
            element is the input (itself a tensor, a tuple of positional inputs or a dict of keyword
            inputs), or a dict of keyword inputs.
        :param input_fn: maps a batch to ``(args, kwargs)`` for the model, for other batch layouts.
        """
        self.initialize_weights()
        self.remember_adaptation_data(data_loader, self.section.batchnorm_adaptation_samples, input_fn=input_fn or default_inputs)
        if data_loader is None:
            return
        input_fn = input_fn or default_inputs
        self._initialize_activations(data_loader, input_fn)
        if self.settings.num_bn_adaptation_samples > 0:
            adapt_batchnorm(self.model, data_loader, self.settings.num_bn_adaptation_samples, input_fn)

    @torch.no_grad()
    def _initialize_activations(self, data_loader: Any, input_fn: InputFn) -> None:
        sites = []
        for site in self.activation_sites:
            entry = self.range_settings(ACTIVATIONS, site.consumers)
            if entry.num_init_steps == 0 or (entry.num_init_steps is None and entry.num_init_samples == 0):
                site.quantizer.mark_initialized()  # initialization switched off: keep the current range
                continue
            quantizer = site.quantizer
            axis = None if quantizer.channels is None else quantizer.axis  # negative for linear inputs: channels last
            collection = Collection(collector_for(entry, axis),
                                    samples_left=None if entry.num_init_steps is not None else entry.num_init_samples,
                                    batches_left=entry.num_init_steps)
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
    def _strip(self, model: nn.Module) -> nn.Module:
        """Replace every quantizer in ``model`` (a copy) by its fixed QuantizeLinear/DequantizeLinear form.

        A weight's fake-quantized values (exactly on the grid) become its stored values and its QDQ
        moves to the end of its transform chain: masks of sparsity or pruning that strip later fold
        in front of it (they commute with element-wise quantization), and pruning can still cut
        channels (the QDQ cuts its per-channel scales, and those of the layer's input quantizer).
        Once no other algorithm's transform is left, the layers become importable ``Quantized*``
        layers (:func:`finalize_quantized_layers`), so the stripped model pickles.
        """
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
            if isinstance(child, FakeQuantizer) and child.owner == self.name:
                setattr(module, INPUT_QUANTIZER, qdq(child))
            for hook in module._forward_pre_hooks.values():
                if isinstance(hook, QuantizeInput) and isinstance(hook.quantizer, FakeQuantizer) and hook.quantizer.owner == self.name:
                    hook.quantizer = qdq(hook.quantizer)
            if parametrize.is_parametrized(module):
                for tensor_name in list(module.parametrizations):
                    _strip_weight_quantizer(module, tensor_name, self.name, qdq)
        if not any(isinstance(m, WeightTransform) and m.owner != self.name for m in model.modules()):
            finalize_quantized_layers(model)  # every other algorithm is stripped already
        return model

    def prepare_for_export(self, stripped_model: nn.Module) -> None:
        """Finalize the quantized layers (see :meth:`_strip`) - also when quantization is not the first algorithm."""
        finalize_quantized_layers(stripped_model)

    def finish_export(self, path: Any) -> None:
        if str(path).lower().endswith(".onnx"):
            remove_noop_integer_clips(path)

    # -- reporting and state -------------------------------------------------------------------------
    def _collect_statistics(self) -> AlgorithmStatistics:
        rows = []
        for group, label, quantizer in self.quantizers():
            low, high = quantizer.current_range()
            rows.append(QuantizerRow(label, group, quantizer.mode, quantizer.settings.bits, quantizer.signed,
                                     quantizer.channels is not None, low, high, quantizer.is_initialized))
        quantized_layers = set(self.weight_quantizers) | {c for s in self.activation_sites for c in s.consumers}
        candidates = [p for p, m in self.model.named_modules() if isinstance(m, QUANTIZABLE)]
        return quantization_statistics(self.name, rows, len(self.weight_quantizers), len(self.activation_sites),
                                       len(quantized_layers), len(candidates))


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


def _strip_weight_quantizer(module: nn.Module, tensor_name: str, owner: str,
                            convert: Callable[[FakeQuantizer], QuantizeDequantize]) -> None:
    chain = list(module.parametrizations[tensor_name])
    positions = [i for i, t in enumerate(chain) if isinstance(t, FakeQuantizer) and t.owner == owner]
    if not positions:
        return
    (index,) = positions
    quantizer = chain[index]
    before, after = chain[:index], chain[index + 1:]
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


def remove_noop_integer_clips(path: Any) -> None:
    """Drop ``Clip`` nodes between QuantizeLinear and DequantizeLinear that clip to the full int8/uint8 range.

    torch's exporter adds them after per-channel QuantizeLinear; they change nothing but hide the
    plain Q -> DQ pair that runtimes look for.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    constants[node.output[0]] = numpy_helper.to_array(attribute.t)
    producers = {output: node for node in graph.node for output in node.output}
    full = {(-128, 127), (0, 255)}
    removed = []
    for node in graph.node:
        if node.op_type != "Clip" or len(node.input) < 3:
            continue
        source = producers.get(node.input[0])
        bounds = constants.get(node.input[1]), constants.get(node.input[2])
        if source is None or source.op_type != "QuantizeLinear" or any(b is None for b in bounds):
            continue
        if (int(bounds[0]), int(bounds[1])) not in full:
            continue
        for other in graph.node:
            for i, name in enumerate(other.input):
                if name == node.output[0]:
                    other.input[i] = node.input[0]
        for output in graph.output:
            if output.name == node.output[0]:
                break
        else:
            removed.append(node)
    if not removed:
        return
    for node in removed:
        graph.node.remove(node)
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for node in [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in used]:
        graph.node.remove(node)
    for initializer in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(initializer)
    onnx.save(model, str(path))


def create(model: TorchModel, section: AlgorithmSection, config: Config) -> QuantizationAlgorithm:
    """The factory aac-core calls for a ``quantization`` section."""
    return QuantizationAlgorithm(model, section)


__all__ = ["QuantizationAlgorithm", "QuantizationError", "QuantizeInput", "finalize_quantized_layers", "create"]
