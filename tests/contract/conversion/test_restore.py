"""AudioRestoration with the real DeepFilterNet3 and RNNoise: noisy speech comes out cleaner."""

from __future__ import annotations

import numpy as np
import pytest
import soxr
from support import piper_untrimmed

from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc

pytestmark = pytest.mark.xdist_group("conversion")
MODELS = ("deepfilternet3", "rnnoise")
RATE = 16000
S16 = audio_pb2.AUDIO_ENCODING_PCM_S16LE
F32 = audio_pb2.AUDIO_ENCODING_PCM_F32LE
LEAD_S = 0.5  # noise alone before the speech


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB."""
    reference = reference - reference.mean()
    estimate = estimate - estimate.mean()
    target = (estimate @ reference) / (reference @ reference) * reference
    return float(10 * np.log10(np.sum(target**2) / np.sum((estimate - target) ** 2)))


def noisy_speech(snr_db: float = 0.0, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) at 16 kHz: speech after LEAD_S of silence, in white noise at snr_db."""
    speech, rate = piper_untrimmed("The quick brown fox jumps over the lazy dog")
    speech = soxr.resample(speech, rate, RATE).astype(np.float32)
    clean = np.concatenate([np.zeros(int(LEAD_S * RATE), np.float32), speech])
    noise = np.random.default_rng(seed).standard_normal(len(clean)).astype(np.float32)
    speech_power = np.mean(speech**2)
    noise *= np.sqrt(speech_power / np.mean(noise**2) / 10 ** (snr_db / 10))
    return clean, (clean + noise).astype(np.float32)


def f32_format(rate: int = RATE) -> audio_pb2.AudioFormat:
    return audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=rate)


def restore(server, model, samples, options=None, output_rate=RATE) -> np.ndarray:
    request = conversion_pb2.RestoreRequest(
        model=model,
        audio=audio_pb2.Audio(format=f32_format(), data=samples.astype("<f4").tobytes()),
        options=options,
        output_format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=output_rate),
    )
    with server.channel() as channel:
        response = conversion_pb2_grpc.AudioRestorationStub(channel).Restore(request, timeout=120)
    assert response.model == model
    assert response.audio.format.sample_rate_hz == output_rate
    out = np.frombuffer(response.audio.data, "<f4")
    assert response.total_samples == len(out)
    return out


def stream_restore(server, model, samples, seed=0, options=None) -> np.ndarray:
    """Sends S16 chunks of random sizes (split samples included); checks offsets."""
    data = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    cuts = np.sort(np.random.default_rng(seed).integers(0, len(data), 40))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    config = conversion_pb2.StreamingRestoreConfig(
        model=model,
        format=audio_pb2.AudioFormat(encoding=S16, sample_rate_hz=RATE),
        options=options,
        output_format=f32_format(),
    )
    requests = [conversion_pb2.StreamingRestoreRequest(config=config)]
    requests += [
        conversion_pb2.StreamingRestoreRequest(audio=audio_pb2.AudioChunk(data=p)) for p in pieces
    ]
    with server.channel() as channel:
        stub = conversion_pb2_grpc.AudioRestorationStub(channel)
        responses = list(stub.StreamingRestore(iter(requests), timeout=120))
    *chunks, last = responses
    assert last.end_of_stream and not last.HasField("audio")
    assert last.processed_samples == len(samples)
    offset = 0
    for response in chunks:
        assert response.format.sample_rate_hz == RATE and response.format.encoding == F32
        assert response.audio.sample_offset == offset
        assert len(response.audio.data) == 4 * response.audio.num_samples
        offset += response.audio.num_samples
    assert offset == len(samples)
    return np.concatenate([np.frombuffer(r.audio.data, "<f4") for r in chunks])


@pytest.mark.parametrize("model", MODELS)
def test_restore_raises_si_sdr_by_3_db(conversion_server, model):
    clean, noisy = noisy_speech()
    out = restore(conversion_server, model, noisy)
    assert len(out) == len(noisy)
    gain = si_sdr(clean, out) - si_sdr(clean, noisy)
    assert gain >= 3.0, gain


@pytest.mark.parametrize("model", MODELS)
def test_streaming_restore_raises_si_sdr_by_3_db_and_matches_restore(conversion_server, model):
    clean, noisy = noisy_speech()
    streamed = stream_restore(conversion_server, model, noisy)
    gain = si_sdr(clean, streamed) - si_sdr(clean, noisy)
    assert gain >= 3.0, gain
    # The same path as the whole-file call: the same audio up to 16-bit input rounding.
    whole = restore(conversion_server, model, (np.round(noisy * 32767) / 32768).astype(np.float32))
    assert si_sdr(whole, streamed) > 25


def test_restore_to_another_rate_keeps_timing(conversion_server):
    clean, noisy = noisy_speech()
    out = restore(conversion_server, "rnnoise", noisy, output_rate=48000)
    assert len(out) == len(noisy) * 3
    reference = soxr.resample(clean, RATE, 48000)
    assert si_sdr(reference, out) - si_sdr(clean, noisy) >= 3.0


@pytest.mark.parametrize("model", MODELS)
def test_attenuation_limit_bounds_the_noise_reduction(conversion_server, model):
    _, noisy = noisy_speech()
    lead = slice(int(0.1 * RATE), int((LEAD_S - 0.05) * RATE))  # noise alone

    def reduction_db(out: np.ndarray) -> float:
        return float(10 * np.log10(np.sum(out[lead] ** 2) / np.sum(noisy[lead] ** 2)))

    unlimited = reduction_db(restore(conversion_server, model, noisy))
    options = conversion_pb2.RestorationOptions(attenuation_limit_db=6.0)
    limited = reduction_db(restore(conversion_server, model, noisy, options))
    assert unlimited < -12, unlimited
    assert -7.5 < limited < -4.5, limited


def test_voicefixer_keeps_timing_whole_and_streamed(conversion_server):
    """The tiny random VoiceFixer cannot restore anything; this checks the plumbing:
    windows, crossfades, the 44.1 kHz path, exact lengths, a stream's output does not
    depend on how its input is chunked. (Restore follows the original's 30 s segments
    and so differs from the stream: tests/parity/test_voicefixer.py measures by how much.)"""
    _, noisy = noisy_speech()
    noisy = noisy[: int(5.5 * RATE)]  # two windows and a bit
    whole = restore(conversion_server, "voicefixer-tiny", noisy)
    assert len(whole) == len(noisy) and np.isfinite(whole).all()
    streamed = stream_restore(conversion_server, "voicefixer-tiny", noisy, seed=4)
    assert (
        si_sdr(stream_restore(conversion_server, "voicefixer-tiny", noisy, seed=5), streamed) > 30
    )
    native = restore(conversion_server, "voicefixer-tiny", noisy, output_rate=44100)
    assert len(native) == round(len(noisy) * 44100 / RATE)
    mode_1 = conversion_pb2.RestorationOptions(voice_fixer=conversion_pb2.VoiceFixerOptions(mode=1))
    assert len(restore(conversion_server, "voicefixer-tiny", noisy, mode_1)) == len(noisy)


def test_concurrent_streams_keep_their_own_state(conversion_server):
    """rnnoise runs with two threads here: jobs of different streams share model calls
    and run side by side, and each stream still gets exactly its solo result."""
    from concurrent.futures import ThreadPoolExecutor

    inputs = [noisy_speech(snr_db=snr, seed=seed)[1] for snr, seed in ((0, 1), (5, 2), (10, 3))]
    solo = [stream_restore(conversion_server, "rnnoise", x, seed=9) for x in inputs]
    with ThreadPoolExecutor(len(inputs)) as pool:
        together = list(
            pool.map(lambda x: stream_restore(conversion_server, "rnnoise", x, seed=9), inputs)
        )
    for alone, shared in zip(solo, together, strict=True):
        np.testing.assert_array_equal(alone, shared)
