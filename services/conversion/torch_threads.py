"""torch's intra-op thread pool is per process: the conversion models share one.

Each torch engine asks for its configured `threads`; the pool gets the largest count
asked for. Left at torch's default (every core), a busy machine slows the GE2E
encoder several-fold through oversubscription.
"""

from __future__ import annotations

import threading

import torch

_lock = threading.Lock()
_largest = 0


def request_threads(count: int) -> None:
    global _largest
    with _lock:
        _largest = max(_largest, count)
        torch.set_num_threads(_largest)
