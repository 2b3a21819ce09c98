"""Loads a MeloTTS model as myshell-ai publishes it (MeloTTS-English, ...): `config.json`
and `checkpoint.pth`, `{"model": state_dict, ...}` with legacy weight norm, read through
torch.load(weights_only=True) only; every key must match, the unused posterior encoder
`enc_q` included (the reference loads with strict=True)."""

from __future__ import annotations

from pathlib import Path

from speechmesh.nn.vits.config import ConfigJson
from speechmesh.runtime import weights
from speechmesh.services.tts.melotts.config import MeloConfig
from speechmesh.services.tts.melotts.modules import SynthesizerTrn

FILES = ("config.json", "checkpoint.pth")


def read_config(folder: Path) -> MeloConfig:
    read = ConfigJson.read(folder)
    return MeloConfig.from_json(read.document, read.origin)


def load_model(folder: Path, device: str = "cpu") -> SynthesizerTrn:
    config = read_config(folder)
    (checkpoint,) = weights.require_files(folder, ["checkpoint.pth"])
    state = weights.unwrap(weights.load_state_dict(checkpoint), "model")
    model = SynthesizerTrn(config)
    weights.load_strict(model, weights.fold_weight_norm(state))
    return model.to(device).eval()
