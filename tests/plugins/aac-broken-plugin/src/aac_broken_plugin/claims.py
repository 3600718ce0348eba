"""A backend whose ``claims(model)`` raises: it is passed over, and lower-priority backends still claim."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aac.core import BackendSpec, GenericBackend, hookimpl


def claims(model: Any) -> bool:
    raise AttributeError("'NoneType' object has no attribute 'nn'")


@hookimpl
def aac_backends() -> Iterable[BackendSpec]:
    return [BackendSpec(name="fragile", claims=claims, factory=GenericBackend, package="aac-broken-plugin", priority=100)]
