"""Toys for testing the loops and plugins without a framework, and the algorithms' conformance suite.

Plugin authors can use the toys too: ``Registry(get_plugin_manager(autoload=False, plugins=[ToyPlugin()]))``
gives a registry with ``toy_pruning`` (adaptive) and ``toy_quant`` (fixed-level) for the ``python``
framework, which core's generic backend runs end to end.

**Conformance suite.** :class:`CompressionConformance` and :class:`AdaptiveConformance` are test
classes an algorithm package subclasses once per framework (the pandas ``tests/extension/base``
pattern): the subclass names the config section in :attr:`CompressionConformance.section`, and the
test module supplies a ``framework`` fixture - a :class:`FrameworkHarness` (``aac.torch.testing.conformance.TorchHarness``,
``aac.tf.testing.TFHarness``)::

    @pytest.fixture
    def framework() -> TorchHarness:
        return TorchHarness()

    class TestMagnitudeSparsity(AdaptiveConformance):
        section = {"algorithm": "magnitude_sparsity"}

Nothing here imports a framework (or NumPy) at module level: the harness brings them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

from aac.core.api import CompressionAlgorithm, CompressionScheduler, CompressionStage
from aac.core.hookspecs import hookimpl
from aac.core.specs import AlgorithmSpec
from aac.core.statistics import AlgorithmStatistics


class ToyModel:
    """A 'network' whose skill grows with training; compression above a knee costs accuracy."""

    def __init__(self, skill: float = 0.9) -> None:
        self.skill = skill
        self.rate = 0.0  # set by the toy algorithm, like a mask buffer

    def state_dict(self) -> dict[str, float]:
        return {"skill": self.skill, "rate": self.rate}

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        self.skill, self.rate = float(state["skill"]), float(state["rate"])


class ToySchedule(CompressionScheduler):
    def __init__(self, algo: ToyPruning, target: float, steps: int) -> None:
        super().__init__()
        self.algo, self.target, self.steps = algo, target, steps

    def _on_epoch(self) -> None:
        self.algo.set_rate(self.target * min(1.0, (self.current_epoch + 1) / self.steps))


class ToyPruning(CompressionAlgorithm):
    """Adaptive toy algorithm for the ``python`` framework.

    With ``grid`` > 0 it reaches only multiples of ``grid`` (a request is rounded to the nearest one),
    like filter pruning, which keeps whole blocks of filters.
    """

    name = "toy_pruning"
    adaptive = True

    def __init__(self, model: ToyModel, params: Mapping[str, Any]) -> None:
        super().__init__(model, params)
        self.target = float(params.get("target", 0.3))
        self.max_rate = float(params.get("max_rate", 1.0))
        self.grid = float(params.get("grid", 0.0))
        self._scheduler = ToySchedule(self, self.target, int(params.get("steps", 2)))

    def set_rate(self, value: float) -> None:
        self.model.rate = self._on_grid(value)

    def reachable_compression_rate(self, rate: float) -> float:
        return self._on_grid(rate)

    def _on_grid(self, rate: float) -> float:
        return round(round(rate / self.grid) * self.grid, 6) if self.grid else float(rate)

    @property
    def compression_rate(self) -> float:
        return float(self.model.rate)

    @compression_rate.setter
    def compression_rate(self, value: float) -> None:
        self.set_rate(value)

    @property
    def maximal_compression_rate(self) -> float:
        return self.max_rate

    def compression_stage(self) -> CompressionStage:
        if self.scheduler_disabled or self.model.rate >= self.target - 1e-9:
            return CompressionStage.FULLY_COMPRESSED
        return CompressionStage.PARTIALLY_COMPRESSED if self.model.rate > 0 else CompressionStage.UNCOMPRESSED

    def _collect_statistics(self) -> AlgorithmStatistics:
        return AlgorithmStatistics(self.name, {"rate": self.model.rate})

    def _get_algorithm_state(self) -> dict[str, Any]:
        return {"rate": self.model.rate}

    def _load_algorithm_state(self, state: Mapping[str, Any]) -> None:
        self.model.rate = float(state["rate"])


def build_toy(model: Any, section: Any, config: Any) -> ToyPruning:
    return ToyPruning(model, section.params)


class ToyQuant(CompressionAlgorithm):
    """A fixed-level toy algorithm (like quantization: no adjustable rate) that counts its epochs."""

    name = "toy_quant"

    def __init__(self, model: ToyModel) -> None:
        super().__init__(model)
        self._scheduler = CompressionScheduler()

    def _collect_statistics(self) -> AlgorithmStatistics:
        return AlgorithmStatistics(self.name, {"epochs_seen": float(self._scheduler.current_epoch + 1)})


def build_toy_quant(model: Any, section: Any, config: Any) -> ToyQuant:
    return ToyQuant(model)


class ToyPlugin:
    @hookimpl
    def aac_algorithms(self) -> Iterable[AlgorithmSpec]:
        return [
            AlgorithmSpec(
                name="toy_pruning",
                adaptive=True,
                frameworks={"python": build_toy},
                package="aac-core",
                schema={
                    "$id": "urn:test:toy",
                    "type": "object",
                    "properties": {
                        "params": {
                            "type": "object",
                            "properties": {
                                "target": {"type": "number"},
                                "steps": {"type": "integer"},
                                "max_rate": {"type": "number"},
                                "grid": {"type": "number"},
                            },
                            "additionalProperties": False,
                        }
                    },
                    "additionalProperties": False,
                },
            ),
            AlgorithmSpec(
                name="toy_quant", adaptive=False, frameworks={"python": build_toy_quant}, schema={"type": "object"}, package="aac-core"
            ),
        ]


def accuracy(model: ToyModel, knee: float = 0.5, slope: float = 1.0) -> float:
    """Deterministic 'validation': skill minus a penalty for compressing past the knee."""
    return round(min(model.skill, 1.0) - max(0.0, model.rate - knee) * slope, 6)


def train_epoch(model: ToyModel, gain: float = 0.01) -> None:
    model.skill = round(min(1.0, model.skill + gain), 6)


# -- the algorithms' conformance suite ------------------------------------------------------------


class FrameworkHarness(Protocol):
    """What the conformance suite needs of a framework: a small model, its data, and how to run and reload it."""

    #: the suffix of the export format the suite checks (``".onnx"``, ``".keras"``)
    export_suffix: str
    #: keywords for ``export_model`` (a faster exporter, say)
    export_options: Mapping[str, Any]

    def model(self) -> Any:
        """A fresh small model with convolutions, batch norms and a linear head; the same weights every call."""
        ...

    def input_info(self) -> Mapping[str, Any]:
        """The config's ``input_info`` for :meth:`model`."""
        ...

    def batches(self) -> list[Any]:
        """A few input batches (the data ``initialize`` gets); the first is the one outputs are compared on."""
        ...

    def outputs(self, model: Any, batch: Any) -> Any:
        """``model``'s output for ``batch`` in inference mode, as a NumPy array."""
        ...

    def exported_outputs(self, path: Path, batch: Any) -> Any:
        """Load the file ``export_model`` wrote to ``path`` and run it on ``batch``; a NumPy array."""
        ...


class CompressionConformance:
    """What every algorithm must do on every framework: state round-trips, strip equals the compressed model, export.

    Subclasses set :attr:`section` (the config's ``compression`` section); the test module supplies the
    ``framework`` fixture (a :class:`FrameworkHarness`).
    """

    #: the ``compression`` section of the config under test
    section: ClassVar[Mapping[str, Any]] = {}
    #: the rate the tests compress to (an adaptive algorithm's ``compression_rate``)
    rate: ClassVar[float] = 0.5
    #: how close the stripped (or exported) model's outputs must be to the compressed model's, relative to their scale
    rtol: ClassVar[float] = 1e-5
    #: how far the rate an adaptive controller can reach may be from the rate asked for (its grid)
    rate_tolerance: ClassVar[float] = 0.05

    def compress(self, framework: FrameworkHarness) -> tuple[Any, Any]:
        """``(controller, model)`` of a fresh model, initialized with the harness' batches."""
        from aac.core.model_creation import create_compressed_model

        config = {"input_info": dict(framework.input_info()), "compression": dict(self.section)}
        controller, model = create_compressed_model(framework.model(), config)
        controller.initialize(framework.batches())
        self.compressed(controller)
        return controller, model

    def compressed(self, controller: Any) -> None:
        """Hook: bring a fresh controller to the level the tests check (adaptive algorithms: :attr:`rate`)."""

    @staticmethod
    def assert_close(actual: Any, expected: Any, rtol: float, what: str) -> None:
        import numpy as np

        actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
        assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
        scale = max(float(np.max(np.abs(expected))), 1e-12)
        error = float(np.max(np.abs(actual - expected))) / scale
        assert error <= rtol, f"{what}: outputs differ by {error:.3g} of their scale (allowed {rtol:g})"

    def test_state_round_trips(self, framework: FrameworkHarness) -> None:
        """get_state (through JSON, with the model's weights as a checkpoint has them) into a new controller gives the same model."""
        import json

        from aac.core.plugins import default_registry

        controller, model = self.compress(framework)
        controller.disable_scheduler()
        backend = default_registry().backend_for(model).create()
        weights, state = backend.model_state(model), json.loads(json.dumps(controller.get_state()))
        restored, restored_model = self.compress(framework)
        if getattr(type(controller), "adaptive", False):
            restored.compression_rate = 0.0  # somewhere else, so that load_state has something to undo
        backend.load_model_state(restored_model, weights)
        restored.load_state(state)
        assert restored.get_state() == state and restored.scheduler_disabled
        batch = framework.batches()[0]
        self.assert_close(framework.outputs(restored_model, batch), framework.outputs(model, batch), self.rtol, "restored model")

    def test_strip_equals_compressed(self, framework: FrameworkHarness) -> None:
        controller, model = self.compress(framework)
        batch = framework.batches()[0]
        expected = framework.outputs(model, batch)
        stripped = controller.strip()
        assert stripped is not model
        self.assert_close(framework.outputs(stripped, batch), expected, self.rtol, "stripped model")
        self.assert_close(framework.outputs(model, batch), expected, 0.0, "the training model after strip()")

    def test_export_writes_a_file_that_loads(self, framework: FrameworkHarness, tmp_path: Path) -> None:
        controller, model = self.compress(framework)
        batch = framework.batches()[0]
        path = controller.export_model(tmp_path / f"model{framework.export_suffix}", **framework.export_options)
        assert path.exists()
        self.assert_close(
            framework.exported_outputs(path, batch), framework.outputs(controller.strip(), batch), self.rtol, "exported model"
        )


class AdaptiveConformance(CompressionConformance):
    """What an adaptive algorithm must do on top: its rate reads back what was set, and it goes down as well as up."""

    def compressed(self, controller: Any) -> None:
        controller.compression_rate = self.reachable(controller, self.rate)

    @staticmethod
    def reachable(controller: Any, rate: float) -> float:
        """``rate`` capped below the controller's maximum, on its grid."""
        return float(controller.reachable_compression_rate(min(rate, 0.9 * controller.maximal_compression_rate)))

    def test_setter_and_getter_agree(self, framework: FrameworkHarness) -> None:
        """The getter reads back what the setter set (on the controller's grid), and so do the statistics."""
        controller, _ = self.compress(framework)
        for rate in (0.1, 0.3, self.rate, 0.2):
            expected = self.reachable(controller, rate)
            assert abs(expected - min(rate, 0.9 * controller.maximal_compression_rate)) <= self.rate_tolerance
            controller.compression_rate = expected
            assert abs(controller.compression_rate - expected) < 1e-6, f"set {expected}, read {controller.compression_rate}"
            measured = controller.compression_rate
            controller.compression_rate = measured
            assert abs(controller.compression_rate - measured) < 1e-9, "setting the rate read back moved it"
            scalars = controller.statistics()[controller.name].scalars
            assert abs(scalars["compression_rate"] - measured) < 1e-9

    def test_rates_out_of_reach_are_refused(self, framework: FrameworkHarness) -> None:
        import pytest

        from aac.core.errors import CompressionRateError

        controller, _ = self.compress(framework)
        before = controller.compression_rate
        refused = [1.0, -0.1, float("nan")]
        if controller.maximal_compression_rate + 0.01 < 1.0:
            refused.append(controller.maximal_compression_rate + 0.01)
        for rate in refused:
            with pytest.raises(CompressionRateError):
                controller.compression_rate = rate
        assert controller.compression_rate == before, "a refused rate changed the level"

    def test_rate_goes_down_and_up(self, framework: FrameworkHarness) -> None:
        """Lowering the rate brings back what a higher rate removed: at rate 0 the model computes as before compression."""
        controller, model = self.compress(framework)
        batch = framework.batches()[0]
        controller.compression_rate = 0.0
        assert controller.compression_rate == 0.0
        uncompressed = framework.outputs(model, batch)
        high = self.reachable(controller, self.rate)
        controller.compression_rate = high
        assert controller.compression_rate > 0.0
        compressed = framework.outputs(model, batch)
        import numpy as np

        assert not np.allclose(compressed, uncompressed), f"rate {high} did not change the model's outputs"
        controller.compression_rate = self.reachable(controller, high / 2)
        assert controller.compression_rate <= high
        controller.compression_rate = 0.0
        self.assert_close(framework.outputs(model, batch), uncompressed, self.rtol, "the model back at rate 0")
