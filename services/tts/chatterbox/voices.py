"""A voice as Chatterbox conditions on it, made per request and never stored on a model.

From a reference recording, as the reference's prepare_conditionals: the clip at
24 kHz (Turbo: at least 5 s, normalised to -27 LUFS first), its first 10 s embedded by
S3Gen (prompt tokens, prompt mel, CAM++ x-vector), the 16 kHz clip's first
`prompt_seconds` turned into T3's prompt speech tokens (at most `prompt_tokens`), and
the whole 16 kHz clip's voice-encoder embedding. From `conds.pt`: the built-in voice
the official repositories ship (tensors only, read with weights_only).

Voices made from the same audio are kept in a small cache keyed by its digest, so the
pieces of one request (and repeated requests with the same clip) encode it once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from speechmesh.nn.chatterbox.s3gen import Reference, S3Gen
from speechmesh.runtime.audio import Samples, resample_as_librosa
from speechmesh.services.tts.chatterbox.loudness import normalize_loudness
from speechmesh.services.tts.chatterbox.t3.config import T3Config
from speechmesh.services.tts.chatterbox.voice_encoder import VoiceEncoder

RATE = 24000
TOKENIZER_RATE = 16000
S3GEN_SECONDS = 10
TURBO_MIN_SECONDS = 5.0
TURBO_LUFS = -27.0
CACHE_SIZE = 16


@dataclass(frozen=True)
class Voice:
    speaker: torch.Tensor
    """[256] voice-encoder embedding."""
    prompt_tokens: torch.Tensor
    """[n] T3 prompt speech tokens."""
    reference: Reference
    """S3Gen's conditioning."""


def from_conds(conds: dict[str, Any]) -> Voice:
    """The built-in voice of an official `conds.pt` ({"t3": T3Cond fields, "gen": S3Gen's
    ref_dict})."""
    t3 = conds["t3"]
    return Voice(
        speaker=torch.as_tensor(t3["speaker_emb"]).float().reshape(-1),
        prompt_tokens=torch.as_tensor(t3["cond_prompt_speech_tokens"]).long().reshape(-1),
        reference=Reference.from_ref_dict(conds["gen"]),
    )


def digest(samples: Samples, rate_hz: int) -> str:
    return hashlib.sha256(f"{rate_hz}:".encode() + samples.tobytes()).hexdigest()


def at_24k(samples: Samples, rate_hz: int, turbo: bool) -> Samples:
    """The clip at 24 kHz as the reference prepares it: librosa.load(sr=24000) (soxr HQ and
    librosa's length), Turbo then loudness-normalised; encode's 16 kHz copy is
    librosa.resample's too."""
    wav = resample_as_librosa(np.ascontiguousarray(samples, np.float32), rate_hz, RATE)
    if turbo:
        wav = normalize_loudness(wav, RATE, TURBO_LUFS)
    return wav


def encode(wav_24k: Samples, config: T3Config, encoder: VoiceEncoder, s3gen: S3Gen) -> Voice:
    """A 24 kHz clip (from `at_24k`) to its voice."""
    wav_16k = resample_as_librosa(wav_24k, RATE, TOKENIZER_RATE)
    reference = s3gen.embed_ref(wav_24k[: S3GEN_SECONDS * RATE])
    head = torch.from_numpy(wav_16k[: int(config.prompt_seconds * TOKENIZER_RATE)])
    tokens, lengths = s3gen.tokenizer.tokenize([head], max_len=config.prompt_tokens)
    speaker = torch.from_numpy(encoder.embed(wav_16k))
    return Voice(speaker, tokens[0, : int(lengths[0])].cpu(), reference)


class VoiceCache:
    """The last CACHE_SIZE voices made from reference audio, by digest."""

    def __init__(self) -> None:
        self._voices: OrderedDict[str, Voice] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Voice | None:
        with self._lock:
            voice = self._voices.get(key)
            if voice is not None:
                self._voices.move_to_end(key)
            return voice

    def put(self, key: str, voice: Voice) -> None:
        with self._lock:
            self._voices[key] = voice
            while len(self._voices) > CACHE_SIZE:
                self._voices.popitem(last=False)
