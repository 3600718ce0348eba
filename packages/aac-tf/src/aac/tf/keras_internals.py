"""The parts of Keras that are not public API, each behind one named helper.

aac needs a few things Keras keeps private: the class of functional models, the global state that
holds the active ``StatelessScope`` and the current layer call, the global seed generator, the
constructor arguments Keras records for every layer, and a layer's own variables. They live in
``keras.src`` or in underscore attributes, which may move in any Keras release, so every access is
here - the only module of aac (all packages) that imports ``keras.src`` - and the Keras versions
they were tested with are bounded in ``pyproject.toml`` (``keras<3.16``), which
:mod:`aac.tf.requirements` and aac-tf's tests check.
"""

from __future__ import annotations

from typing import Any

from keras.src.backend.common import global_state
from keras.src.backend.common.stateless_scope import get_stateless_scope
from keras.src.models.functional import Functional
from keras.src.random.seed_generator import global_seed_generator


def is_functional(model: Any) -> bool:
    """True for a functional model (``keras.Model(inputs, outputs)``; ``keras.Sequential`` is not one)."""
    return isinstance(model, Functional)


def stateless_scope() -> Any:
    """The active ``keras.StatelessScope`` (None outside one)."""
    return get_stateless_scope()


def set_stateless_scope(scope: Any) -> None:
    """Make ``scope`` the active stateless scope without entering it (aac's transform overlay steps out for one write)."""
    global_state.set_global_attribute("stateless_scope", scope)


def current_call_context() -> Any:
    """The call context of the layer call being run (``.training``), None outside any layer call."""
    return global_state.get_global_attribute("current_call_ctx")


def keras_seed_generator() -> Any:
    """Keras' global seed generator (the state behind unseeded ``keras.random`` calls), for checkpoints."""
    return global_seed_generator()


def constructor_arguments(layer: Any) -> dict[str, Any] | None:
    """The arguments ``layer`` was constructed with, as Keras recorded them (``name`` left out), or None.

    Keras records them for every layer and model whose constructor received only plain values
    (str, int, float, bool, None, and lists/dicts of them); that is what lets aac make a fresh
    instance of a subclassed model that has no ``get_config``.
    """
    recorded = getattr(layer, "_auto_config", None)
    return dict(recorded.config) if recorded is not None else None


def own_variables(layer: Any) -> list[Any]:
    """The variables a layer created itself (not those of its sub-layers or transforms), in creation order."""
    seen: set[int] = set()
    result = []
    for variable in list(layer._trainable_variables) + list(layer._non_trainable_variables):
        if id(variable) not in seen:
            seen.add(id(variable))
            result.append(variable)
    return result
