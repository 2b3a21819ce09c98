"""S3Gen's official checkpoint files and their strict, safe loading.

  * ResembleAI/chatterbox: `s3gen.safetensors` (standard); the multilingual model in
    the same repository ships `s3gen.pt` (read with torch.load(weights_only=True) only).
  * ResembleAI/chatterbox-turbo: `s3gen_meanflow.safetensors` (meanflow estimator).

Every key must match the module tree (model.py) except the tokenizer's mel filters
and window (the reference computes them and its own files may lack them) and batch
norms' `num_batches_tracked`; weight norm is folded, whether stored as the
parametrization pair `X.parametrizations.weight.original{0,1}` or the legacy
`X.weight_{g,v}`. A missing file or any other mismatch is a FailedPrecondition that
names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from speechmesh.nn.chatterbox.s3gen.config import S3GenConfig
from speechmesh.nn.chatterbox.s3gen.model import S3Gen
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.runtime.weights import load_state_dict, load_strict, require_files

STANDARD_FILE = "s3gen.safetensors"
MULTILINGUAL_FILE = "s3gen.pt"
TURBO_FILE = "s3gen_meanflow.safetensors"
IGNORED = ("*.num_batches_tracked", "tokenizer._mel_filters", "tokenizer.window")
_G, _V = ".parametrizations.weight.original0", ".parametrizations.weight.original1"


def fold_weight_norm(state: Mapping[str, Any]) -> dict[str, Any]:
    """Weight-norm pairs (parametrization or legacy names) folded into `X.weight`.

    Folded with torch's own kernel (`torch._weight_norm`, what both weight-norm APIs
    run at every forward), so the weights are the reference's to the last bit;
    the shared formula in runtime.weights differs by rounding (~4e-7 of a weight),
    which HiFT's exponential magnitudes amplify past 1e-5.
    """
    pairs: dict[str, dict[str, Any]] = {}
    folded: dict[str, Any] = {}
    for key, value in state.items():
        for g_name, v_name in ((_G, _V), (".weight_g", ".weight_v")):
            if key.endswith(g_name):
                pairs.setdefault(key[: -len(g_name)], {})["g"] = value
                break
            if key.endswith(v_name):
                pairs.setdefault(key[: -len(v_name)], {})["v"] = value
                break
        else:
            folded[key] = value
    orphans = sorted(name for name, pair in pairs.items() if len(pair) != 2)
    if orphans:
        raise FailedPrecondition(
            f"weight norm pairs without their other half: {', '.join(orphans)}"
        )
    for name, pair in pairs.items():
        v, g = torch.as_tensor(pair["v"]), torch.as_tensor(pair["g"])
        folded[f"{name}.weight"] = torch._weight_norm(v, g, 0)
    return folded


def load_s3gen(path: Path, config: S3GenConfig | None = None, device: str = "cpu") -> S3Gen:
    """An S3Gen in eval mode from an official file (its folder is checked first)."""
    path = Path(path)
    (found,) = require_files(path.parent, [path.name])
    state = fold_weight_norm(load_state_dict(found))
    model = S3Gen(config)
    load_strict(model, state, ignore=IGNORED)
    return model.to(device).eval()
