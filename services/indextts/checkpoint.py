"""Checkpoint key conventions shared by the IndexTTS-2 stages.

The published files keep weight norm as two tensors per layer (`weight_g` and
`weight_v`, or torch's newer `parametrizations.weight.original0/1`); our modules hold
the plain weight, so the pair is folded once at load (w = g · v / ‖v‖, the norm taken
over every axis but the first, as torch's weight_norm does with dim=0).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from speechmesh.runtime import weights

_PAIRS = (
    (".weight_g", ".weight_v"),
    (".parametrizations.weight.original0", ".parametrizations.weight.original1"),
)


def fold_weight_norm(state: Mapping[str, Any]) -> dict[str, Any]:
    """`state` with every weight-norm pair replaced by the weight it stands for."""
    folded = dict(state)
    for g_suffix, v_suffix in _PAIRS:
        for key in [k for k in state if k.endswith(g_suffix)]:
            base = key[: -len(g_suffix)]
            v_key = base + v_suffix
            if v_key not in state:
                continue
            # torch's own kernel, as the reference's remove_weight_norm computes it: the
            # same formula summed in another order differs by ~1e-7 a weight, which a
            # vocoder's stages amplify past 1e-5.
            folded[base + ".weight"] = torch._weight_norm(
                state[v_key].float(), state[key].float(), 0
            )
            del folded[key], folded[v_key]
    return folded


def unfold_weight_norm(state: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The published form of `state`: `<name>.weight` split into weight_g / weight_v."""
    unfolded = dict(state)
    for name in names:
        weight = unfolded.pop(f"{name}.weight")
        norm = weight.flatten(1).norm(dim=1).view(-1, *([1] * (weight.dim() - 1)))
        unfolded[f"{name}.weight_g"] = norm.clone()
        unfolded[f"{name}.weight_v"] = weight.clone()
    return unfolded


def weight_normed(module: torch.nn.Module) -> list[str]:
    """Names of the submodules a module declares as weight-normed in the published files."""
    names = []
    for name, child in module.named_modules():
        if getattr(child, "published_weight_norm", False):
            names.append(name)
    return names


def mark_weight_norm(layer: torch.nn.Module) -> torch.nn.Module:
    """Tags a layer whose published weight is a weight-norm pair."""
    layer.published_weight_norm = True  # type: ignore[assignment]
    return layer


def load_module(
    module: torch.nn.Module, state: Mapping[str, Any], *, ignore: Iterable[str] = ()
) -> None:
    """Strict load of a published state (weight norm folded) into one of our modules."""
    weights.load_strict(module, fold_weight_norm(state), ignore=ignore)


def read(path: Path) -> dict[str, Any]:
    """A checkpoint file as a dict (safetensors or weights_only torch)."""
    return weights.load_state_dict(Path(path))


def read_tensor(path: Path) -> torch.Tensor:
    """A file holding one tensor (feat1.pt, feat2.pt), loaded with weights_only=True."""
    from pickle import UnpicklingError

    from speechmesh.runtime.errors import FailedPrecondition

    try:
        value = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as error:
        raise FailedPrecondition(f"{path} is not a readable tensor file: {error}") from error
    if not isinstance(value, torch.Tensor):
        raise FailedPrecondition(f"{path} holds a {type(value).__name__}, not a tensor")
    return value
