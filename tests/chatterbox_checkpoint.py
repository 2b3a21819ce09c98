"""Tiny Chatterbox checkpoints in the official layouts, for the engine and server tests.

T3 and the voice encoder are the parity run's random weights (rebuilt from their seeds
and checked), the tokenizers its small trained files; S3Gen is the S3Gen parity's tiny
network (its loader reads the sizes from the shapes; T3's go to the engine as
options.sizes); `conds.pt` holds a
built-in voice made from a synthetic clip. Everything is written as the ResembleAI
repositories name it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from parity.chatterbox_s3gen_weights import save_s3gen
from parity.chatterbox_weights import CHECKPOINTS, TINY_GPT2, TINY_LLAMA, TINY_MTL_LLAMA, rebuild
from parity.support import ReferenceRun

T3_SIZES = {
    "chatterbox": TINY_LLAMA,
    "chatterbox-multilingual": TINY_MTL_LLAMA,
    "chatterbox-turbo": {**TINY_GPT2, "text_vocab": 512},
}
VARIANT = {
    "chatterbox": "standard",
    "chatterbox-multilingual": "multilingual",
    "chatterbox-turbo": "turbo",
}


def clip(seed: int, seconds: float, rate: int = 24000) -> np.ndarray:
    """A voiced-sounding clip: harmonics of a gliding pitch under a slow envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    f0 = 100 + 60 * rng.random() + 25 * np.sin(2 * np.pi * 0.6 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 9))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 1.1 * t))
    return (0.25 * voiced * envelope + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def write(family: str, folder: Path, seed: int = 0) -> dict:
    """The family's tiny checkpoint folder; returns the model options that serve it."""
    from speechmesh.nn.chatterbox.s3gen import load_s3gen
    from speechmesh.runtime import weights
    from speechmesh.services.tts.chatterbox import engine, voices
    from speechmesh.services.tts.chatterbox.voice_encoder import VoiceEncoder

    folder.mkdir(parents=True, exist_ok=True)
    run = ReferenceRun("chatterbox")
    recorded = run.document("weights")
    variant = VARIANT[family]
    rebuild(recorded[variant], folder / CHECKPOINTS[variant])
    ve_state = rebuild(recorded["ve"], folder / "ve.safetensors")
    if variant == "multilingual":
        torch.save(ve_state, folder / "ve.pt")
        (folder / "ve.safetensors").unlink()
    saved, _ = save_s3gen(folder, seed + 5, meanflow=variant == "turbo")
    s3gen_file = saved.name
    if variant == "multilingual":  # the multilingual model's S3Gen is a torch file
        s3gen_file = "s3gen.pt"
        torch.save(weights.load_state_dict(saved), folder / s3gen_file)
        saved.unlink()
    if variant == "standard":
        shutil.copy(run.file("tokenizer.json"), folder / "tokenizer.json")
    elif variant == "multilingual":
        name = "grapheme_mtl_merged_expanded_v1.json"
        shutil.copy(run.file(name), folder / name)
    else:
        for path in run.file("turbo_tokenizer").iterdir():
            shutil.copy(path, folder / path.name)
    options = {"sizes": T3_SIZES[family]}
    # The built-in voice, encoded from a clip by the same tiny models.
    cls = {
        "chatterbox": engine.Chatterbox,
        "chatterbox-multilingual": engine.ChatterboxMultilingual,
        "chatterbox-turbo": engine.ChatterboxTurbo,
    }[family]
    from speechmesh.runtime.config import ModelConfig

    sizes = cls(ModelConfig(id="x", family=family, options=options)).t3_config()
    encoder = VoiceEncoder()
    weights.load_strict(encoder, ve_state)
    model = load_s3gen(folder / s3gen_file)
    voice = voices.encode(clip(seed + 9, 6.0), sizes, encoder.eval(), model)
    ref = voice.reference
    conds = {
        "t3": {
            "speaker_emb": voice.speaker[None],
            "cond_prompt_speech_tokens": voice.prompt_tokens[None],
            "emotion_adv": 0.5 * torch.ones(1, 1, 1),
        },
        "gen": {
            "prompt_token": ref.prompt_tokens[None],
            "prompt_token_len": torch.tensor([len(ref.prompt_tokens)]),
            "prompt_feat": ref.prompt_mel[None],
            "prompt_feat_len": None,
            "embedding": ref.embedding[None],
        },
    }
    torch.save(conds, folder / "conds.pt")
    return options


def voice_wav(seed: int, seconds: float, rate: int) -> bytes:
    """`clip(seed, seconds, rate)` as a 16-bit WAV file (the parity runs' reference clips)."""
    import io

    import soundfile

    out = io.BytesIO()
    soundfile.write(out, clip(seed, seconds, rate), rate, subtype="PCM_16", format="WAV")
    return out.getvalue()
