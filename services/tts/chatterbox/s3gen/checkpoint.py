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

from speechmesh.runtime.weights import fold_weight_norm, load_state_dict, load_strict, require_files
from speechmesh.services.tts.chatterbox.s3gen.config import S3GenConfig
from speechmesh.services.tts.chatterbox.s3gen.model import S3Gen

STANDARD_FILE = "s3gen.safetensors"
MULTILINGUAL_FILE = "s3gen.pt"
TURBO_FILE = "s3gen_meanflow.safetensors"
IGNORED = ("*.num_batches_tracked", "tokenizer._mel_filters", "tokenizer.window")
_G, _V = ".parametrizations.weight.original0", ".parametrizations.weight.original1"


def legacy_weight_norm(state: Mapping[str, Any]) -> dict[str, Any]:
    """Parametrization pairs renamed to the legacy `weight_g` / `weight_v` names."""
    renamed = {}
    for key, value in state.items():
        if key.endswith(_G):
            key = key[: -len(_G)] + ".weight_g"
        elif key.endswith(_V):
            key = key[: -len(_V)] + ".weight_v"
        renamed[key] = value
    return renamed


def load_s3gen(path: Path, config: S3GenConfig | None = None, device: str = "cpu") -> S3Gen:
    """An S3Gen in eval mode from an official file (its folder is checked first)."""
    path = Path(path)
    (found,) = require_files(path.parent, [path.name])
    state = fold_weight_norm(legacy_weight_norm(load_state_dict(found)))
    model = S3Gen(config)
    load_strict(model, state, ignore=IGNORED)
    return model.to(device).eval()
