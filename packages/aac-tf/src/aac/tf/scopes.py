"""The names Keras users give layers in ``ignored_scopes`` / ``target_scopes``.

The matching rules (``{re}`` regexes, "an entry selects everything inside it", errors listing the
closest names) are core's (:mod:`aac.core.scopes`); this module lists a model's names for them.

Every layer of a model has a *path*: the names of the layers that contain it, from the model down,
joined by ``/`` (the model's own name left out). In a Sequential or functional model that is just the
layer name (``"conv2d_1"``); a layer of a nested model or of a custom layer is ``"head/dense"``; in a
subclassed model ``"block1/conv2d_3"``. Users write an entry in one of these ways:

* a path: ``"head/dense"``;
* a bare layer name, when it is unique in the model: ``"dense"`` (NNCF's TensorFlow configs used
  layer names);
* a path that starts with the model's name, as Keras variable paths do: ``"my_net/block1/conv2d_3"``;
* a regular expression after ``{re}``, searched in the paths: ``"{re}^block[34]/.*conv"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aac.core import scopes
from aac.tf.layers import SEPARATOR, layer_paths


@dataclass(frozen=True)
class ScopeSelection(scopes.ScopeSelection):
    """Selected layer paths, each with every layer inside it (``ScopeSelection(frozenset({"block"}))``)."""

    separator: str = SEPARATOR


class ScopeIndex(scopes.ScopeIndex):
    """Every layer path of a model, plus the bare layer names that name one layer."""

    selection_type = ScopeSelection

    def __init__(self, paths: Iterable[str], aliases: Mapping[str, str] | None = None, root_name: str = "") -> None:
        """:param paths: layer paths, outermost first. :param aliases: bare layer name -> path. :param root_name: the model's name."""
        super().__init__((p for p in paths if p), separator=SEPARATOR, aliases=aliases, noun="layer")
        self.root_name = root_name

    @classmethod
    def from_model(cls, model: Any) -> ScopeIndex:
        """Index the layers of a ``keras.Model`` (see :func:`aac.tf.layers.layer_paths`)."""
        paths = list(layer_paths(model))
        leaves: dict[str, list[str]] = {}
        for path in paths:
            leaves.setdefault(path.rpartition(SEPARATOR)[2], []).append(path)
        aliases = {name: found[0] for name, found in leaves.items() if len(found) == 1}
        return cls(paths, aliases, root_name=model.name)

    def variants(self, entry: str) -> Iterator[str]:
        """The entry, then the entry without the model's name in front (``"my_net/block1"`` -> ``"block1"``)."""
        name = entry.strip(SEPARATOR)
        yield name
        if self.root_name and name.startswith(self.root_name + SEPARATOR):
            yield name[len(self.root_name) + 1 :]
