"""NNCF-compatible config loading: ``load_config(source) -> Config``.

``source`` is a path to a JSON file (``//`` and ``/* */`` comments allowed), a JSON string or a dict.
Legacy spellings are mapped to current keys, then the config is validated against the composed
schema and the cross-field rules; *every* problem is reported at once, each with its JSON path.

The algorithms a config may name come from an :class:`AlgorithmCatalog` (:mod:`aac.core.config.catalog`):
by default the installed plugins' registry, or any catalog passed in, which needs no plugin discovery.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aac.core.config.accuracy_aware import ADAPTIVE, EARLY_EXIT, AccuracyAwareParams
from aac.core.config.aliases import apply_aliases
from aac.core.config.catalog import AlgorithmCatalog, default_catalog
from aac.core.config.parsing import read_source
from aac.core.config.rules import check_accuracy_aware, check_algorithms, check_finite, standalone_notes
from aac.core.config.schema import validate
from aac.core.config.sections import AlgorithmSection, Config
from aac.core.errors import ConfigError, ConfigProblem

__all__ = ["ADAPTIVE", "EARLY_EXIT", "AccuracyAwareParams", "AlgorithmCatalog", "AlgorithmSection", "Config", "load_config"]


def load_config(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    catalog: AlgorithmCatalog | None = None,
    registry: AlgorithmCatalog | None = None,
) -> Config:
    """Load, normalise and validate a config; raise :class:`ConfigError` listing every problem.

    :param source: a path to a (commented) JSON file, a JSON string, or a mapping. A :class:`Config` is
        returned as it is when no catalog is given: it was validated when it was loaded.
    :param catalog: the algorithms (and search strategies) the config may name; default: the installed
        plugins' (:func:`aac.core.plugins.default_registry`). A catalog passed here is used as it is, so
        loading needs no plugin discovery.
    :param registry: the same as ``catalog``, under the name callers that pass a
        :class:`~aac.core.plugins.Registry` have always used; give one of the two.
    """
    if catalog is not None and registry is not None:
        raise TypeError("load_config takes catalog= or registry= (the same thing), not both")
    catalog = catalog if catalog is not None else registry
    if isinstance(source, Config) and catalog is None:
        return source
    catalog = catalog if catalog is not None else default_catalog()
    data, name = read_source(source)
    if not isinstance(data, Mapping):
        raise ConfigError([ConfigProblem("$", f"a config must be a JSON object, not {type(data).__name__}")], name)
    normalised, notes, problems = apply_aliases(data, catalog.algorithms)
    problems += check_finite(normalised)
    problems += validate(normalised, catalog.algorithms.values())
    problems += check_algorithms(normalised, catalog)
    problems += check_accuracy_aware(normalised, catalog)
    if problems:
        unique = {(p.path, p.message): p for p in problems}
        raise ConfigError(sorted(unique.values(), key=lambda p: p.path), name)
    config = Config(normalised)
    config.source = name
    config.notes = (*notes, *standalone_notes(normalised))
    return config
