"""aac-sparsity's plugin: registers ``magnitude_sparsity``, ``rb_sparsity`` and ``const_sparsity``.

Importing it imports neither torch, TensorFlow nor NumPy: factories are ``"module:function"`` strings that core
imports only when a model is compressed. The cross-key rules (``check``) run in ``load_config``, so
``aac validate`` reports them with the schema's problems.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from aac.core.hookspecs import hookimpl
from aac.core.specs import AlgorithmSpec
from aac.sparsity.settings import check_magnitude_sparsity, check_rb_sparsity

PACKAGE = "aac-sparsity"

#: NNCF's former spellings inside a sparsity section -> current key (core applies them before validation)
SPARSITY_ALIASES = {
    "params.sparsity_steps": "params.sparsity_target_epoch",
    "params.sparsity_training_steps": "params.sparsity_freeze_epoch",
    # NNCF's documentation example puts sparsity_init inside params; the schema has it on the section
    "params.sparsity_init": "sparsity_init",
}


@cache
def schema(name: str) -> dict[str, Any]:
    """The canonical JSON Schema (Draft 2020-12) of the ``name`` section, shipped inside the package."""
    text = resources.files("aac.sparsity").joinpath("schemas").joinpath(f"{name}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@hookimpl
def aac_algorithms() -> Iterable[AlgorithmSpec]:
    return [
        AlgorithmSpec(
            name="magnitude_sparsity",
            adaptive=True,
            frameworks={"torch": "aac.sparsity.torch.magnitude:create", "tf": "aac.sparsity.tf.magnitude:create"},
            schema=schema("magnitude_sparsity"),
            package=PACKAGE,
            description="unstructured sparsity by weight magnitude; compression_rate = zero fraction of the sparsified weights",
            aliases=SPARSITY_ALIASES,
            check=check_magnitude_sparsity,
        ),
        AlgorithmSpec(
            name="rb_sparsity",
            adaptive=True,
            frameworks={"torch": "aac.sparsity.torch.rb:create", "tf": "aac.sparsity.tf.rb:create"},
            schema=schema("rb_sparsity"),
            package=PACKAGE,
            description="regularization-based sparsity with trainable masks and a sparsity loss",
            aliases=SPARSITY_ALIASES,
            check=check_rb_sparsity,
        ),
        AlgorithmSpec(
            name="const_sparsity",
            adaptive=False,
            frameworks={"torch": "aac.sparsity.torch.const:create", "tf": "aac.sparsity.tf.const:create"},
            schema=schema("const_sparsity"),
            package=PACKAGE,
            description="keeps a fixed sparsity pattern (weight != 0, or masks from a checkpoint)",
        ),
    ]
