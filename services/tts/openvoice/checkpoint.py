"""Loads the V1 base speakers as myshell-ai/OpenVoice publishes them:
`checkpoints/base_speakers/{EN,ZH}/{config.json, checkpoint.pth}`, one VITS per
language. `checkpoint.pth` is `{"model": state_dict, ...}` with legacy weight norm, read
through torch.load(weights_only=True) only; every key must match (the unused posterior
encoder `enc_q` included).
"""

from __future__ import annotations

from pathlib import Path

from speechmesh.nn.vits.config import ConfigJson
from speechmesh.runtime import weights
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.tts.openvoice.config import BaseSpeakerConfig
from speechmesh.services.tts.openvoice.modules import SynthesizerTrn
from speechmesh.services.tts.openvoice.text import CHINESE, ENGLISH

SPEAKERS_DIR = "checkpoints/base_speakers"
LANGUAGE_DIRS = {ENGLISH: "EN", CHINESE: "ZH"}


def speaker_root(root: Path) -> Path:
    """The folder holding EN/ and ZH/: a snapshot's checkpoints/base_speakers, or root."""
    nested = root / SPEAKERS_DIR
    return nested if nested.is_dir() else root


def read_config(folder: Path) -> BaseSpeakerConfig:
    read = ConfigJson.read(folder)
    return BaseSpeakerConfig.from_json(read.document, read.origin)


def load_speaker(folder: Path, device: str = "cpu") -> SynthesizerTrn:
    config = read_config(folder)
    (checkpoint,) = weights.require_files(folder, ["checkpoint.pth"])
    state = weights.unwrap(weights.load_state_dict(checkpoint), "model")
    model = SynthesizerTrn(config)
    weights.load_strict(model, weights.fold_weight_norm(state))
    return model.to(device).eval()


def load_speakers(root: Path, device: str = "cpu") -> dict[str, SynthesizerTrn]:
    """Language mark ("EN", "ZH") → its loaded model, for each language folder present."""
    base = speaker_root(root)
    present = {
        language: base / folder
        for language, folder in LANGUAGE_DIRS.items()
        if (base / folder).is_dir()
    }
    if not present:
        raise FailedPrecondition(
            f"{root} holds no OpenVoice V1 base speaker: expected "
            f"{SPEAKERS_DIR}/EN or {SPEAKERS_DIR}/ZH with config.json and checkpoint.pth"
        )
    return {language: load_speaker(folder, device) for language, folder in present.items()}
