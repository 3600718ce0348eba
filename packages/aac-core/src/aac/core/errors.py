"""Every error aac raises on purpose derives from :class:`AacError`.

Each one says what was wrong *and where*, so that a user never has to read a traceback from deep
inside a framework to learn that a config key, a callback result or a checkpoint was at fault.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class AacError(Exception):
    """Base class of every error raised on purpose by aac."""


def one_line(text: str) -> str:
    """``text`` with control characters escaped (``\\n``): a config key or value may hold a newline."""
    return text if text.isprintable() else "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in text)


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config: a JSON path (``$.compression[0].params``) and what is wrong there.

    Path and message are kept to one line each (control characters escaped), whatever keys or values
    the config holds: ``aac validate`` prints one line per problem.
    """

    path: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", one_line(self.path))
        object.__setattr__(self, "message", one_line(self.message))

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ConfigError(AacError, ValueError):
    """A config is invalid. ``problems`` lists every problem found, each with its JSON path."""

    def __init__(self, problems: Iterable[ConfigProblem], source: str | None = None) -> None:
        self.problems: list[ConfigProblem] = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = [f"invalid aac config{where} ({len(self.problems)} problem(s)):"]
        lines += [f"  {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))


class PluginError(AacError):
    """A plugin is broken or two plugins conflict; the message names the plugin(s)."""


class UnknownAlgorithmError(AacError, KeyError):
    """A config names an algorithm that no installed plugin provides."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class MissingBackendError(AacError, TypeError):
    """No installed backend claims the model handed to ``create_compressed_model``."""


class UnsupportedFrameworkError(AacError, TypeError):
    """An algorithm is installed but has no implementation for the model's framework."""


class CallbackError(AacError, TypeError):
    """A user callback (``validate_fn``, ``train_epoch_fn`` …) returned something unusable."""


class MetricScaleError(AacError, ValueError):
    """``uncompressed_model_accuracy``, the budget and ``validate_fn``'s results are not on one scale."""


class CheckpointError(AacError):
    """A checkpoint or saved search state is missing, corrupt or from an incompatible run."""


class CompressionRateError(AacError, ValueError):
    """A compression rate was requested that the algorithm cannot take."""


def did_you_mean(word: str, candidates: Sequence[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest candidate, or an empty string."""
    import difflib

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
