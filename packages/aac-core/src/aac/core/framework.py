"""One contract between every compression algorithm and its framework backend, and the flow built on it.

An algorithm is a framework-neutral controller (levels, schedule, state, statistics) plus the little
that must touch tensors. What every algorithm needs from PyTorch or TensorFlow alike - the prepared
model and its scopes, a copy of a model, folding an owner's weight transforms, export, batch-norm
adaptation - is the :class:`Framework` protocol, implemented once per backend
(``aac.torch.algorithm.TorchFramework``, ``aac.tf.algorithm.TFFramework``). :class:`FrameworkAlgorithm`
is the one flow on top of it: scopes of the section, ``initialize`` (batch-norm adaptation and the
data the adaptive loop's probes adapt with), ``strip_model`` on a copy of the live model and
``_export``. What an algorithm needs beyond that (masks of filters, quantizers ...) is its own
ops protocol - ``PruningOps``, ``SparsityOps``, ``QuantizationOps`` - whose implementations carry
the algorithm's :class:`Framework`.

This module imports no framework: the backends depend on it, never the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from aac.core.api import CompressionAlgorithm
from aac.core.config import AlgorithmSection
from aac.core.errors import AacError
from aac.core.scopes import ScopeIndex, SectionScopes

__all__ = ["Framework", "FrameworkAlgorithm", "InputShape", "PreparedModel"]


class InputShape(Protocol):
    """One ``input_info`` entry as a backend holds it: only its shape matters here."""

    @property
    def shape(self) -> Sequence[int]: ...


class PreparedModel(Protocol):
    """The user's model as a backend prepared it (``TorchModel``, ``TFModel``): names of its parts and its inputs."""

    @property
    def scopes(self) -> ScopeIndex: ...

    @property
    def inputs(self) -> Sequence[InputShape]: ...


class Framework(Protocol):
    """What a backend gives every algorithm of one prepared model.

    Implementations hold the prepared model; the methods take the model to work on explicitly,
    because strip works on a copy while training goes on with the live model.
    """

    @property
    def prepared(self) -> PreparedModel:
        """The prepared model (its ``scopes`` resolve ``ignored_scopes`` / ``target_scopes``)."""
        ...

    @property
    def model(self) -> Any:
        """The live model being compressed (the user's own object)."""
        ...

    def copy(self, model: Any) -> Any:
        """An independent copy of ``model`` with its weight transforms, so stripping never touches training."""
        ...

    def has_transforms(self, model: Any, owner: str) -> bool:
        """True if ``model`` carries a weight transform of the algorithm named ``owner``."""
        ...

    def fold(self, model: Any, owner: str) -> Any:
        """Fold ``owner``'s weight transforms of ``model`` into plain weights; returns the model."""
        ...

    def export(self, model: Any, path: Path, **kwargs: Any) -> None:
        """Write the plain (stripped) ``model`` to ``path`` in the format its suffix names."""
        ...

    def batch_reading(self, *, input_fn: Any = None, batch_size: int | None = None) -> dict[str, Any]:
        """How to read a batch of the data ``initialize`` gets, defaults filled in; a TypeError for an option
        the backend does not read with (PyTorch: ``input_fn``, TensorFlow: ``batch_size``)."""
        ...

    def adapt_batchnorm(self, model: Any, data_loader: Any, samples: int, reading: Mapping[str, Any], *, quiet: bool) -> bool:
        """Re-estimate the batch-norm statistics of ``model`` over ``samples`` samples; True if any changed.

        ``reading`` is what :meth:`batch_reading` returned; ``quiet`` leaves out the log line (probes run often).
        """
        ...


class FrameworkAlgorithm(CompressionAlgorithm):
    """Base class of every framework algorithm: the neutral controllers and users' own algorithms alike.

    It gets, from ``framework`` and the config ``section``:

    * :attr:`section_scopes` (``ignored`` and ``targets``) and :meth:`is_selected` - the section's scopes,
      resolved against the model (entries matching nothing are config errors);
    * :meth:`initialize` - batch-norm adaptation when the section's ``initializer.batchnorm_adaptation``
      asks for it, and the data the adaptive loop's probes re-estimate batch norms with;
    * :meth:`strip_model` that never touches the model being trained: asked to strip the live model it
      strips a copy (the composite controller chains children through the same copy), and it refuses a
      model stripped already;
    * export in the backend's formats (:meth:`Framework.export`).

    Subclasses override :meth:`_strip` when folding their transforms is not all that strip does.
    """

    def __init__(self, framework: Framework, section: AlgorithmSection) -> None:
        prepared = framework.prepared
        super().__init__(framework.model, section.raw, input_size=[list(s.shape) for s in prepared.inputs] or None)
        self.framework = framework
        self.prepared: Any = prepared  # the backend's own type (TorchModel, TFModel): algorithms read more of it
        self.section = section
        self.section_scopes = SectionScopes.resolve(prepared.scopes, section)

    def is_selected(self, path: str) -> bool:
        """True if the config lets this algorithm compress the layer at ``path`` (targeted and not ignored)."""
        return self.section_scopes.selects(path)

    # -- initialization and probes ---------------------------------------------------------
    def initialize(self, data_loader: Any, *, input_fn: Any = None, batch_size: int | None = None) -> None:
        """Batch-norm adaptation over ``data_loader`` when the section's ``initializer.batchnorm_adaptation`` asks for it.

        :param input_fn: PyTorch: ``input_fn(batch) -> (args, kwargs)`` of the model call (default: the batch,
            or its first element).
        :param batch_size: TensorFlow: the batch size arrays are cut into (default 32).
        """
        reading = self.framework.batch_reading(input_fn=input_fn, batch_size=batch_size)
        samples = self.section.batchnorm_adaptation_samples
        self.remember_adaptation_data(data_loader, samples, **reading)
        if samples > 0 and data_loader is not None:
            self.framework.adapt_batchnorm(self.model, data_loader, samples, reading, quiet=False)

    def _adapt_batchnorm(self, data_loader: Any, samples: int, **reading: Any) -> bool:
        return self.framework.adapt_batchnorm(self.model, data_loader, samples, reading, quiet=True)

    # -- stripping and export --------------------------------------------------------------
    def strip_model(self, model: Any) -> Any:
        """Fold this algorithm's compression into plain layers; the live training model is copied first."""
        if model is self.model:
            model = self.framework.copy(model)
        elif self.framework.has_transforms(self.model, self.name) and not self.framework.has_transforms(model, self.name):
            raise AacError(
                f"{type(model).__name__} carries no '{self.name}' transforms: it was stripped already. "
                "Strip the training model (controller.strip() or strip_model(controller.model)) once"
            )
        return self._strip(model)

    def _strip(self, model: Any) -> Any:
        """Hook: turn this algorithm's transforms in ``model`` (a copy) into plain layers. Default: fold them."""
        return self.framework.fold(model, self.name)

    def _export(self, stripped_model: Any, path: Path, **kwargs: Any) -> None:
        self.framework.export(stripped_model, path, **kwargs)
