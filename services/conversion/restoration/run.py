"""One restoration: decoded audio → the model's rate → blocks → restored audio, in time.

Restore feeds a whole file at once and StreamingRestore chunk by chunk; both take
this path, except a Restore on a model with `segment_samples` (VoiceFixer), which
`restore_in_segments` runs the way the model's original restores a file. The model's
own latency is taken out (its first `delay` output samples are dropped and the tail is
flushed with silence), so output sample n lines up with input time n / rate and the
output has exactly the input's length.
"""

from __future__ import annotations

import numpy as np

from speechmesh.runtime.audio import AudioSpec, resample
from speechmesh.runtime.pool import HostedModel
from speechmesh.runtime.streams import StreamInput
from speechmesh.services.conversion.restoration.contract import (
    BlockJob,
    RestorationParams,
    RestorationStream,
    Restorer,
    SegmentJob,
)

# Seconds of audio per model job: bounds how long one call holds the model's thread.
MAX_JOB_SECONDS = 0.5
_EMPTY = np.zeros(0, np.float32)


class RestorationRun(StreamInput):
    """The state of one restoration over one piece or stream of audio."""

    def __init__(
        self,
        model: HostedModel,
        stream: RestorationStream,
        spec: AudioSpec,
        params: RestorationParams,
    ) -> None:
        engine = model.engine
        assert isinstance(engine, Restorer)
        super().__init__(spec, engine.sample_rate)
        self.rate = engine.sample_rate
        self._model = model
        self._stream = stream
        self._pending = _EMPTY  # model-rate input not yet a whole block
        self._to_skip = stream.delay
        self._emitted = 0
        self._job_samples = max(1, int(MAX_JOB_SECONDS * self.rate) // stream.block) * stream.block
        self._mix = None
        if params.attenuation_limit_db is not None and not engine.native_attenuation_limit:
            self._mix = 10 ** (-params.attenuation_limit_db / 20)
        self._dry = _EMPTY  # input not yet matched with output, for the attenuation limit

    def close(self) -> None:
        """Frees the model state; safe while the model thread still uses it."""
        self._stream.close()

    async def feed(self, data: bytes) -> np.ndarray:
        """Restored samples (model rate) that these bytes completed; possibly none."""
        return await self._process(await self._decoded(data))

    async def finish(self) -> np.ndarray:
        """The rest of the output: the model's tail flushed, the total cut to the input's length."""
        tail = self._decoded_tail()
        expected = self._expected_length()
        flush = self._to_skip + self._stream.delay
        padding = np.zeros(flush + (-(len(self._pending) + len(tail) + flush)) % self._stream.block)
        before = self._emitted
        out = await self._process(np.concatenate([tail, padding.astype(np.float32)]))
        room = max(0, expected - before)
        out = out[:room]
        if len(out) < room:
            out = np.concatenate([out, np.zeros(room - len(out), np.float32)])
        self._emitted = before + len(out)
        return out

    def _expected_length(self) -> int:
        rate = self.input_rate_hz
        if not rate:
            return 0
        return round(self.samples_in * self.rate / rate)

    async def _process(self, samples: np.ndarray) -> np.ndarray:
        if self._mix is not None:
            self._dry = np.concatenate([self._dry, samples])
        pending = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        whole = len(pending) // self._stream.block * self._stream.block
        self._pending = pending[whole:]
        outputs = []
        for start in range(0, whole, self._job_samples):
            chunk = np.ascontiguousarray(pending[start : min(whole, start + self._job_samples)])
            outputs.append(await self._model.run(BlockJob(self._stream, chunk)))
        out = np.concatenate(outputs).astype(np.float32) if outputs else _EMPTY
        skipped = min(self._to_skip, len(out))
        self._to_skip -= skipped
        out = out[skipped:]
        if self._mix is not None:
            dry = self._dry[: len(out)]
            self._dry = self._dry[len(out) :]
            out = (1 - self._mix) * out[: len(dry)] + self._mix * dry
            out = out.astype(np.float32)
        self._emitted += len(out)
        return out


async def restore_in_segments(
    model: HostedModel, samples: np.ndarray, rate_hz: int, params: RestorationParams
) -> np.ndarray:
    """A whole input restored as the model's original restores a file: resampled to the
    model's rate in one go (soxr HQ, cut or padded to ceil(n · ratio) samples, as
    librosa.load does), cut into `segment_samples` segments (the last one as long as
    what is left, no padding, no context) and each restored on its own, concatenated.

    The output is as long as the model's restorations (VoiceFixer mode 1 shortens each
    segment to a multiple of 512 samples); the caller cuts or pads the total.
    """
    engine = model.engine
    assert isinstance(engine, Restorer) and engine.segment_samples
    rate = engine.sample_rate
    wanted = -(-len(samples) * rate // rate_hz)
    audio = resample(np.ascontiguousarray(samples, np.float32), rate_hz, rate)
    audio = np.pad(audio[:wanted], (0, max(0, wanted - len(audio))))
    mix = None
    if params.attenuation_limit_db is not None and not engine.native_attenuation_limit:
        mix = 10 ** (-params.attenuation_limit_db / 20)
    step = engine.segment_samples
    outputs = []
    for start in range(0, len(audio), step):
        segment = np.ascontiguousarray(audio[start : start + step])
        out = np.asarray(await model.run(SegmentJob(segment, params)), np.float32)
        if mix is not None:  # each segment with its own input, however long its output
            out = ((1 - mix) * out + mix * segment[: len(out)]).astype(np.float32)
        outputs.append(out)
    return np.concatenate(outputs) if outputs else _EMPTY
