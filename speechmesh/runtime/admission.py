"""Memory-aware admission: a budget of audio seconds one server process holds at once.

Admission by count lets 40 hour-long files in as readily as 40 short ones; the budget
counts what calls hold. A unary request holds its decoded audio for the whole call
(charged when `decode_request_audio` reads it: raw audio before decoding, containers
once decoded, each already bounded by max_audio_seconds); a request stream holds a
fixed `stream_held_audio_seconds` from admission to its end, the audio a stream keeps
in its windows. A call that would take the process past `max_held_audio_seconds` is
RESOURCE_EXHAUSTED naming the limit, and everything a call took is given back when it
ends, however it ends.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from speechmesh.runtime.errors import LimitExceeded
from speechmesh.runtime.telemetry import HELD_AUDIO, HELD_AUDIO_PEAK

LIMIT = "max_held_audio_seconds"


class AudioBudget:
    """Seconds of audio held by the calls in flight of this process, against a limit."""

    def __init__(self, limit_s: float) -> None:
        self.limit_s = limit_s
        self.held_s = 0.0
        self.peak_s = 0.0

    def take(self, seconds: float) -> None:
        wanted = self.held_s + seconds
        if wanted > self.limit_s:
            raise LimitExceeded(
                LIMIT,
                self.limit_s,
                round(wanted, 1),
                "s",
                hint=f"calls in flight hold {self.held_s:.1f} s of audio; retry shortly "
                "or on another replica",
            )
        self.held_s = wanted
        self.peak_s = max(self.peak_s, wanted)
        HELD_AUDIO.set(self.held_s)
        HELD_AUDIO_PEAK.set(self.peak_s)

    def give(self, seconds: float) -> None:
        # Rounded: sums of float seconds drift, and an idle server holds exactly 0.
        self.held_s = max(round(self.held_s - seconds, 6), 0.0)
        HELD_AUDIO.set(self.held_s)


class _Ledger:
    """What one call holds."""

    def __init__(self, budget: AudioBudget) -> None:
        self.budget = budget
        self.held_s = 0.0

    def take(self, seconds: float) -> None:
        self.budget.take(seconds)
        self.held_s += seconds


_call: contextvars.ContextVar[_Ledger | None] = contextvars.ContextVar("held_audio", default=None)


@contextmanager
def holding(budget: AudioBudget, stream_s: float = 0.0) -> Iterator[None]:
    """Runs a call against `budget`: it takes `stream_s` at once (a request stream), more
    through `hold`, and gives all of it back at the end."""
    ledger = _Ledger(budget)
    ledger.take(stream_s)
    # Each call runs in its own task, hence its own context: no reset is needed, and
    # none could run where a cancelled stream's generator is closed from elsewhere.
    _call.set(ledger)
    try:
        yield
    finally:
        budget.give(ledger.held_s)
        ledger.held_s = 0.0


def hold(seconds: float) -> None:
    """Charges the call in progress for `seconds` of audio it keeps until it ends;
    RESOURCE_EXHAUSTED past the process's limit. Outside a call (a script, a test of
    the audio layer) nothing is counted."""
    ledger = _call.get()
    if ledger is not None and seconds > 0:
        ledger.take(seconds)
