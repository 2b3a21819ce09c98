"""Tiny random Chatterbox T3 and voice-encoder weights, rebuilt from a seed.

The generator (scripts/parity/chatterbox_t3.py) records each checkpoint's keys and
shapes, as the reference's modules have them, with a seed and a digest; the tests draw
the same values (parity.openvoice_weights.random_state), check the digest and save
them under the official file names. The tiny backbones keep what each variant's
reference path needs: the multilingual alignment guard reads heads (12, 15), (13, 11)
and (9, 2), so that model has 14 layers of 16 heads.
"""

from __future__ import annotations

from pathlib import Path

import torch

from parity.openvoice_weights import digest, random_state

TINY_LLAMA = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=4,
    head_dim=16,
)
TINY_MTL_LLAMA = dict(
    hidden_size=64,
    intermediate_size=96,
    num_hidden_layers=14,
    num_attention_heads=16,
    num_key_value_heads=16,
    head_dim=4,
)
TINY_GPT2 = dict(
    n_embd=64, hidden_size=64, n_head=4, n_layer=2, n_ctx=1024, n_positions=1024, vocab_size=512
)
TURBO_TEXT_VOCAB = 512

CHECKPOINTS = {
    "standard": "t3_cfg.safetensors",
    "multilingual": "t3_mtl23ls_v2.safetensors",
    "turbo": "t3_turbo_v1.safetensors",
}


def rebuild(recorded: dict, path: Path) -> dict[str, torch.Tensor]:
    """The recorded checkpoint's values, digest-checked, saved at `path` (safetensors)."""
    from safetensors.torch import save_file

    state = random_state([(k, s) for k, s in recorded["keys"]], recorded["seed"])
    assert digest(state) == recorded["sha256"], f"rebuilt {path.name} is not the reference's"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path))
    return state


def tiny_config(variant: str):  # type: ignore[no-untyped-def]
    """Our T3Config of the variant's tiny parity model."""
    from speechmesh.services.tts.chatterbox.t3 import config

    if variant == "standard":
        return config.STANDARD.with_backbone(**TINY_LLAMA)
    if variant == "multilingual":
        return config.MULTILINGUAL.with_backbone(**TINY_MTL_LLAMA)
    from dataclasses import replace

    return replace(config.TURBO.with_backbone(**TINY_GPT2), text_vocab=TURBO_TEXT_VOCAB)
