"""The names torch users give modules and operations in ``ignored_scopes`` / ``target_scopes``.

The matching rules (``{re}`` regexes, "an entry selects everything inside it", errors listing the
closest names) are core's (:mod:`aac.core.scopes`); this module lists a model's names for them:

* a plain module path, as in ``named_modules()``: ``"layer1.0.conv1"`` (``""`` is the model itself);
* its NNCF scope: ``"ResNet/Sequential[layer1]/BasicBlock[0]/Conv2d[conv1]"``, also with the class
  names of NNCF's wrapper modules (``NNCFConv2d[conv1]``, ``NNCFLinear[fc]``, see :data:`NNCF_WRAPPED`);
* NNCF's name of an operation: the scope of the module it runs in, then the operation and how many
  calls of it came before in that module: ``"Inception3/__add___0"`` is the first ``+`` in
  ``Inception3.forward``, ``".../UNetUpBlock[0]/cat_0"`` the first ``torch.cat`` of that block. The
  operation of a module that torch.fx does not trace into (``".../Conv2d[conv1]/conv2d_0"``) names the
  module; any other operation names itself (core's :attr:`ScopeSelection.operations`), not the module
  it runs in.

``{re}`` expressions search all of these (``"{re}NNCFConv2d\\[0\\]/.*"`` finds the operations of those
convolutions, hence the convolutions). Operation names come from the traced graph, so
:meth:`ScopeIndex.from_module` without one (the backend resolves ``ignored_scopes`` before tracing)
leaves entries that name an operation of a module fx traces through (and regular expressions that
match nothing yet) for the traced index to judge.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from torch import fx, nn

from aac.core import scopes

SEPARATOR = "."
#: a trailing NNCF operation: "/conv2d_0", "/__add___1", "/relu__0"
_NNCF_OPERATION = re.compile(r"/(?P<op>[A-Za-z_]\w*)_(?P<index>\d+)$")
#: torch.nn classes NNCF replaces by subclasses named "NNCF" + the class name (nncf.torch.layers)
NNCF_WRAPPED = frozenset(
    {
        "Conv1d",
        "Conv2d",
        "Conv3d",
        "ConvTranspose1d",
        "ConvTranspose2d",
        "ConvTranspose3d",
        "Linear",
        "BatchNorm1d",
        "BatchNorm2d",
        "BatchNorm3d",
        "GroupNorm",
        "LayerNorm",
        "Embedding",
        "EmbeddingBag",
    }
)
#: NNCF's name of the operation a module's forward calls, where it is not the class name in snake case
_MODULE_OPERATIONS = {
    "BatchNorm1d": "batch_norm",
    "BatchNorm2d": "batch_norm",
    "BatchNorm3d": "batch_norm",
    "SyncBatchNorm": "batch_norm",
    "InstanceNorm1d": "instance_norm",
    "InstanceNorm2d": "instance_norm",
    "InstanceNorm3d": "instance_norm",
    "ReLU": "relu",
    "ReLU6": "hardtanh",
    "PReLU": "prelu",
    "RReLU": "rrelu",
    "LeakyReLU": "leaky_relu",
    "ELU": "elu",
    "SELU": "selu",
    "CELU": "celu",
    "GELU": "gelu",
    "SiLU": "silu",
    "Upsample": "interpolate",
}
#: NNCF's name of a function's operation, where it is not the function's own name
_FUNCTION_OPERATIONS = {"relu6": "hardtanh"}
#: ``operator`` functions NNCF sees as a tensor's reflected method (``__radd__``) when the tensor comes second
_REFLECTED = frozenset({"add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor"})


@dataclass(frozen=True)
class ScopeSelection(scopes.ScopeSelection):
    """Selected module paths, each with every module inside it (``ScopeSelection(frozenset({"layer1"}))``)."""

    separator: str = SEPARATOR


@dataclass(frozen=True)
class Call:
    """One operation of the traced graph, as NNCF names it.

    :ivar node: the operation's node name in the graph.
    :ivar scope: path of the module it runs in; for a module call, that module itself.
    :ivar operation: NNCF's operation name (``"conv2d"``, ``"__add__"``, ``"cat"``).
    :ivar of_module: True for the call of a module fx did not trace into: its names spell the module.
    """

    node: str
    scope: str
    operation: str
    of_module: bool


class ScopeIndex(scopes.ScopeIndex):
    """Every module path of a model next to its NNCF scopes, and NNCF's names of its operations."""

    selection_type = ScopeSelection

    def __init__(
        self, named_classes: Iterable[tuple[str, str]], leaves: Collection[str] = (), calls: Iterable[Call] = (), traced: bool = False
    ) -> None:
        """:param named_classes: ``(module path, class name)`` pairs, the root (``""``) first.
        :param leaves: modules fx keeps whole (it records their call, not what their forward does).
        :param calls: operations in graph order: the traced graph's, or before tracing one call of each leaf.
        :param traced: whether ``calls`` are the traced graph's (else entries naming other operations are deferred).
        """
        class_of = dict(named_classes)
        scope_names = {path: tuple(dict.fromkeys(_nncf_scope(path, class_of, wrapped) for wrapped in (False, True))) for path in class_of}
        spellings = {path: list(names) for path, names in scope_names.items()}
        operations: dict[str, str] = {}
        counts: dict[tuple[str, str], int] = {}
        for call in calls:
            if call.scope not in scope_names:  # a module registered under two names is listed under its first
                continue
            index = counts[call.scope, call.operation] = counts.get((call.scope, call.operation), -1) + 1
            names = [f"{scope}/{call.operation}_{index}" for scope in scope_names[call.scope]]
            if call.of_module:
                spellings[call.scope].extend(names)
            else:
                operations.update(dict.fromkeys(names, call.node))
        super().__init__(class_of, separator=SEPARATOR, spellings=spellings, operations=operations, noun="module")
        self.leaves = frozenset(leaves)
        self.traced = traced

    @classmethod
    def from_module(cls, model: nn.Module, traced: fx.GraphModule | None = None) -> ScopeIndex:
        """Index ``model``'s modules, and the operations of ``traced`` (its fx graph) when given.

        Without a graph, each module fx would keep whole is taken to be called once, so that an NNCF
        name of its operation (``".../NNCFConv2d[0]/conv2d_0"``) and a regex over those names find it.
        """
        modules = dict(model.named_modules())
        tracer = fx.Tracer()
        leaves = {path for path, module in modules.items() if path and tracer.is_leaf_module(module, path)}
        if traced is None:
            calls = [Call(path, path, _module_operation(modules[path]), True) for path in modules if path in leaves]
        else:
            calls = list(_calls(traced, modules))
            leaves |= {call.scope for call in calls if call.of_module}
        return cls(((path, type(module).__name__) for path, module in modules.items()), leaves, calls, traced is not None)

    def nncf_scope(self, path: str) -> str:
        return self.spellings[path][0]

    def variants(self, entry: str) -> Iterator[str]:
        """The entry, then - for an operation of a module fx keeps whole - that module (``".../Conv2d[conv1]/linear_0"``)."""
        name = entry.rstrip("/")
        yield name
        module = self._module_of_operation(name)
        if module is not None and module in self.leaves:
            yield module

    def defers(self, entry: str) -> bool:
        """Before tracing, an operation of a traced module (``"Inception3/__add___0"``), or a regex that may name one, cannot be judged yet."""
        if self.traced:
            return False
        module = self._module_of_operation(entry.rstrip("/"))
        return entry.startswith(scopes.REGEX_PREFIX) or (module is not None and module not in self.leaves)

    def _module_of_operation(self, name: str) -> str | None:
        """The module path of ``"<module>/<operation>_<n>"``, for a module this index knows; None otherwise."""
        found = _NNCF_OPERATION.search(name)
        if found is None:
            return None
        module = name[: found.start()]
        return module if module in self._known else self._named.get(module)


def _nncf_scope(path: str, class_of: dict[str, str], wrapped: bool) -> str:
    """``"layer1.0.conv1"`` -> ``"ResNet/Sequential[layer1]/BasicBlock[0]/Conv2d[conv1]"``: the class of each enclosing
    module and its name; ``wrapped`` spells the classes NNCF wraps as NNCF does (``NNCFConv2d[conv1]``)."""
    parts = path.split(SEPARATOR) if path else []
    prefixes = (SEPARATOR.join(parts[: i + 1]) for i in range(len(parts)))

    def spelled(prefix: str) -> str:
        name = class_of[prefix]
        return f"NNCF{name}" if wrapped and name in NNCF_WRAPPED else name

    return "/".join([spelled(""), *(f"{spelled(prefix)}[{part}]" for prefix, part in zip(prefixes, parts, strict=True))])


def _calls(traced: fx.GraphModule, modules: dict[str, nn.Module]) -> Iterator[Call]:
    for node in traced.graph.nodes:
        if node.op == "call_module":
            yield Call(node.name, str(node.target), _module_operation(modules[str(node.target)]), True)
        elif node.op in ("call_function", "call_method"):
            stack = node.meta.get("nn_module_stack")
            yield Call(node.name, str(next(reversed(stack))) if stack else "", _function_operation(node), False)


def _module_operation(module: nn.Module) -> str:
    """``Conv2d`` -> ``"conv2d"``, ``MaxPool2d`` -> ``"max_pool2d"``, an in-place ``ReLU`` -> ``"relu_"``."""
    name = type(module).__name__
    operation = _MODULE_OPERATIONS.get(name) or re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    return operation + "_" if getattr(module, "inplace", False) is True else operation


def _function_operation(node: fx.Node) -> str:
    """``a + b`` -> ``"__add__"``, ``0.5 + a`` -> ``"__radd__"``, ``torch.cat`` -> ``"cat"``, ``F.relu(x, inplace=True)`` -> ``"relu_"``."""
    target: Any = node.target
    if node.op == "call_method":
        return str(target)
    name = getattr(target, "__name__", str(target))
    if getattr(operator, name, None) is target:  # Python's operators reach tensors as dunder methods
        base = name.rstrip("_")
        reflected = base in _REFLECTED and bool(node.args) and not isinstance(node.args[0], fx.Node)
        return f"__r{base}__" if reflected else f"__{base}__"
    name = _FUNCTION_OPERATIONS.get(name, name)
    return name + "_" if node.kwargs.get("inplace") is True else name
