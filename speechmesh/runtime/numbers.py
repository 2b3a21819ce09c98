"""Validation of the float options clients send: NaN and infinities pass every ordered
comparison check (`nan < 0` is False), so each float option goes through here first."""

from __future__ import annotations

import math

from speechmesh.runtime.errors import InvalidArgument


def finite_option(value: float, field: str) -> float:
    """`value` when it is a finite number; INVALID_ARGUMENT naming `field` otherwise."""
    if not math.isfinite(value):
        raise InvalidArgument(field, f"must be a finite number, got {value}")
    return float(value)
