"""The T3 network: transformers' LlamaModel (or GPT2Model) as the backbone, fed with
T3's own embeddings, and a speech-token head.

Module names are the official checkpoint's (`t3_cfg.safetensors`,
`t3_mtl23ls_v2.safetensors`, `t3_turbo_v1.safetensors`): `tfmr.*`, `cond_enc.*`,
`text_emb`, `speech_emb`, `text_pos_emb.emb`, `speech_pos_emb.emb`, `text_head`,
`speech_head`. `prefix` builds one row of the generation's first pass exactly as the
reference's `prepare_input_embeds` (plus, for Llama, its second start-of-speech
embedding); the sequence positions and padding of a batch are `generation`'s.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from speechmesh.runtime import weights
from speechmesh.services.tts.chatterbox.t3.conditioning import T3CondEnc, T3Conditionals
from speechmesh.services.tts.chatterbox.t3.config import START_SPEECH, T3Config


class LearnedPositions(nn.Module):
    """Absolute position embeddings (`*_pos_emb.emb`)."""

    def __init__(self, positions: int, dim: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(positions, dim)

    def forward(self, length: int, start: int = 0) -> torch.Tensor:
        return self.emb(torch.arange(start, start + length, device=self.emb.weight.device))


def _backbone(config: T3Config) -> nn.Module:
    if config.backbone == "gpt2":
        from transformers import GPT2Config, GPT2Model

        gpt = GPT2Model(GPT2Config(**config.backbone_config))
        # The backbone reads T3's embeddings; its own token table is never used.
        del gpt.wte
        return gpt
    from transformers import LlamaConfig, LlamaModel

    # The alignment guard reads attention weights, which only eager attention returns
    # (the reference switches to it for the multilingual model too).
    attention = "eager" if config.alignment_guard else "sdpa"
    return LlamaModel(LlamaConfig(**config.backbone_config, attn_implementation=attention))


class T3(nn.Module):
    def __init__(self, config: T3Config) -> None:
        super().__init__()
        self.config = config
        dim = config.hidden
        self.tfmr = _backbone(config)
        self.cond_enc = T3CondEnc(config)
        self.text_emb = nn.Embedding(config.text_vocab, dim)
        self.speech_emb = nn.Embedding(config.speech_vocab, dim)
        self.text_pos_emb: LearnedPositions | None = None
        self.speech_pos_emb: LearnedPositions | None = None
        if config.learned_positions:
            self.text_pos_emb = LearnedPositions(config.max_text_tokens + 2, dim)
            self.speech_pos_emb = LearnedPositions(config.max_speech_tokens + 4, dim)
        self.text_head = nn.Linear(dim, config.text_vocab, bias=False)
        self.speech_head = nn.Linear(dim, config.speech_vocab, bias=config.backbone == "gpt2")

    @property
    def device(self) -> torch.device:
        return self.speech_head.weight.device

    def conditioning(self, cond: T3Conditionals) -> torch.Tensor:
        """[positions, D] conditioning prefix of one voice."""
        device = self.device
        tokens = cond.prompt_tokens.to(device=device, dtype=torch.long)[None]
        prompt = self.speech_emb(tokens)
        if self.speech_pos_emb is not None:
            prompt = prompt + self.speech_pos_emb(tokens.shape[1])
        speaker = cond.speaker.to(device=device, dtype=prompt.dtype).view(1, -1)
        exaggeration = torch.full((1,), cond.exaggeration, device=device, dtype=prompt.dtype)
        return self.cond_enc(speaker, prompt, exaggeration)[0]

    def speech_embedding(self, tokens: torch.Tensor, position: int) -> torch.Tensor:
        """[n, D] embeddings of speech tokens at speech position `position`."""
        embedded = self.speech_emb(tokens)
        if self.speech_pos_emb is not None:
            embedded = embedded + self.speech_pos_emb(1, position)
        return embedded

    def prefix(self, cond_prefix: torch.Tensor, text: list[int], *, guided: bool) -> torch.Tensor:
        """[length, D] first-pass input of one row: conditioning, text (its embeddings
        zeroed in the unconditional row of guidance, positions kept) and start of speech
        (twice with Llama: the reference appends a second one)."""
        device = self.device
        ids = torch.tensor(text, dtype=torch.long, device=device)
        text_part = self.text_emb(ids)
        if not guided:
            text_part = torch.zeros_like(text_part)
        if self.text_pos_emb is not None:
            text_part = text_part + self.text_pos_emb(len(text))
        start = self.speech_embedding(torch.tensor([START_SPEECH], device=device), 0)
        starts = [start] * (2 if self.config.backbone == "llama" else 1)
        return torch.cat([cond_prefix, text_part, *starts])

    def load(self, path: Path) -> None:
        """Loads an official T3 checkpoint (safetensors), exactly."""
        state = weights.load_state_dict(path)
        if "model" in state and not hasattr(state["model"], "shape"):
            state = state["model"][0]
        # GPT-2's token table (tfmr.wte) is in the checkpoint but never used.
        weights.load_strict(self, state, ignore=("tfmr.wte.weight",))
