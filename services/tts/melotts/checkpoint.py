"""Loads a MeloTTS model as myshell-ai publishes it (MeloTTS-English, ...): `config.json`
and `checkpoint.pth`, `{"model": state_dict, ...}` with legacy weight norm, read through
torch.load(weights_only=True) only; every key must match, the unused posterior encoder
`enc_q` included (the reference loads with strict=True)."""

from __future__ import annotations

import json
from pathlib import Path

from speechmesh.runtime import weights
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.tts.melotts.config import MeloConfig
from speechmesh.services.tts.melotts.modules import SynthesizerTrn

FILES = ("config.json", "checkpoint.pth")


def read_config(folder: Path) -> MeloConfig:
    (path,) = weights.require_files(folder, ["config.json"])
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise FailedPrecondition(f"{path} is not readable JSON: {error}") from error
    return MeloConfig.from_json(document, str(path))


def load_model(folder: Path, device: str = "cpu") -> SynthesizerTrn:
    config = read_config(folder)
    (checkpoint,) = weights.require_files(folder, ["checkpoint.pth"])
    state = weights.unwrap(weights.load_state_dict(checkpoint), "model")
    model = SynthesizerTrn(config)
    weights.load_strict(model, weights.fold_weight_norm(state))
    return model.to(device).eval()
