"""``create_compressed_model``: the one entry point from a plain model and a config to a controller."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aac.core.api import CompressionAlgorithm
from aac.core.composite import CompositeController
from aac.core.config import Config, load_config
from aac.core.errors import PluginError, UnsupportedFrameworkError
from aac.core.plugins import Registry, default_registry

#: the name of the controller returned for a config without a ``compression`` section
NO_COMPRESSION = "no_compression"


def create_compressed_model(
    model: Any,
    config: Config | Mapping[str, Any] | str | os.PathLike[str],
    compression_state: Mapping[str, Any] | None = None,
    *,
    registry: Registry | None = None,
) -> tuple[CompressionAlgorithm, Any]:
    """Apply the config's algorithms to ``model``; return ``(controller, compressed_model)``.

    The backend is the installed one that claims ``model`` (aac-torch for ``torch.nn.Module``, aac-tf
    for Keras models, core's generic backend for objects with ``state_dict``). With several algorithms
    the controller is a :class:`~aac.core.composite.CompositeController`. ``compression_state`` (from
    ``controller.get_state()``) restores a saved controller, for example when resuming.
    """
    registry = registry or default_registry()
    config = load_config(config, registry=registry)
    backend_spec = registry.backend_for(model)
    backend = backend_spec.create()
    prepared = backend.prepare_model(model, config)
    controllers: list[CompressionAlgorithm] = []
    for section in config.compression_sections():
        spec = registry.algorithm(section.name)
        if backend.name not in spec.frameworks:
            raise UnsupportedFrameworkError(
                f"algorithm '{spec.name}' ({spec.package or 'plugin'}) supports {sorted(spec.frameworks)}, "
                f"not the '{backend.name}' framework of this model"
            )
        controller = spec.factory(backend.name)(prepared, section, config)
        if type(controller).adaptive != spec.adaptive:
            raise PluginError(
                f"algorithm '{spec.name}': the plugin registered adaptive={spec.adaptive} but its controller "
                f"{type(controller).__qualname__} declares adaptive={type(controller).adaptive}"
            )
        controllers.append(controller)
    if not controllers:
        result: CompressionAlgorithm = _NoCompression(prepared)
    else:
        result = controllers[0] if len(controllers) == 1 else CompositeController(controllers)
    compressed = backend.finalize_model(prepared, result)
    if compression_state is not None:
        result.load_state(compression_state)
    return result, compressed


class _NoCompression(CompressionAlgorithm):
    """The controller of a config without a ``compression`` section: training runs unchanged."""

    name = NO_COMPRESSION
