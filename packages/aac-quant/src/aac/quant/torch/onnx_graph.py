"""Tidying of an exported QDQ ONNX file, so that every Conv/Gemm/MatMul reads DequantizeLinear directly.

torch's exporter leaves two things between a quantized tensor and the operation that reads it:

* a ``Clip`` to the full int8/uint8 range after a per-channel QuantizeLinear: it changes nothing but
  hides the plain ``Q -> DQ`` pair that runtimes look for;
* a ``Transpose`` after the DequantizeLinear of a linear layer's weight when the layer reads a 3-d (or
  larger) input, exported as ``MatMul(x, Transpose(DQ(Q(W))))``: runtimes fuse ``DQ -> MatMul`` only.

Quantization is element-wise, so ``Transpose(DQ(Q(x)))`` equals ``DQ(Q(Transpose(x)))`` with the
per-channel axis permuted; the transposition moves in front of the quantization, and folds into the
weight when it reads an initializer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

_FULL_RANGES = {(-128, 127), (0, 255)}


def tidy_qdq(path: str | Path) -> None:
    """Remove no-op clips and move transpositions in front of QDQ pairs in the ONNX file at ``path`` (in place)."""
    import onnx

    model = onnx.load(str(path))
    changed = _remove_noop_integer_clips(model.graph)
    changed = _move_transposes(model.graph) or changed
    if changed:
        _drop_unused(model.graph)
        onnx.save(model, str(path))


def _constants(graph: Any) -> dict[str, Any]:
    from onnx import numpy_helper

    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attribute in node.attribute:
                if attribute.name == "value":
                    constants[node.output[0]] = numpy_helper.to_array(attribute.t)
    return constants


def _consumers(graph: Any, name: str) -> list[Any]:
    return [node for node in graph.node if name in node.input]


def _is_output(graph: Any, name: str) -> bool:
    return any(output.name == name for output in graph.output)


def _rename_uses(graph: Any, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def _remove_noop_integer_clips(graph: Any) -> bool:
    constants = _constants(graph)
    producers = {output: node for node in graph.node for output in node.output}
    removed = []
    for node in graph.node:
        if node.op_type != "Clip" or len(node.input) < 3:
            continue
        source = producers.get(node.input[0])
        bounds = constants.get(node.input[1]), constants.get(node.input[2])
        if source is None or source.op_type != "QuantizeLinear" or any(b is None for b in bounds):
            continue
        if (int(bounds[0]), int(bounds[1])) not in _FULL_RANGES or _is_output(graph, node.output[0]):
            continue
        _rename_uses(graph, node.output[0], node.input[0])
        removed.append(node)
    for node in removed:
        graph.node.remove(node)
    return bool(removed)


def _move_transposes(graph: Any) -> bool:
    """``x -> Q -> DQ -> Transpose`` becomes ``x -> Transpose -> Q -> DQ`` (folded into ``x`` if it is an initializer)."""
    from onnx import helper, numpy_helper

    producers = {output: node for node in graph.node for output in node.output}
    initializers = {i.name: i for i in graph.initializer}
    moved = False
    for transpose in [n for n in graph.node if n.op_type == "Transpose"]:
        dequantize = producers.get(transpose.input[0])
        if dequantize is None or dequantize.op_type != "DequantizeLinear" or len(_consumers(graph, dequantize.output[0])) != 1:
            continue
        quantize = producers.get(dequantize.input[0])
        if quantize is None or quantize.op_type != "QuantizeLinear" or len(_consumers(graph, quantize.output[0])) != 1:
            continue
        if _is_output(graph, dequantize.output[0]) or _is_output(graph, quantize.output[0]):
            continue
        perm = next((list(a.ints) for a in transpose.attribute if a.name == "perm"), None)
        if perm is None:
            continue
        for node in (quantize, dequantize):  # the per-channel axis (ONNX's default: 1) follows the transposition
            axis = next((a for a in node.attribute if a.name == "axis"), None)
            if axis is None:
                node.attribute.append(helper.make_attribute("axis", perm.index(1)))
            else:
                axis.i = perm.index(axis.i % len(perm))
        source = quantize.input[0]
        stale = {quantize.output[0], dequantize.output[0]}  # their recorded shapes are the untransposed ones
        for info in [v for v in graph.value_info if v.name in stale]:
            graph.value_info.remove(info)
        _rename_uses(graph, transpose.output[0], dequantize.output[0])
        graph.node.remove(transpose)
        if source in initializers and len(_consumers(graph, source)) == 1:
            array = numpy_helper.to_array(initializers[source]).transpose(perm)
            initializers[source].CopyFrom(numpy_helper.from_array(array.copy(), source))
        else:
            moved_output = f"{source}_transposed_for_{quantize.name or quantize.output[0]}"
            quantize.input[0] = moved_output
            index = list(graph.node).index(quantize)
            graph.node.insert(
                index,
                helper.make_node("Transpose", [source], [moved_output], perm=perm, name=f"{transpose.name or 'Transpose'}_before_qdq"),
            )
        moved = True
    return moved


def _drop_unused(graph: Any) -> None:
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for node in [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in used]:
        graph.node.remove(node)
    for initializer in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(initializer)


#: the ONNX operations that multiply two tensors: each must read quantized operands
PRODUCTS = ("MatMul", "Gemm", "Conv")


def products_reading_float(path: str | Path) -> list[str]:
    """The Conv/Gemm/MatMul nodes of an exported model with an operand that is not a DequantizeLinear output.

    Only the first two inputs count (a bias stays float in QDQ). An empty list means every product runs
    on quantized operands, which is what a runtime needs to execute the model in integers.
    """
    import onnx

    graph = onnx.load(str(path)).graph
    producers = {output: node for node in graph.node for output in node.output}
    found = []
    for node in graph.node:
        if node.op_type in PRODUCTS:
            kinds = [producers[name].op_type if name in producers else "initializer/input" for name in node.input[:2]]
            if any(kind != "DequantizeLinear" for kind in kinds):
                found.append(f"{node.name}: {kinds}")
    return found
