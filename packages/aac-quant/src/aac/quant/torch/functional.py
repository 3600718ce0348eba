"""Quantized operands for matrix products that are not layer calls: ``F.linear``/``F.conv*`` on a module's
weight, ``matmul``/``@``/``bmm``, ``F.scaled_dot_product_attention`` and ``nn.MultiheadAttention``.

A forward pre-hook can only quantize the input of a layer *called as a module*. Attention code calls
functions instead - ``F.linear(x, self.qkv.weight)``, ``q @ k.transpose(-2, -1)``, and
``nn.MultiheadAttention`` runs ``F.multi_head_attention_forward`` on its own parameters - so those
products stayed float. Here:

* **placement** (static, on the traced graph): each such call inside a module's ``forward`` (its
  *owner*, the innermost module of the call) is planned with a quantizer per operand slot - a weight
  quantizer for a parameter (a layer already quantized keeps its own transform), an activation
  quantizer for a tensor (operands that are the same graph value share one). The quantizers live in
  the owner's ``aac_functional_quantizers`` (a ``ModuleDict``), so ``state_dict``, ``.to()`` and
  strip see them. ``nn.MultiheadAttention`` calls are planned as one call with slots for its inputs,
  in-projection weight, projected query/key/value, attention probabilities and the out-projection's
  input;
* **runtime**: forward hooks on the owners (and the modules inside them, to know the innermost module
  of each call) activate a ``TorchFunctionMode`` that counts the calls of each kind per owner, as the
  plan did, and runs the planned call with quantized operands. Scaled-dot-product and multi-head
  attention run as explicit ``softmax(q k^T * scale + mask) v`` so that each product reads quantized
  operands (what ``torch.onnx.export`` writes for them anyway).

Calls outside the plan (``einsum``, attention with ``bias_k``/``add_zero_attn``/static keys, calls in
excluded scopes) run unchanged; the coverage lists them and a warning names the ones no scope excluded.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.overrides import TorchFunctionMode

from aac.core.graph import Metatype, Node
from aac.quant.algorithm import ActivationSite
from aac.quant.report import MatmulCoverage
from aac.quant.settings import ACTIVATIONS, WEIGHTS
from aac.quant.torch.quantizers import QUANTIZABLE
from aac.torch import get_if_hashable

if TYPE_CHECKING:
    from aac.quant.torch.algorithm import TorchQuantizationOps

logger = logging.getLogger("aac.quant")

#: attribute of an owner module holding the quantizers of its functional calls
QUANTIZERS = "aac_functional_quantizers"

#: graph op names (fx function and method names) -> kind of call
GRAPH_KINDS = {
    "linear": "linear",
    "conv1d": "conv",
    "conv2d": "conv",
    "conv3d": "conv",
    "matmul": "matmul",
    "bmm": "matmul",
    "scaled_dot_product_attention": "sdpa",
}
#: graph op names of products that are never quantized
UNSUPPORTED_OPS = ("einsum", "baddbmm", "addmm", "addbmm", "mm", "tensordot")
#: torch functions -> kind of call (what the TorchFunctionMode intercepts)
RUNTIME_KINDS: dict[Any, str] = {
    F.linear: "linear",
    F.conv1d: "conv",
    F.conv2d: "conv",
    F.conv3d: "conv",
    torch.matmul: "matmul",
    torch.Tensor.matmul: "matmul",
    torch.Tensor.__matmul__: "matmul",
    operator.matmul: "matmul",
    torch.bmm: "matmul",
    torch.Tensor.bmm: "matmul",
    F.scaled_dot_product_attention: "sdpa",
    F.multi_head_attention_forward: "mha",
}
#: the operand slots of each kind, in argument order
SLOTS = {"linear": ("input", "weight"), "conv": ("input", "weight"), "matmul": ("a", "b"), "sdpa": ("query", "key", "value")}
MHA_INPUTS = ("query", "key", "value")
#: the matrix products inside one call of an attention kind (what the statistics count)
PRODUCTS = {"sdpa": ("q @ k", "attention @ v"), "mha": ("in-projection", "q @ k", "attention @ v", "out-projection")}


@dataclass
class CallPlan:
    """One planned call: which quantizer (a key of the owner's ``aac_functional_quantizers``) each slot gets.

    A slot without a key is left as it is (a weight its layer quantizes already, or an operand excluded
    by the scopes). ``status`` is ``quantized``, ``excluded`` or ``float``.
    """

    kind: str
    node: str
    slots: dict[str, str] = field(default_factory=dict)
    status: str = "quantized"
    reason: str = ""


class _Context:
    """The plans and the runtime state (module stack, call counters) shared by the hooks of one model."""

    def __init__(self, plans: dict[str, dict[str, list[CallPlan]]]) -> None:
        self.plans = plans
        self.stack: list[tuple[str, nn.Module]] = []
        self.counters: dict[str, dict[str, int]] = {}
        self.mode: _Dispatcher | None = None
        self.warned = False

    def __getstate__(self) -> dict[str, Any]:  # the runtime state does not travel (deepcopy, torch.save)
        return {"plans": self.plans}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["plans"])  # type: ignore[misc]

    def enter(self, path: str, module: nn.Module) -> None:
        if not self.stack:
            self.mode = _Dispatcher(self)
            self.mode.__enter__()
        if path in self.plans:
            self.counters[path] = {}
        self.stack.append((path, module))

    def leave(self) -> None:
        if not self.stack:
            return
        self.stack.pop()
        if not self.stack and self.mode is not None:
            mode, self.mode = self.mode, None
            mode.__exit__(None, None, None)

    def next_call(self, kind: str) -> tuple[CallPlan, nn.Module] | None:
        """The plan of the current call of ``kind`` in the innermost module, if that module is an owner."""
        if not self.stack:
            return None
        path, module = self.stack[-1]
        plans = self.plans.get(path)
        if plans is None:
            return None
        counters = self.counters.setdefault(path, {})
        index = counters.get(kind, 0)
        counters[kind] = index + 1
        planned = plans.get(kind, [])
        if index >= len(planned):
            if not self.warned:
                self.warned = True
                logger.warning("[aac] quantization: '%s' ran more %s calls than were traced; the extra ones stay in float", path, kind)
            return None
        return planned[index], module


class _Enter:
    """Forward pre-hook: the module is now the innermost one (picklable, like the rest of the model)."""

    def __init__(self, context: _Context, path: str) -> None:
        self.context, self.path = context, path

    def __call__(self, module: nn.Module, args: Any) -> None:
        self.context.enter(self.path, module)


class _Leave:
    """Forward hook (always called, also on an exception): the module is done."""

    def __init__(self, context: _Context) -> None:
        self.context = context

    def __call__(self, module: nn.Module, args: Any, output: Any) -> None:
        self.context.leave()


class _Dispatcher(TorchFunctionMode):
    """Runs planned calls with quantized operands; everything else passes through unchanged."""

    def __init__(self, context: _Context) -> None:
        super().__init__()
        self.context = context

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None) -> Any:
        kwargs = dict(kwargs or {})
        kind = get_if_hashable(RUNTIME_KINDS, func)
        found = self.context.next_call(kind) if kind is not None else None
        if found is None or found[0].status != "quantized":
            return func(*args, **kwargs)
        plan, owner = found
        quantizers = getattr(owner, QUANTIZERS)

        def q(slot: str, value: Any) -> Any:
            key = plan.slots.get(slot)
            return quantizers[key](value) if key is not None and isinstance(value, torch.Tensor) else value

        if kind in ("linear", "conv", "matmul"):
            first, second = SLOTS[kind]
            return func(q(first, args[0]), q(second, args[1]), *args[2:], **kwargs)
        if kind == "sdpa":
            return _attention(q, *args, **kwargs)
        return _multi_head_attention(q, *args, **kwargs)


# -- explicit attention ---------------------------------------------------------------------------
Quantize = Callable[[str, Any], Any]


def _attention(
    q: Quantize,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` as explicit products of quantized operands (SDPA's mask convention:
    a boolean mask marks the positions that *may* be attended)."""
    if enable_gqa and key.size(-3) != query.size(-3):
        repeats = query.size(-3) // key.size(-3)
        key, value = key.repeat_interleave(repeats, -3), value.repeat_interleave(repeats, -3)
    scores = q("query", query) @ q("key", key.transpose(-2, -1))
    scores = scores * (1.0 / math.sqrt(query.size(-1)) if scale is None else scale)
    if is_causal:
        length, source = query.size(-2), key.size(-2)
        allowed = torch.ones(length, source, dtype=torch.bool, device=query.device).tril()
        scores = scores.masked_fill(~allowed, float("-inf"))
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else scores + attn_mask
    probabilities = torch.softmax(scores, dim=-1)
    if dropout_p > 0.0:
        probabilities = F.dropout(probabilities, dropout_p)
    return q("probs", probabilities) @ q("value", value)


def _additive(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A multi-head-attention mask as an additive one (its boolean masks mark the positions *not* attended)."""
    if mask is None or mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))


_MHA_ARGUMENTS = (
    "query",
    "key",
    "value",
    "embed_dim_to_check",
    "num_heads",
    "in_proj_weight",
    "in_proj_bias",
    "bias_k",
    "bias_v",
    "add_zero_attn",
    "dropout_p",
    "out_proj_weight",
    "out_proj_bias",
    "training",
    "key_padding_mask",
    "need_weights",
    "attn_mask",
    "use_separate_proj_weight",
    "q_proj_weight",
    "k_proj_weight",
    "v_proj_weight",
    "static_k",
    "static_v",
    "average_attn_weights",
    "is_causal",
)


def _multi_head_attention(q: Quantize, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``F.multi_head_attention_forward`` (sequence-first) as explicit products of quantized operands.

    The plan only routes calls without ``bias_k``/``bias_v``, ``add_zero_attn`` and static keys here.
    """
    p = {
        "training": True,
        "key_padding_mask": None,
        "need_weights": True,
        "attn_mask": None,
        "use_separate_proj_weight": False,
        "q_proj_weight": None,
        "k_proj_weight": None,
        "v_proj_weight": None,
        "static_k": None,
        "static_v": None,
        "average_attn_weights": True,
        "is_causal": False,
        **dict(zip(_MHA_ARGUMENTS, args, strict=False)),
        **kwargs,
    }
    query, key, value = p["query"], p["key"], p["value"]
    unbatched = query.dim() == 2
    if unbatched:
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if p["key_padding_mask"] is not None:
            p["key_padding_mask"] = p["key_padding_mask"].unsqueeze(0)
    length, batch, embed = query.shape
    source, heads = key.size(0), p["num_heads"]
    head_dim = embed // heads
    x_q = q("query", query)
    x_k = x_q if key is query else q("key", key)
    x_v = x_k if value is key else q("value", value)
    bias = p["in_proj_bias"]
    biases = (None, None, None) if bias is None else bias.chunk(3)
    if not p["use_separate_proj_weight"] and key is query and value is key:
        qkv = F.linear(x_q, q("in_proj", p["in_proj_weight"]), bias)
        proj_q, proj_k, proj_v = qkv.chunk(3, dim=-1)
    elif not p["use_separate_proj_weight"]:
        w_q, w_k, w_v = q("in_proj", p["in_proj_weight"]).chunk(3)
        proj_q, proj_k, proj_v = F.linear(x_q, w_q, biases[0]), F.linear(x_k, w_k, biases[1]), F.linear(x_v, w_v, biases[2])
    else:
        proj_q = F.linear(x_q, q("q_proj", p["q_proj_weight"]), biases[0])
        proj_k = F.linear(x_k, q("k_proj", p["k_proj_weight"]), biases[1])
        proj_v = F.linear(x_v, q("v_proj", p["v_proj_weight"]), biases[2])
    proj_q = proj_q.reshape(length, batch * heads, head_dim).transpose(0, 1)
    proj_k = proj_k.reshape(source, batch * heads, head_dim).transpose(0, 1)
    proj_v = proj_v.reshape(source, batch * heads, head_dim).transpose(0, 1)
    scores = (q("q", proj_q) @ q("k", proj_k.transpose(-2, -1))) * (1.0 / math.sqrt(head_dim))
    attn_mask = _additive(p["attn_mask"], scores.dtype)
    if attn_mask is None and p["is_causal"]:
        attn_mask = torch.zeros(length, source, dtype=scores.dtype, device=scores.device).masked_fill(
            torch.ones(length, source, dtype=torch.bool, device=scores.device).triu(1), float("-inf")
        )
    if attn_mask is not None:
        scores = scores + (attn_mask.unsqueeze(0) if attn_mask.dim() == 2 else attn_mask)
    padding = _additive(p["key_padding_mask"], scores.dtype)
    if padding is not None:
        scores = (scores.view(batch, heads, length, source) + padding.view(batch, 1, 1, source)).view(batch * heads, length, source)
    probabilities = torch.softmax(scores, dim=-1)
    if p["dropout_p"] > 0.0 and p["training"]:
        probabilities = F.dropout(probabilities, p["dropout_p"])
    output = (q("probs", probabilities) @ q("v", proj_v)).transpose(0, 1).reshape(length * batch, embed)
    output = F.linear(q("output", output), p["out_proj_weight"], p["out_proj_bias"]).view(length, batch, embed)
    weights = None
    if p["need_weights"]:
        weights = probabilities.view(batch, heads, length, source)
        weights = weights.mean(dim=1) if p["average_attn_weights"] else weights
        if unbatched:
            weights = weights.squeeze(0)
    return (output.squeeze(1) if unbatched else output), weights


# -- finding the calls ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Operand:
    """One argument of a product: a stored tensor (``parameter``: its path) or a computed one (``value``: operands of
    one owner with the same value share a quantizer; ``node``: its graph node, when the call is in the traced graph)."""

    parameter: str | None = None
    value: str | None = None
    node: str | None = None
    model_input: bool = False


@dataclass(frozen=True)
class Call:
    """A product called in the ``forward`` of module ``owner`` (``kind`` ``unsupported``: one that stays float)."""

    kind: str
    owner: str
    name: str
    operands: tuple[Operand, ...] = ()
    reason: str = ""


#: functions whose products are never quantized (the runtime census notices them inside functions fx does not trace)
RUNTIME_UNSUPPORTED = {
    torch.einsum: "einsum",
    torch.mm: "mm",
    torch.addmm: "addmm",
    torch.baddbmm: "baddbmm",
    torch.addbmm: "addbmm",
    torch.tensordot: "tensordot",
}


def _operands(kind: str) -> int:
    return 3 if kind in ("sdpa", "mha") else 2


def _kind(node: Node, modules: Mapping[str, nn.Module]) -> str | None:
    """The kind of a product node: a call of an ``nn.MultiheadAttention`` module, or a function (whose ``layer`` may
    name the module whose weight it reads, as in ``F.linear(x, self.qkv.weight)``)."""
    module = modules.get(node.layer) if node.layer is not None else None
    if module is not None and node.op == parametrize.type_before_parametrizations(module).__name__:
        return "mha" if isinstance(module, nn.MultiheadAttention) else None
    return GRAPH_KINDS.get(node.op.strip("_"))


def graph_calls(graph: Any, modules: Mapping[str, nn.Module], stored: set[str]) -> list[Call]:
    """The products the traced graph shows, in graph order."""
    calls = []
    for node in graph:
        kind = _kind(node, modules)
        if kind is None:
            if node.op.strip("_") in UNSUPPORTED_OPS and not (node.layer and node.op == type(modules.get(node.layer)).__name__):
                calls.append(
                    Call("unsupported", node.scope, f"{node.name} in {node.scope or 'the model'}", reason=f"{node.op} is not quantized")
                )
            continue
        owner = node.layer if kind == "mha" else node.scope
        operands = []
        for name in node.inputs[: _operands(kind)]:
            source = graph.node(name)
            if source.metatype is Metatype.CONSTANT and source.op in stored:
                operands.append(Operand(parameter=source.op))
            else:
                operands.append(Operand(value=name, node=name, model_input=source.metatype is Metatype.INPUT))
        calls.append(Call(kind, owner or "", owner if kind == "mha" else f"{node.name} in {owner or 'the model'}", tuple(operands)))
    return calls


def census(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[Call]:
    """The products one forward pass of ``model`` runs, with the innermost module running each - also those inside
    functions torch.fx does not trace into (torchvision's ``shifted_window_attention`` is ``torch.fx.wrap``-ped).

    Calls inside a layer's own forward (``nn.Linear`` calling ``F.linear``) are the layer's, not listed.
    """
    paths = {id(m): p for p, m in model.named_modules()}
    modules = dict(model.named_modules())
    stored = {id(t): name for name, t in [*model.named_parameters(), *model.named_buffers()]}
    given = {id(x) for x in inputs}
    stack: list[str] = []
    calls: list[Call] = []
    alive: list[Any] = []  # keeps every operand alive, so that no two tensors of the pass share an id

    class Census(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None) -> Any:
            unsupported = get_if_hashable(RUNTIME_UNSUPPORTED, func)
            kind = get_if_hashable(RUNTIME_KINDS, func)
            if stack and not isinstance(modules[stack[-1]], QUANTIZABLE) and (kind or unsupported):
                owner = stack[-1]
                number = sum(c.owner == owner and c.kind == (kind or "unsupported") for c in calls)
                if unsupported:
                    calls.append(
                        Call(
                            "unsupported",
                            owner,
                            f"{unsupported} #{number} in {owner or 'the model'}",
                            reason=f"{unsupported} is not quantized",
                        )
                    )
                else:
                    assert kind is not None
                    tensors = [a for a in args[: _operands(kind)] if isinstance(a, torch.Tensor)]
                    alive.extend(tensors)
                    calls.append(
                        Call(
                            kind,
                            owner,
                            owner if kind == "mha" else f"{kind} #{number} in {owner or 'the model'}",
                            tuple(
                                Operand(parameter=stored[id(t)])
                                if id(t) in stored
                                else Operand(value=f"#{id(t)}", model_input=id(t) in given)
                                for t in tensors
                            ),
                        )
                    )
            return func(*args, **dict(kwargs or {}))

    def enter(module: nn.Module, args: Any) -> None:
        stack.append(paths[id(module)])

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        stack.pop()

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave, always_call=True))
    training = {name: m.training for name, m in modules.items()}
    try:
        model.eval()
        with torch.no_grad(), Census():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
        for name, module in modules.items():
            module.training = training[name]
    return calls


def merge_calls(static: list[Call], traced: list[Call] | None) -> list[Call]:
    """The graph's calls, except for owners where the forward pass ran products the graph does not show: theirs."""
    if traced is None:
        return static

    def counts(calls: list[Call]) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for call in calls:
            table.setdefault(call.owner, {}).setdefault(call.kind, 0)
            table[call.owner][call.kind] += 1
        return table

    seen, ran = counts([c for c in static if c.kind != "unsupported"]), counts([c for c in traced if c.kind != "unsupported"])
    hidden = {owner for owner, kinds in ran.items() if kinds != seen.get(owner)}
    return [c for c in static if c.owner not in hidden] + [c for c in traced if c.owner in hidden]


# -- placement --------------------------------------------------------------------------------------
class FunctionalQuantization:
    """The functional calls of one model: their plans (by owner and kind) and their coverage."""

    def __init__(self, plans: dict[str, dict[str, list[CallPlan]]], layers: MatmulCoverage) -> None:
        self.plans = plans
        self._layers = layers

    def calls(self) -> list[CallPlan]:
        return [plan for by_kind in self.plans.values() for planned in by_kind.values() for plan in planned]

    def coverage(self) -> MatmulCoverage:
        """The layers' coverage (module calls) together with the functional calls' (attention counts each of its products)."""

        def products(status: str) -> list[str]:
            return [
                f"{c.node}: {p}" if len(PRODUCTS.get(c.kind, ("",))) > 1 else c.node
                for c in self.calls()
                if c.status == status
                for p in PRODUCTS.get(c.kind, ("",))
            ]

        left = [f"{c.node} ({c.reason})" for c in self.calls() if c.status == "float"]
        return MatmulCoverage(
            (*self._layers.quantized, *products("quantized")), (*self._layers.excluded, *products("excluded")), (*self._layers.float, *left)
        )

    @classmethod
    def place(cls, ops: TorchQuantizationOps, traced: list[Call] | None = None) -> FunctionalQuantization:
        """Plan every functional product of the model of ``ops``' controller (the graph's, completed by ``traced``:
        a :func:`census`), add its quantizers and hooks, warn about float ones."""
        placer = _Placer(ops)
        functional = cls(placer.plan(merge_calls(placer.graph_calls(), traced)), placer.layer_coverage())
        if functional.plans:
            context = _Context(functional.plans)
            hooked: set[int] = set()
            for owner in functional.plans:
                for path, module in ops.algorithm.model.get_submodule(owner).named_modules(prefix=owner):
                    if id(module) not in hooked and not isinstance(module, nn.ModuleDict):
                        hooked.add(id(module))
                        module.register_forward_pre_hook(_Enter(context, path))
                        module.register_forward_hook(_Leave(context), always_call=True)
        left = functional.coverage().float
        if left:
            logger.warning(
                "[aac] quantization: %d matrix products stay in float (their inputs are not quantized): %s%s",
                len(left),
                ", ".join(left[:5]),
                " ..." if len(left) > 5 else "",
            )
        return functional


class _Placer:
    """Plans the functional calls and adds their quantizers to the controller of ``ops``."""

    def __init__(self, ops: TorchQuantizationOps) -> None:
        self.ops = ops
        self.algorithm = algorithm = ops.algorithm
        self.graph = algorithm.prepared.graph
        self.modules = dict(algorithm.model.named_modules())
        #: (owner, operand value) -> key of the activation quantizer already planned for it
        self.shared: dict[tuple[str, str], str] = {}

    def graph_calls(self) -> list[Call]:
        stored = {name for name, _ in self.algorithm.model.named_parameters()} | {name for name, _ in self.algorithm.model.named_buffers()}
        stored |= {
            name.replace(".parametrizations.", ".").removesuffix(".original") for name in stored
        }  # a layer's weight as code reads it
        return graph_calls(self.graph, self.modules, stored)

    def layer_coverage(self) -> MatmulCoverage:
        """Conv/Linear layers called as modules: quantized when their weight and input are."""
        inputs = {c for site in self.algorithm.activation_sites for c in site.consumers}
        quantized, excluded, left = [], [], []
        for node in self.graph:
            module = self.modules.get(node.layer) if node.layer is not None else None
            if not isinstance(module, QUANTIZABLE) or node.op != parametrize.type_before_parametrizations(module).__name__:
                continue
            selected = all(self.algorithm._group_selects(g, node.layer) for g in (WEIGHTS, ACTIVATIONS))
            from_input = any(self.graph.node(i).metatype is Metatype.INPUT for i in node.inputs[:1])
            if node.layer in self.algorithm.weight_quantizers and node.layer in inputs:
                quantized.append(node.layer)
            elif not selected or (from_input and not self.algorithm.settings.quantize_inputs):
                excluded.append(node.layer)
            else:
                left.append(f"{node.layer} (input not quantized)")
        return MatmulCoverage(tuple(quantized), tuple(excluded), tuple(left))

    def plan(self, calls: list[Call]) -> dict[str, dict[str, list[CallPlan]]]:
        plans: dict[str, dict[str, list[CallPlan]]] = {}
        for call in calls:
            if call.kind == "unsupported":
                plan = CallPlan(call.kind, call.name, status="float", reason=call.reason)
            else:
                plan = self._plan_call(call)
            plans.setdefault(call.owner, {}).setdefault(call.kind, []).append(plan)
        return plans

    # -- one call ---------------------------------------------------------------------------------
    def _plan_call(self, call: Call) -> CallPlan:
        plan = CallPlan(call.kind, call.name)
        owner = call.owner
        if not self.algorithm.is_selected(owner):
            plan.status = "excluded"
            return plan
        if call.kind == "mha":
            return self._plan_attention_module(plan, call)
        weights: list[str] = []
        slots = list(zip(SLOTS[call.kind], call.operands, strict=False))
        for slot, operand in slots:
            if operand.parameter is not None:
                key = self._weight_slot(plan, slot, owner, operand.parameter, axis=0 if call.kind in ("linear", "conv") else -1)
                weights += [key] if key is not None else []
        for slot, operand in slots:
            if operand.parameter is None:
                self._activation_slot(plan, slot, owner, operand, feeds=weights if slot == "input" else [])
        if call.kind == "sdpa":
            self._activation_slot(plan, "probs", owner, None)
        return self._settle(plan)

    def _plan_attention_module(self, plan: CallPlan, call: Call) -> CallPlan:
        owner = call.owner
        module = self.modules[owner]
        if not isinstance(module, nn.MultiheadAttention) or module.bias_k is not None or module.add_zero_attn:
            plan.status, plan.reason = "float", "multi-head attention with bias_k/add_zero_attn (or outside nn.MultiheadAttention)"
            return plan
        names = ("in_proj_weight",) if module._qkv_same_embed_dim else ("q_proj_weight", "k_proj_weight", "v_proj_weight")
        weights = []
        for name in names:
            slot = "in_proj" if name == "in_proj_weight" else name.removesuffix("_weight")
            key = self._weight_slot(plan, slot, owner, f"{owner}.{name}" if owner else name, axis=0)
            weights += [key] if key is not None else []
        for slot, operand in zip(MHA_INPUTS, call.operands, strict=False):
            self._activation_slot(plan, slot, owner, operand, feeds=weights)
        out_proj = f"{owner}.out_proj" if owner else "out_proj"
        for slot in ("q", "k", "v", "probs", "output"):
            feeds = [out_proj] if slot == "output" and out_proj in self.algorithm.weight_quantizers else []
            self._activation_slot(plan, slot, owner, None, feeds=feeds)
        return self._settle(plan)

    def _settle(self, plan: CallPlan) -> CallPlan:
        if not plan.slots:
            plan.status = "excluded"
        return plan

    def _register(self, owner: str, name: str, quantizer: nn.Module) -> str:
        """Register ``quantizer`` in the owner's ``aac_functional_quantizers``; its key there."""
        module = self.modules[owner]
        quantizers = getattr(module, QUANTIZERS, None)
        if quantizers is None:
            quantizers = nn.ModuleDict()
            module.add_module(QUANTIZERS, quantizers)
        key = name.replace(".", "_").replace("#", "").replace(" ", "_")
        if key not in quantizers:
            quantizers[key] = quantizer
        return key

    def _weight_slot(self, plan: CallPlan, slot: str, owner: str, tensor: str, axis: int) -> str | None:
        """The weight key of ``tensor``: a layer's own quantizer (it transforms the weight wherever it is read, so the
        slot stays empty), or a new quantizer the call applies. None when the scopes leave the weight in float."""
        algorithm = self.algorithm
        tensor = tensor.replace(".parametrizations.", ".").removesuffix(".original")
        path, _, name = tensor.rpartition(".")
        if name == "weight" and path in algorithm.weight_quantizers and path not in self.ops.functional_weights:
            return path
        if not algorithm._group_selects(WEIGHTS, path or owner):
            return None
        if tensor not in algorithm.weight_quantizers:
            value = getattr(self.modules[path], name)
            self.ops.make_functional_weight_quantizer(tensor, path, name, int(value.shape[axis]), axis)
        plan.slots[slot] = self._register(owner, f"weight.{tensor}", algorithm.weight_quantizers[tensor])
        return tensor

    def _activation_slot(self, plan: CallPlan, slot: str, owner: str, operand: Operand | None, feeds: list[str] | None = None) -> None:
        """An activation quantizer for a slot; operands of one owner with the same value share it."""
        algorithm = self.algorithm
        if not algorithm._group_selects(ACTIVATIONS, owner):
            return
        if operand is not None and operand.model_input and not algorithm.settings.quantize_inputs:
            return
        if operand is not None and (owner, operand.value) in self.shared:
            plan.slots[slot] = self.shared[(owner, operand.value)]
            return
        label = f"{slot} of {plan.node}" if plan.kind != "mha" else f"{slot} of attention {plan.node}"
        module = self.modules[owner]
        quantizer = self.ops.make_functional_activation_quantizer(
            owner, label, next((p.device for p in module.parameters()), torch.device("cpu"))
        )
        name = f"{plan.node.split(' in ')[0]}.{slot}" if plan.kind != "mha" else f"attention.{slot}"
        key = plan.slots[slot] = self._register(owner, name, quantizer)
        if operand is not None and operand.value is not None:
            self.shared[(owner, operand.value)] = key
        tensors = [operand.node] if operand is not None and operand.node else []
        algorithm.add_activation_site(
            ActivationSite(name, quantizer, [], tensors, list(feeds or [])), algorithm.range_settings(ACTIVATIONS, [owner])
        )
