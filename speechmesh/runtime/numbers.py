"""Validation of the float options clients send, one rule for every service.

NaN passes every ordered comparison check (`nan < 0` is False) and infinity passes every
one-sided one (`inf > 0`), so a float option is checked here: finite first, then within
its bounds, and refused with INVALID_ARGUMENT naming the field and the accepted range.
"""

from __future__ import annotations

import math

from speechmesh.runtime.errors import InvalidArgument


def number_option(
    value: float,
    field: str,
    *,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
) -> float:
    """`value` as a float when it is finite and within the bounds given; otherwise
    INVALID_ARGUMENT naming `field` and saying which numbers it takes."""
    value = float(value)
    inside = math.isfinite(value)
    inside = inside and (at_least is None or value >= at_least)
    inside = inside and (above is None or value > above)
    inside = inside and (at_most is None or value <= at_most)
    inside = inside and (below is None or value < below)
    if not inside:
        raise InvalidArgument(
            field, f"must be {_accepted(at_least, above, at_most, below)}, got {value}"
        )
    return value


def _accepted(
    at_least: float | None, above: float | None, at_most: float | None, below: float | None
) -> str:
    """The accepted range in words: "a finite number in [0, 1]", "... > 0", "... <= 10"."""
    low = (at_least, "[", ">=") if at_least is not None else (above, "(", ">")
    high = (at_most, "]", "<=") if at_most is not None else (below, ")", "<")
    if low[0] is not None and high[0] is not None:
        return f"a finite number in {low[1]}{low[0]:g}, {high[0]:g}{high[1]}"
    if low[0] is not None:
        return f"a finite number {low[2]} {low[0]:g}"
    if high[0] is not None:
        return f"a finite number {high[2]} {high[0]:g}"
    return "a finite number"
