"""Streaming conversion: overlapping windows, each converted alone, joined by a crossfade.

The converter needs context (a spectrogram, a flow over it), so a stream is cut into
windows of WINDOW_S that overlap by OVERLAP_S (both rounded down to whole frames of the
model's hop); each window is converted alone, and its output overlaps the
previous one's and the two are crossfaded linearly. Output lags input by about one
window and keeps the source's timeline and length exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from speechmesh.runtime.audio import AudioSpec, DecodedAudio
from speechmesh.runtime.errors import InvalidArgument
from speechmesh.runtime.pool import HostedModel
from speechmesh.runtime.streams import StreamInput
from speechmesh.services.conversion.conversion.contract import ToneConverter
from speechmesh.services.conversion.embeddings import Vector
from speechmesh.services.conversion.encoder.servicer import embed

WINDOW_S = 2.0
OVERLAP_S = 0.25
_EMPTY = np.zeros(0, np.float32)


def engine_of(model: HostedModel) -> ToneConverter:
    engine = model.engine
    assert isinstance(engine, ToneConverter)
    return engine


async def convert_samples(
    model: HostedModel,
    samples: np.ndarray,
    source: Vector,
    target: Any,
    tau: float,
    noise: Any,
) -> np.ndarray:
    """`samples` (model rate) in the target voice, exactly as long as the input.

    The model converts the samples as given, as the reference converter does: len // hop
    frames, so the last len % hop samples come back as silence. Only a source too short
    for the model at all is padded with silence first.
    """
    engine = engine_of(model)
    short = max(0, engine.min_source_samples - len(samples))
    job = engine.conversion_job(np.pad(samples, (0, short)), source, target, tau, noise)
    out: np.ndarray = await model.run(job)
    out = out[: len(samples)]
    return np.pad(out, (0, len(samples) - len(out))).astype(np.float32)


class ConversionRun(StreamInput):
    """The state of one StreamingConvert call."""

    def __init__(
        self,
        model: HostedModel,
        spec: AudioSpec,
        target: Any,
        source: Vector | None,
        tau: float,
        noise: Any,
    ) -> None:
        engine = engine_of(model)
        super().__init__(spec, engine.sample_rate)
        self.rate = engine.sample_rate
        self._model = model
        self._target, self._source = target, source
        self._tau, self._noise = tau, noise
        # Whole frames, so every window's output is converted audio up to its end (at
        # least one frame of overlap and one beyond it, whatever the rate and hop).
        hop = engine.hop_length
        self._overlap = max(hop, int(OVERLAP_S * self.rate) // hop * hop)
        self._window = max(self._overlap + hop, int(WINDOW_S * self.rate) // hop * hop)
        self._buffer = _EMPTY  # input from the current window's start
        self._held = _EMPTY  # the previous window's last OVERLAP_S, to crossfade
        self._converted_any = False

    async def feed(self, data: bytes) -> np.ndarray:
        self._buffer = np.concatenate([self._buffer, await self._decoded(data)])
        outputs = []
        while len(self._buffer) >= self._window:
            outputs.append(await self._convert(self._buffer[: self._window], final=False))
            self._buffer = self._buffer[self._window - self._overlap :]
        return np.concatenate(outputs) if outputs else _EMPTY

    async def finish(self) -> np.ndarray:
        self._buffer = np.concatenate([self._buffer, self._decoded_tail()])
        has_new_audio = len(self._buffer) > (self._overlap if self._converted_any else 0)
        return await self._convert(self._buffer, final=True) if has_new_audio else self._held

    async def _convert(self, segment: np.ndarray, *, final: bool) -> np.ndarray:
        if self._source is None:
            self._source = await self._embed_source(segment)
        out = await convert_samples(
            self._model, segment, self._source, self._target, self._tau, self._noise
        )
        self._converted_any = True
        if len(self._held):
            ramp = np.linspace(0.0, 1.0, len(self._held), dtype=np.float32)
            out[: len(ramp)] = self._held * (1 - ramp) + out[: len(ramp)] * ramp
        if final:
            self._held = _EMPTY
            return out
        self._held = out[-self._overlap :].copy()
        return out[: -self._overlap]

    async def _embed_source(self, segment: np.ndarray) -> Vector:
        engine = engine_of(self._model)
        if len(segment) < engine.min_speech_s * self.rate:
            raise InvalidArgument(
                "config.source_embedding",
                f"the stream is shorter than the {engine.min_speech_s:.2f} s needed to embed "
                "the source voice; send source_embedding",
            )
        return await embed(self._model, [DecodedAudio(segment, self.rate)], "audio")
