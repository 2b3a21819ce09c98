"""The HarmonySpeech V1 engines of the TTS service: the synthesizer and the vocoder.

`harmonyspeech-synthesizer` speaks in the voice of a speaker embedding made by the
conversion service's GE2E encoders (`harmonyspeech-v1-encoder` or `ge2e-resemblyzer`):
SynthesizeSpectrogram stops at the mel spectrogram; Synthesize and the streaming RPCs
run the whole chain, ForwardTacotron then the MB-MelGAN of the same snapshot, finished
as the reference engine finishes it: the audio and 0.15 s of silence after it, peak
normalised to 0.97 (in float64). Synthesize and SynthesizeSpectrogram read the whole
text as one sequence, as the reference does; the streaming RPCs go sentence by
sentence, each sentence a sequence finished on its own.

`harmonyspeech-vocoder` serves the MB-MelGAN alone: Vocode peak-normalises the whole
spectrogram's audio to 0.97, as the reference does; StreamingVocode cannot know the
peak before the end, so it sends the generator's samples as they come.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from speechmesh.models.v1 import models_pb2
from speechmesh.runtime.audio import Samples
from speechmesh.runtime.engine import VoiceInfo
from speechmesh.runtime.errors import FailedPrecondition, InvalidArgument
from speechmesh.runtime.torch_threads import request_threads, use_threads
from speechmesh.services.tts.engine import (
    Spectrogram,
    SpectrogramSynthesis,
    SynthesisParams,
    Synthesizer,
    Vocoder,
)
from speechmesh.services.tts.harmonyspeech import text
from speechmesh.services.tts.harmonyspeech.checkpoint import (
    SAMPLE_RATE,
    load_synthesizer,
    load_vocoder,
)
from speechmesh.services.tts.harmonyspeech.forward_tacotron import Prosody

DEFAULT_SOURCE = "harmony-ai/harmony-speech-v1"
MEL_KIND = "harmonyspeech-v1-mel"
"""The synthesizer's scale: symmetric log-mel within ±4 (the vocoder divides by 4)."""
VOICE = "embedding"
LANGUAGES = ("en",)
PEAK = 0.97
SENTENCE_SILENCE_S = 0.15
SYNTHESIZER_OPTIONS = ("paired_vocoder",)


@dataclass(frozen=True)
class HarmonySettings:
    speaker: np.ndarray
    """The speaker embedding, float32 [speaker_embed_dims]."""
    speed: float
    pitch: float
    energy: float


def peak_normalized(audio: np.ndarray, silence: int = 0) -> np.ndarray:
    """`audio` then `silence` zeros, scaled in float64 so the peak is PEAK (silent audio
    stays silent), as float32."""
    wav = np.concatenate([audio.astype(np.float64), np.zeros(silence)])
    peak = np.abs(wav).max() if len(wav) else 0.0
    if peak > 0:
        wav = wav / peak * PEAK
    return wav.astype(np.float32)


class HarmonySynthesizer(Synthesizer, SpectrogramSynthesis):
    family = "harmonyspeech-synthesizer"
    options_field = "harmonyspeech"
    whole_text_unary = True
    tasks = (models_pb2.TASK_SPEECH_SYNTHESIS, models_pb2.TASK_SPECTROGRAM_SYNTHESIS)
    controls = frozenset({"pitch", "energy", "speaker_embedding"})
    accepted_embedding_families = ("harmonyspeech-v1", "ge2e-resemblyzer")
    default_source = DEFAULT_SOURCE
    hub_patterns = ("synthesizer/*", "vocoder/*")

    def load(self) -> None:
        unknown = sorted(set(self.config.options) - set(SYNTHESIZER_OPTIONS))
        if unknown:
            raise FailedPrecondition(
                f"model {self.config.id!r}: unknown options {unknown}; "
                f"{self.family} takes {list(SYNTHESIZER_OPTIONS)}"
            )
        self.paired_vocoder = str(self.config.options.get("paired_vocoder", ""))
        request_threads(self.config.threads)
        root = self.hub_files(self.config.source or self.default_source).resolve()
        self.model = load_synthesizer(root, self.config.device)
        self.vocoder = load_vocoder(root, self.config.device)
        if self.vocoder.n_mels != self.model.config.n_mels:
            raise FailedPrecondition(
                f"model {self.config.id!r}: the synthesizer makes {self.model.config.n_mels} "
                f"mel bands but the vocoder takes {self.vocoder.n_mels}"
            )
        self.sample_rate_hz = SAMPLE_RATE

    def voices(self) -> tuple[VoiceInfo, ...]:
        return (
            VoiceInfo(
                VOICE, "Speaker embedding", LANGUAGES, "the voice of the request's embedding"
            ),
        )

    @property
    def default_voice(self) -> str:
        return VOICE

    def settings(self, params: SynthesisParams) -> HarmonySettings:
        self.find_voice(params.voice)
        embedding = params.speaker_embedding
        families = " or ".join(self.accepted_embedding_families)
        if embedding is None:
            raise InvalidArgument(
                "speaker_embedding",
                f"{self.family} speaks in the voice of a speaker embedding ({families}); "
                "embed a reference recording with the conversion service first",
            )
        size = self.model.config.speaker_embed_dims
        if embedding.values.shape != (size,):
            raise InvalidArgument(
                "speaker_embedding.values",
                f"model {self.config.id!r} takes {size} values, got {embedding.values.size}",
            )
        return HarmonySettings(
            speaker=embedding.values.astype(np.float32),
            speed=params.speed,
            pitch=params.pitch or 1.0,
            energy=params.energy or 1.0,
        )

    def prosody(self, text_piece: str, settings: HarmonySettings) -> Prosody | None:
        """The predicted durations and contours of a piece; None when nothing in it is
        in the symbol set."""
        inputs = self._inputs(text_piece, settings)
        if inputs is None:
            return None
        with torch.inference_mode():
            return self.model.prosody(*inputs, settings.speed, settings.pitch, settings.energy)

    def _inputs(
        self, text_piece: str, settings: HarmonySettings
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        ids = text.token_ids(text_piece)
        if not text.speakable(ids):
            return None
        use_threads()
        device = self.config.device
        symbols = torch.tensor([ids], dtype=torch.long, device=device)
        return symbols, torch.from_numpy(settings.speaker)[None].to(device)

    def synthesize_spectrogram(self, text_piece: str, settings: HarmonySettings) -> Spectrogram:
        """The postnet's mel [n_mels, frames] of a piece (no frame when nothing is speakable)."""
        mel = np.zeros((self.model.config.n_mels, 0), np.float32)
        inputs = self._inputs(text_piece, settings)
        if inputs is not None:
            with torch.inference_mode():
                prosody = self.model.prosody(
                    *inputs, settings.speed, settings.pitch, settings.energy
                )
                mel = self.model.generate(*inputs, prosody).float().cpu().numpy()
        return Spectrogram(mel, MEL_KIND, SAMPLE_RATE, self.vocoder.samples_per_frame)

    def synthesize(self, text_piece: str, settings: HarmonySettings) -> Samples:
        mel = self.synthesize_spectrogram(text_piece, settings).mel
        if mel.shape[1] == 0:
            return np.zeros(0, np.float32)
        return peak_normalized(self.vocoder(mel), round(SENTENCE_SILENCE_S * SAMPLE_RATE))

    def warmup(self) -> None:
        size = self.model.config.speaker_embed_dims
        speaker = np.full(size, size**-0.5, np.float32)
        self.synthesize("Warming up.", HarmonySettings(speaker, 1.0, 1.0, 1.0))


class HarmonyVocoder(Vocoder):
    family = "harmonyspeech-vocoder"
    default_source = DEFAULT_SOURCE
    hub_patterns = ("vocoder/*",)
    context_frames = 0  # set from the generator's configuration at load

    def load(self) -> None:
        request_threads(self.config.threads)
        root = self.hub_files(self.config.source or self.default_source).resolve()
        self.vocoder = load_vocoder(root, self.config.device)
        self.n_mels = self.vocoder.n_mels
        self.mel_kind = MEL_KIND
        self.sample_rate_hz = SAMPLE_RATE
        self.samples_per_frame = self.vocoder.samples_per_frame
        self.context_frames = self.vocoder.context_frames

    def vocode(self, mel: np.ndarray) -> Samples:
        use_threads()
        return self.vocoder(mel)

    def finish(self, samples: Samples) -> Samples:
        return peak_normalized(samples)
