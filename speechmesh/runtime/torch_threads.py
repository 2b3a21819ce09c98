"""torch's intra-op thread count, per process and per calling thread.

Each torch engine asks for its configured `threads`; the process uses the largest
count asked for. OpenMP keeps that count per thread, so every thread that runs torch
work (the model's batch thread, the preprocessing workers) applies it once before
its first op: a thread that never did runs oneDNN's LSTM on every core, which on a
busy machine made the GE2E encoder ten times slower and burnt cores spinning.
"""

from __future__ import annotations

import threading

import torch

_lock = threading.Lock()
_largest = 1
_applied = threading.local()


def request_threads(count: int) -> None:
    """Raises the process's torch thread count to `count` (never lowers it)."""
    global _largest
    with _lock:
        _largest = max(_largest, count)
    use_threads()


def use_threads() -> None:
    """Applies the process's torch thread count in the calling thread (once per change)."""
    if getattr(_applied, "count", None) != _largest:
        torch.set_num_threads(_largest)
        _applied.count = _largest
