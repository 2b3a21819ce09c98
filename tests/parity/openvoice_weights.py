"""Random OpenVoice weights (converter, base speakers) rebuilt from a seed and a list of
keys and shapes.

The tiny converter's reference encoder alone (six 3x3 convolutions up to 128 channels and
a 128-unit GRU, sizes the reference fixes) is over a megabyte, too much to commit. The
generator records each state-dict key and shape of the reference's model (with its
weight_g / weight_v pairs) and a seed; the test rebuilds the same values from them and
checks the digest the generator recorded before serving them.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch


def random_state(keys: list[tuple[str, list[int]]], seed: int) -> dict[str, torch.Tensor]:
    """One float32 tensor per (key, shape), drawn in order from one seeded generator.

    Weights are normal with a 0.7/sqrt(fan-in) spread, weight-norm gains uniform in
    [0.3, 0.9], layer-norm scales (`layernorm.weight`, `gamma`) near one, every other
    vector small: random values under which every layer (the flow's zero-initialised
    output convolutions included) matters and activations stay in range.
    """
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in keys:
        if key.endswith("weight_g"):
            values = rng.uniform(0.3, 0.9, shape)
        elif key.endswith(("layernorm.weight", ".gamma")):
            values = 1.0 + 0.1 * rng.standard_normal(shape)
        elif len(shape) >= 2:
            values = 0.7 * rng.standard_normal(shape) / math.sqrt(math.prod(shape[1:]))
        else:
            values = 0.1 * rng.standard_normal(shape)
        state[key] = torch.from_numpy(np.asarray(values, dtype=np.float32).reshape(shape))
    return state


def digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over the keys, shapes and float32 bytes, in order."""
    hasher = hashlib.sha256()
    for key, value in state.items():
        hasher.update(f"{key}{list(value.shape)}".encode())
        hasher.update(value.detach().to(torch.float32).contiguous().numpy().tobytes())
    return hasher.hexdigest()


def save_checkpoint(state: dict[str, torch.Tensor], path: Path) -> None:
    """checkpoint.pth as the converter releases wrap it: the state dict under "model"."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state, "iteration": 1, "learning_rate": 0.0002}, path)
