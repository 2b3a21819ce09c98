"""Tiny Chatterbox checkpoints in the official layouts, for the engine and server tests.

T3 and the voice encoder are the parity run's random weights (rebuilt from their seeds
and checked), the tokenizers its small trained files; S3Gen is a tiny random network
(sizes in S3GEN_SIZES, passed to the engine as options.sizes); `conds.pt` holds a
built-in voice made from a synthetic clip. Everything is written as the ResembleAI
repositories name it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from parity.chatterbox_weights import CHECKPOINTS, TINY_GPT2, TINY_LLAMA, TINY_MTL_LLAMA, rebuild
from parity.support import ReferenceRun
from safetensors.torch import save_file

S3GEN_SIZES = {
    "tokenizer": {"n_state": 128, "n_head": 2, "n_layer": 2},
    "campplus": {"growth_rate": 8, "bn_size": 2, "init_channels": 16},
    "encoder": {"input_size": 64, "size": 64, "heads": 2, "linear_units": 128, "blocks": 2},
    "estimator": {
        "channels": [32], "attention_head_dim": 16, "n_blocks": 1, "num_mid_blocks": 2,
        "num_heads": 2,
    },
    "hift": {"base_channels": 32, "f0_channels": 32},
}  # fmt: skip
GENTLE = {"mel2wav.f0_predictor.classifier.weight": 0.02, "mel2wav.conv_post.weight": 0.15}
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


def _s3gen_state(meanflow: bool, seed: int) -> dict[str, torch.Tensor]:
    from speechmesh.services.tts.chatterbox.engine import _dataclass_from
    from speechmesh.services.tts.chatterbox.s3gen import S3Gen, S3GenConfig

    config = _dataclass_from(S3GenConfig, {**S3GEN_SIZES, "meanflow": meanflow})
    torch.manual_seed(seed)
    model = S3Gen(config)
    state = {}
    g = torch.Generator().manual_seed(seed)
    for name, value in model.state_dict().items():
        if value.dtype.is_floating_point and value.dim() >= 2 and "tokenizer._mel" not in name:
            # The vocoder's last layers small, so HiFT's exponential magnitudes stay in
            # range and a 1e-7 difference in the mel stays under 1e-5 in the audio.
            scale = GENTLE.get(name, 1.0)
            value = torch.randn(value.shape, generator=g) * scale / value[0].numel() ** 0.5
        state[name] = value.contiguous()
    return state


def write(family: str, folder: Path, seed: int = 0) -> dict:
    """The family's tiny checkpoint folder; returns the model options that serve it."""
    from speechmesh.runtime import weights
    from speechmesh.services.tts.chatterbox import engine, voices
    from speechmesh.services.tts.chatterbox.s3gen import load_s3gen
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
    s3gen = _s3gen_state(meanflow=variant == "turbo", seed=seed + 5)
    s3gen_file = {"standard": "s3gen.safetensors", "multilingual": "s3gen.pt",
                  "turbo": "s3gen_meanflow.safetensors"}[variant]  # fmt: skip
    if s3gen_file.endswith(".pt"):
        torch.save(s3gen, folder / s3gen_file)
    else:
        save_file(s3gen, str(folder / s3gen_file))
    if variant == "standard":
        shutil.copy(run.file("tokenizer.json"), folder / "tokenizer.json")
    elif variant == "multilingual":
        name = "grapheme_mtl_merged_expanded_v1.json"
        shutil.copy(run.file(name), folder / name)
    else:
        for path in run.file("turbo_tokenizer").iterdir():
            shutil.copy(path, folder / path.name)
    options = {"sizes": {"t3": T3_SIZES[family], "s3gen": S3GEN_SIZES}}
    # The built-in voice, encoded from a clip by the same tiny models.
    cls = {
        "chatterbox": engine.Chatterbox,
        "chatterbox-multilingual": engine.ChatterboxMultilingual,
        "chatterbox-turbo": engine.ChatterboxTurbo,
    }[family]
    from speechmesh.runtime.config import ModelConfig

    sizes = cls(ModelConfig(id="x", family=family, options=options))._configs()
    encoder = VoiceEncoder()
    weights.load_strict(encoder, ve_state)
    model = load_s3gen(folder / s3gen_file, sizes[1])
    voice = voices.encode(clip(seed + 9, 6.0), sizes[0], encoder.eval(), model)
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
