"""The neutral graph of Sequential, functional and subclassed Keras models."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from aac.core.graph import ConcatAttributes, ConvAttributes, FlattenAttributes, LinearAttributes, Metatype
from aac.tf.models import ModelTraceError, prepare_model
from aac.tf.scopes import ScopeIndex
from aac.tf.testing import SubclassedModel, conv_model, sequential_model


def kinds(graph) -> dict[str, Metatype]:
    return {node.name: node.metatype for node in graph}


def test_sequential_graph_is_a_chain_with_fused_activations() -> None:
    graph = prepare_model(sequential_model()).graph
    names = [n.name for n in graph]
    assert names[0].startswith("input") and names[-1] == "output"
    assert names[1:-1] == ["fc1", "fc1.relu", "fc2", "fc2.relu", "logits"]
    fc1 = graph.node("fc1")
    assert fc1.metatype is Metatype.LINEAR and fc1.layer == "fc1" and fc1.op == "Dense"
    assert fc1.attributes == LinearAttributes(in_features=8, out_features=16, has_bias=True)
    assert fc1.output_shape == (1, 16)
    assert graph.node("fc1.relu").attributes.preserves_zero
    assert [n.name for n in graph.successors("logits")] == ["output"]


def test_functional_graph_keeps_branches_merges_and_layer_types() -> None:
    graph = prepare_model(conv_model()).graph
    k = kinds(graph)
    assert k["conv1"] is Metatype.CONV and k["bn2"] is Metatype.BATCH_NORM and k["residual"] is Metatype.ELEMENTWISE
    assert k["gap"] is Metatype.SPATIAL_REDUCE and k["relu2"] is Metatype.ACTIVATION
    assert graph.node("residual").inputs == ("conv1.relu", "bn2")
    assert graph.node("concat").attributes == ConcatAttributes(along_channels=True)
    assert graph.node("concat").inputs == ("relu2", "dw")
    dw = graph.node("dw").attributes
    assert isinstance(dw, ConvAttributes) and dw.is_depthwise and dw.groups == 8
    assert graph.node("conv1").attributes.kernel_size == (3, 3)
    assert graph.node("logits").output_shape == (1, 3)


def test_functional_graph_expands_nested_models_and_records_keras_ops() -> None:
    inputs = keras.Input((6, 6, 2), name="img")
    x = keras.layers.Conv2D(4, 3, name="c")(inputs)
    x = keras.ops.relu(x) * 2.0
    x = keras.layers.Flatten(name="flat")(x)
    head = keras.Sequential([keras.layers.Dense(5, activation="sigmoid", name="h1"), keras.layers.Dense(2, name="h2")], name="head")
    graph = prepare_model(keras.Model(inputs, head(x))).graph
    k = kinds(graph)
    assert k["flat"] is Metatype.FLATTEN and graph.node("flat").attributes == FlattenAttributes(channel_major=False)
    assert k["head/h1"] is Metatype.LINEAR and graph.node("head/h1").layer == "head/h1"
    assert not graph.node("head/h1.sigmoid").attributes.preserves_zero  # sigmoid(0) != 0
    relu = next(n for n in graph if n.op == "relu")
    scale = graph.successors(relu.name)[0]
    assert scale.metatype is Metatype.ACTIVATION and scale.attributes.preserves_zero  # multiplying by a constant
    assert graph.node("head/h1").inputs == ("flat",)


def test_subclassed_model_is_traced_symbolically_including_custom_blocks() -> None:
    model = SubclassedModel()
    model(np.zeros((2, 8), "float32"))
    before = {layer.name: len(layer._inbound_nodes) for layer in model._flatten_layers()}
    prepared = prepare_model(model)
    graph = prepared.graph
    k = kinds(graph)
    assert k["fc1"] is Metatype.LINEAR and k["block/inner"] is Metatype.LINEAR and k["block/norm"] is Metatype.BATCH_NORM
    assert graph.node("block/inner").inputs == ("fc1.relu",)
    add = next(n for n in graph if n.metatype is Metatype.ELEMENTWISE)
    assert "fc1.relu" in add.inputs  # the block's skip connection
    assert graph.node("logits").inputs == ("dropout",)
    assert set(prepared.scopes.paths) >= {"fc1", "block", "block/inner", "block/norm", "logits"}
    # tracing leaves no Keras nodes behind on the user's layers
    assert {layer.name: len(layer._inbound_nodes) for layer in model._flatten_layers()} == before


def test_untraceable_subclassed_model_gets_a_clear_error_naming_the_class() -> None:
    import tensorflow as tf

    class RawOps(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.fc = keras.layers.Dense(2)

        def call(self, x):
            return self.fc(tf.nn.relu(x))

    model = RawOps()
    model(np.zeros((1, 4), "float32"))
    prepared = prepare_model(model)  # preparing works: only the graph is impossible
    assert not prepared.has_graph
    with pytest.raises(ModelTraceError) as info:
        prepared.graph  # noqa: B018
    message = str(info.value)
    assert "RawOps" in message and "keras.ops" in message and "functional API" in message


def test_unbuilt_subclassed_model_needs_input_info() -> None:
    with pytest.raises(ModelTraceError, match="input_info"):
        prepare_model(SubclassedModel())
    prepared = prepare_model(SubclassedModel(), {"input_info": {"sample_size": [4, 8]}})
    assert prepared.graph.node("logits").output_shape == (4, 3)
    assert [a.shape for a in prepared.example_inputs()] == [(4, 8)]


def test_unbuilt_sequential_model_is_built_from_input_info() -> None:
    model = keras.Sequential([keras.layers.Dense(4, name="a"), keras.layers.Dense(2, name="b")])
    prepared = prepare_model(model, {"input_info": {"sample_size": [2, 5]}})
    assert model.built and prepared.style == "sequential"
    assert prepared.graph.node("a").attributes == LinearAttributes(5, 4, True)
    assert prepared.graph.node("b").output_shape == (2, 2)


def test_ignored_layers_stay_opaque_in_the_graph() -> None:
    model = SubclassedModel()
    model(np.zeros((1, 8), "float32"))
    graph = prepare_model(model, ignored=["block"]).graph
    assert graph.node("block").metatype is Metatype.UNKNOWN
    assert "block/inner" not in graph


def test_layer_paths_of_nested_models() -> None:
    inputs = keras.Input((3,))
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3, name="d")], name="inner")
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(inner(inputs)), name="outer")
    index = ScopeIndex.from_model(model)
    assert "inner/d" in index.paths and "out" in index.paths
