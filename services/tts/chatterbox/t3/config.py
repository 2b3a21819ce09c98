"""T3's sizes per variant, with the backbones' official configurations
(llama_configs.py of the reference: Llama_520M for standard and multilingual, GPT-2
medium for Turbo)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

START_SPEECH = 6561
STOP_SPEECH = 6562
SPEECH_VOCAB = 6561
"""Speech tokens S3Gen knows: 0..6560; START/STOP and the rest are dropped before it."""

LLAMA_520M: dict[str, Any] = dict(
    vocab_size=8,  # unused: T3 feeds embeddings of its own
    max_position_embeddings=131072,
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=30,
    num_attention_heads=16,
    head_dim=64,
    tie_word_embeddings=False,
    hidden_act="silu",
    attention_bias=False,
    attention_dropout=0.0,
    initializer_range=0.02,
    mlp_bias=False,
    num_key_value_heads=16,
    pretraining_tp=1,
    rms_norm_eps=1e-05,
    rope_scaling=dict(
        factor=8.0,
        high_freq_factor=4.0,
        low_freq_factor=1.0,
        original_max_position_embeddings=8192,
        rope_type="llama3",
    ),
    rope_theta=500000.0,
    use_cache=True,
)

GPT2_MEDIUM: dict[str, Any] = dict(
    activation_function="gelu_new",
    attn_pdrop=0.1,
    embd_pdrop=0.1,
    initializer_range=0.02,
    layer_norm_epsilon=1e-05,
    n_ctx=8196,
    n_embd=1024,
    n_head=16,
    n_layer=24,
    n_positions=8196,
    resid_pdrop=0.1,
    vocab_size=50276,
)


@dataclass(frozen=True)
class T3Config:
    """One variant's T3. `backbone` is "llama" or "gpt2"; `backbone_config` the keyword
    arguments of transformers' LlamaConfig or GPT2Config."""

    text_vocab: int
    backbone: str
    backbone_config: dict[str, Any] = field(repr=False)
    speech_vocab: int = 8194
    start_text: int = 255
    stop_text: int = 0
    max_text_tokens: int = 2048
    max_speech_tokens: int = 4096
    learned_positions: bool = True
    prompt_tokens: int = 150
    """Prompt speech tokens taken from the reference clip."""
    prompt_seconds: float = 6.0
    """How much of the 16 kHz reference those tokens come from."""
    perceiver: bool = True
    emotion: bool = True
    speaker_size: int = 256
    alignment_guard: bool = False
    """Multilingual: watch the text-speech alignment in three attention heads to stop
    hallucinated tails and repetitions (the reference's AlignmentStreamAnalyzer)."""
    max_new_tokens: int = 1000

    @property
    def hidden(self) -> int:
        key = "n_embd" if self.backbone == "gpt2" else "hidden_size"
        return int(self.backbone_config[key])

    @property
    def layers(self) -> int:
        key = "n_layer" if self.backbone == "gpt2" else "num_hidden_layers"
        return int(self.backbone_config[key])

    def with_backbone(self, **overrides: Any) -> T3Config:
        """This config with backbone sizes replaced (tiny test models)."""
        return replace(self, backbone_config={**self.backbone_config, **overrides})


STANDARD = T3Config(text_vocab=704, backbone="llama", backbone_config=LLAMA_520M)
MULTILINGUAL = T3Config(
    text_vocab=2454, backbone="llama", backbone_config=LLAMA_520M, alignment_guard=True
)
TURBO = T3Config(
    text_vocab=50276,
    backbone="gpt2",
    backbone_config=GPT2_MEDIUM,
    speech_vocab=6563,
    learned_positions=False,
    prompt_tokens=375,
    prompt_seconds=15.0,
    perceiver=False,
    emotion=False,
    max_new_tokens=1001,  # the first token, then up to 1000 more
)
