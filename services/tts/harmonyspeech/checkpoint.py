"""Loads the synthesizer and vocoder of a `harmony-ai/harmony-speech-v1` snapshot.

The snapshot holds `encoder/`, `synthesizer/` and `vocoder/`, each a `config.json`
(the constructor arguments under "model", or flat) and a checkpoint:

- `synthesizer/synthesizer.pt`: `{model_state, optimizer_state}`; the weights in
  `model_state`, BatchNorm statistics and a `step` buffer included;
- `vocoder/vocoder.pt`: `{model: {generator, discriminator}, steps, epochs}`; the
  weights in `model.generator`, weight norm stored as `weight_g` / `weight_v`.

Both load with torch.load(weights_only=True) and strict key matching; missing files,
keys or sizes are FailedPrecondition naming them. (The encoder is the conversion
service's `harmonyspeech-v1-encoder`.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechmesh.runtime import weights
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.tts.harmonyspeech import text
from speechmesh.services.tts.harmonyspeech.forward_tacotron import (
    ForwardTacotron,
    ForwardTacotronConfig,
)
from speechmesh.services.tts.harmonyspeech.melgan import (
    MelGanConfig,
    MelGanGenerator,
    PqmfSynthesis,
    context_frames,
    min_frames,
)

SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = 200
# The synthesizer's mels are symmetric log-mels within ±4; the vocoder was trained on ±1.
MEL_SCALE = 4.0
SYNTHESIZER_FILES = ["config.json", "synthesizer.pt"]
VOCODER_FILES = ["config.json", "vocoder.pt"]


def _part(root: Path, name: str) -> Path:
    """`root/name` when the snapshot root is given, else `root` itself (the subfolder)."""
    return root / name if (root / name).is_dir() else root


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise FailedPrecondition(f"{path} is not readable JSON: {error}") from error


def load_synthesizer(root: Path, device: str = "cpu") -> ForwardTacotron:
    """ForwardTacotron from `synthesizer/config.json` and `synthesizer/synthesizer.pt`."""
    config_path, checkpoint = weights.require_files(_part(root, "synthesizer"), SYNTHESIZER_FILES)
    config = ForwardTacotronConfig.from_json(_read_json(config_path), str(config_path))
    if config.num_chars != len(text.SYMBOLS):
        raise FailedPrecondition(
            f"{config_path}: num_chars is {config.num_chars}, but the English symbol set has "
            f"{len(text.SYMBOLS)} symbols"
        )
    state = weights.unwrap(weights.load_state_dict(checkpoint), "model_state")
    model = ForwardTacotron(config)
    try:
        weights.load_strict(model, state)
    except FailedPrecondition as error:
        raise FailedPrecondition(f"{checkpoint}: {error.message}") from None
    return model.to(device).eval()


class MelGanVocoder:
    """The generator and its PQMF bank: a synthesizer mel [n_mels, frames] → audio."""

    def __init__(self, config: MelGanConfig, generator: MelGanGenerator, device: str) -> None:
        self.config = config
        self.generator = generator.to(device).eval()
        self.pqmf = PqmfSynthesis(config.bands).to(device) if config.bands > 1 else None
        self.device = device
        self.n_mels = config.in_channels
        self.samples_per_frame = config.samples_per_frame
        self.context_frames = context_frames(config)
        self.min_frames = min_frames(config)

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        """Exactly frames × samples_per_frame float32 samples, before any normalisation.

        A mel shorter than the generator takes is extended by repeating its last frame,
        and the extra audio cut off."""
        frames = mel.shape[1]
        if 0 < frames < self.min_frames:
            mel = np.pad(mel, ((0, 0), (0, self.min_frames - frames)), mode="edge")
        x = torch.from_numpy(np.ascontiguousarray(mel, np.float32) / MEL_SCALE)
        with torch.inference_mode():
            out = self.generator(x[None].to(self.device))
            if self.pqmf is not None:
                out = self.pqmf(out)
        return out[0, 0, : frames * self.samples_per_frame].float().cpu().numpy()


def load_vocoder(root: Path, device: str = "cpu") -> MelGanVocoder:
    """The MB-MelGAN from `vocoder/config.json` and `model.generator` of `vocoder/vocoder.pt`."""
    config_path, checkpoint = weights.require_files(_part(root, "vocoder"), VOCODER_FILES)
    config = MelGanConfig.from_json(_read_json(config_path), str(config_path))
    if config.samples_per_frame != SAMPLES_PER_FRAME:
        raise FailedPrecondition(
            f"{config_path}: Π upsample_scales × out_channels is {config.samples_per_frame}; "
            f"the synthesizer's frames are {SAMPLES_PER_FRAME} samples at {SAMPLE_RATE} Hz"
        )
    state = weights.unwrap(weights.load_state_dict(checkpoint), "model", "generator")
    generator = MelGanGenerator(config)
    try:
        weights.load_strict(generator, weights.fold_weight_norm(state))
    except FailedPrecondition as error:
        raise FailedPrecondition(f"{checkpoint}: {error.message}") from None
    return MelGanVocoder(config, generator, device)
