"""A sparsity config section as a typed object with NNCF's defaults.

The JSON Schema has already checked types and ranges when this runs (and core has moved the legacy
``sparsity_steps`` / ``sparsity_training_steps`` / ``params.sparsity_init`` spellings); what is left
are the rules that relate two keys, reported with their JSON paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aac.core.errors import ConfigError, ConfigProblem

SCHEDULES = ("polynomial", "exponential", "multistep", "adaptive")
GLOBAL, LOCAL = "global", "local"

#: params key -> dataclass field, where they differ
_RENAMED = {"step": "adaptive_step", "eps": "adaptive_eps"}


@dataclass(frozen=True)
class SparsitySettings:
    """Everything a sparsity algorithm reads from its section (``step``/``eps`` are the adaptive schedule's)."""

    sparsity_init: float = 0.0
    schedule: str = "polynomial"
    sparsity_target: float = 0.5
    sparsity_target_epoch: float = 90
    sparsity_freeze_epoch: float = 100
    power: float = 0.9
    concave: bool = True
    update_per_optimizer_step: bool = False
    steps_per_epoch: int | None = None
    multistep_steps: tuple[float, ...] = (90,)
    multistep_sparsity_levels: tuple[float, ...] = (0.1, 0.5)
    patience: int = 1
    adaptive_step: float = 0.05
    adaptive_eps: float = 0.03
    sparsity_level_setting_mode: str = GLOBAL
    weight_importance: str = "normed_abs"
    #: keys given explicitly in ``params`` (to tell a default from a choice)
    given: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def local(self) -> bool:
        return self.sparsity_level_setting_mode == LOCAL

    @property
    def target_level(self) -> float:
        """The level the schedule ends at (the last multistep level for ``multistep``)."""
        return self.multistep_sparsity_levels[-1] if self.schedule == "multistep" else self.sparsity_target

    @property
    def initial_level(self) -> float:
        """The level before the first epoch: ``sparsity_init``, or the first multistep level when it was not given."""
        if self.schedule == "multistep" and "sparsity_init" not in self.given:
            return self.multistep_sparsity_levels[0]
        return self.sparsity_init

    @classmethod
    def from_section(
        cls,
        raw: Mapping[str, Any],
        path: str = "$.compression",
        *,
        default_schedule: str = "polynomial",
        algorithm: str = "magnitude_sparsity",
    ) -> SparsitySettings:
        """Build from a validated section; raise :class:`ConfigError` listing every inconsistency."""
        params: Mapping[str, Any] = raw.get("params", {}) or {}
        values: dict[str, Any] = {"schedule": default_schedule}
        for key, value in params.items():
            name = _RENAMED.get(key, key)
            if name in cls.__dataclass_fields__ and name != "given":
                values[name] = tuple(value) if isinstance(value, list) else value
        given = set(params)
        if "sparsity_init" in raw:
            values["sparsity_init"] = raw["sparsity_init"]
            given.add("sparsity_init")
        settings = cls(**values, given=frozenset(given))
        problems = settings.problems(f"{path}.params", path, algorithm)
        if problems:
            raise ConfigError(problems)
        return settings

    def problems(self, where: str, section: str, algorithm: str) -> list[ConfigProblem]:
        """Cross-key rules; ``where`` is the JSON path of ``params``, ``section`` that of the section."""
        problems: list[ConfigProblem] = []
        if self.schedule not in SCHEDULES:
            problems.append(ConfigProblem(f"{where}.schedule", f"unknown schedule '{self.schedule}'; use one of {', '.join(SCHEDULES)}"))
        if self.schedule == "multistep":
            steps, levels = self.multistep_steps, self.multistep_sparsity_levels
            if len(levels) != len(steps) + 1:
                problems.append(
                    ConfigProblem(
                        f"{where}.multistep_sparsity_levels",
                        f"needs one more entry than multistep_steps (the level before the first step, then one per step): "
                        f"{len(steps)} step(s) {list(steps)} but {len(levels)} level(s) {list(levels)}",
                    )
                )
            if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
                problems.append(ConfigProblem(f"{where}.multistep_steps", f"must be strictly increasing epochs, got {list(steps)}"))
        elif self.schedule in ("polynomial", "exponential"):
            if self.sparsity_init > self.sparsity_target:
                problems.append(
                    ConfigProblem(
                        f"{section}.sparsity_init", f"{self.sparsity_init} is above params.sparsity_target {self.sparsity_target}"
                    )
                )
            if self.sparsity_freeze_epoch < self.sparsity_target_epoch:
                problems.append(
                    ConfigProblem(
                        f"{where}.sparsity_freeze_epoch",
                        f"{self.sparsity_freeze_epoch:g} is before sparsity_target_epoch {self.sparsity_target_epoch:g}: the masks would "
                        "freeze before the schedule reaches sparsity_target; raise sparsity_freeze_epoch",
                    )
                )
        elif self.schedule == "adaptive":
            if self.sparsity_init > self.sparsity_target:
                problems.append(
                    ConfigProblem(
                        f"{section}.sparsity_init", f"{self.sparsity_init} is above params.sparsity_target {self.sparsity_target}"
                    )
                )
            if self.update_per_optimizer_step:
                problems.append(
                    ConfigProblem(
                        f"{where}.update_per_optimizer_step",
                        "the adaptive schedule reacts to the sparsity measured after whole epochs; it cannot move per optimizer "
                        "step (use polynomial, exponential or multistep, or set it to false)",
                    )
                )
        if self.local and "schedule" in self.given:
            problems.append(
                ConfigProblem(
                    f"{where}.schedule",
                    "sparsity_level_setting_mode 'local' has no schedule (levels are set per layer with set_sparsity_level or "
                    "compression_rate); remove 'schedule' or use the 'global' mode",
                )
            )
        return problems


def check_section(raw: Mapping[str, Any], path: str, *, default_schedule: str, algorithm: str) -> list[ConfigProblem]:
    """The cross-key rules as config problems (``AlgorithmSpec.check``: ``load_config`` reports them).

    Values of the wrong type are left to the schema, which reports them on its own.
    """
    if not isinstance(raw, Mapping) or not isinstance(raw.get("params", {}) or {}, Mapping):
        return []
    try:
        SparsitySettings.from_section(raw, path, default_schedule=default_schedule, algorithm=algorithm)
    except ConfigError as error:
        return list(error.problems)
    except (TypeError, ValueError):
        return []
    return []


def check_magnitude_sparsity(raw: Mapping[str, Any], path: str) -> list[ConfigProblem]:
    return check_section(raw, path, default_schedule="polynomial", algorithm="magnitude_sparsity")


def check_rb_sparsity(raw: Mapping[str, Any], path: str) -> list[ConfigProblem]:
    return check_section(raw, path, default_schedule="exponential", algorithm="rb_sparsity")
