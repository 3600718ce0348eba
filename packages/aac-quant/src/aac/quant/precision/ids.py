"""Names of quantizers in ``bitwidth_per_scope`` and how they are found on the neutral graph.

A name is ``"<scope>|<KIND>"``:

* ``WEIGHT`` - the weight quantizer of the layer at ``<scope>`` (NNCF: ``ResNet/NNCFConv2d[conv1]/conv2d_0|WEIGHT``);
* ``INPUT`` - the activation quantizer of that layer's input (aac's own form: aac places activation
  quantizers on layer inputs);
* ``OUTPUT`` - NNCF's form: the quantizer of the output of the operation ``<module scope>/<op>_<n>``
  (``ResNet/ReLU[relu]/relu__0|OUTPUT`` is the first call of the ``relu`` module,
  ``MobileNetV2/Sequential[features]/InvertedResidual[3]/__add___0`` the first addition in that block,
  ``/nncf_model_input_0`` the first model input).

NNCF's wrapped classes (``NNCFConv2d``, ``NNCFLinear``, ``NNCFBatchNorm2d``) are read as torch's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aac.core.graph import Graph, Metatype, Node

WEIGHT, INPUT, OUTPUT = "WEIGHT", "INPUT", "OUTPUT"
KINDS = (WEIGHT, INPUT, OUTPUT)
MODEL_INPUT = "nncf_model_input"

_NNCF_WRAPPER = re.compile(r"(^|/)NNCF(?=[A-Z]\w*\[)")
_OPERATION = re.compile(r"^(?P<op>.+)_(?P<index>\d+)$")
#: NNCF's names of Python operators -> the fx names (``x += y`` is ``__iadd__`` in NNCF, ``iadd`` in fx)
_OPERATOR_ALIASES = {"iadd": "add", "radd": "add", "imul": "mul", "rmul": "mul", "isub": "sub", "itruediv": "truediv", "div": "truediv"}


def plain_scope(scope: str) -> str:
    """``"ResNet/NNCFConv2d[conv1]"`` -> ``"ResNet/Conv2d[conv1]"``: NNCF's wrapped layer classes under torch's names."""
    return _NNCF_WRAPPER.sub(r"\1", scope)


@dataclass(frozen=True)
class QuantizerName:
    """A parsed ``bitwidth_per_scope`` name."""

    text: str
    scope: str
    kind: str

    @classmethod
    def parse(cls, text: str) -> QuantizerName:
        scope, bar, kind = text.rpartition("|")
        if not bar or kind not in KINDS:
            raise ValueError(
                f"'{text}' does not end in |WEIGHT (a layer's weight), |INPUT (a layer's input) or "
                "|OUTPUT (NNCF: the output of an operation)"
            )
        return cls(text, plain_scope(scope.strip()), kind)

    def operation(self) -> tuple[str, str, int]:
        """``(module scope, operation, call index)`` of an OUTPUT name: ``("ResNet/ReLU[relu]", "relu_", 0)``."""
        module, _, last = self.scope.rpartition("/")
        match = _OPERATION.match(last)
        if match is None:
            raise ValueError(f"'{self.text}' does not end in an operation with its call number, such as '/relu_0|OUTPUT'")
        return module, match["op"], int(match["index"])


def _operator(name: str) -> str:
    plain = name.lower().strip("_")
    return _OPERATOR_ALIASES.get(plain, plain)


def operation_node(graph: Graph, name: QuantizerName, module_paths: Callable[[str], Sequence[str]]) -> Node | None:
    """The graph node an OUTPUT name means, or None if the model has no such call.

    :param module_paths: the framework's resolution of a module scope to module paths (its scope index).
    """
    module, op, index = name.operation()
    if op == MODEL_INPUT:
        inputs = graph.of_type(Metatype.INPUT)
        return inputs[index] if index < len(inputs) else None
    for path in module_paths(module) if module else [""]:
        functional = [n for n in graph if n.scope == path and _operator(n.op) == _operator(op)]
        calls = functional or [n for n in graph if n.layer == path and path]
        if index < len(calls):
            return calls[index]
    return None
