"""VoiceFixer served over real gRPC against the original's `VoiceFixer.restore` path.

The fixtures (scripts/parity/voicefixer.py) hold the original's outputs on tiny random
weights; the weights are rebuilt here from the same seed (tests/checkpoints.py) and
checked against the fixture's digest, and the clips from their seeds. Outputs longer
than DENSE_UP_TO samples are compared on the fixture's grid (every STRIDE-th sample and
dense windows at the start, each 30 s boundary and the end).
"""

from __future__ import annotations

import hashlib
import io
import time

import grpc
import numpy as np
import pytest
import soundfile
import soxr
from checkpoints import save_voicefixer
from support import conversion_config, start_server

from parity.support import ReferenceRun, assert_close, assert_exact, relative_error
from parity.voicefixer_clips import clip
from speechmesh.audio.v1 import audio_pb2
from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.runtime.audio import AudioSpec, Encoding, StreamDecoder

MODEL = "voicefixer-parity"
RATE = 44100
SEGMENT = 30 * RATE
STRIDE, WINDOW, DENSE_UP_TO = 37, 2205, 30000
F32 = audio_pb2.AUDIO_ENCODING_PCM_F32LE
# The 31 s case's 44.1 kHz float reply (5.5 MB) fits; the same at 96 kHz does not.
LIMIT_BYTES = 8 * 1024 * 1024

reference = ReferenceRun("voicefixer")
CASES = {case["name"]: case for case in reference.cases}


def picks(length: int) -> np.ndarray:
    if length <= DENSE_UP_TO:
        return np.arange(length)
    keep = [np.arange(0, length, STRIDE)]
    for edge in [0, *range(SEGMENT, length, SEGMENT), length]:
        keep.append(np.arange(max(0, edge - WINDOW), min(length, edge + WINDOW)))
    return np.unique(np.concatenate(keep))


def digest(state: dict) -> str:
    hashed = hashlib.sha256()
    for key in sorted(state):
        if key.startswith(("vocoder.model.", "f_helper.istft.")):
            continue
        hashed.update(key.encode())
        hashed.update(state[key].contiguous().numpy().tobytes())
    return hashed.hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("voicefixer-parity")
    state, expected = rebuild(root / "weights")
    assert digest(state) == expected, "the rebuilt weights are not the fixture's"
    config = conversion_config(
        [{"id": MODEL, "family": "voicefixer", "source": str(root / "weights")}],
        limits={"max_message_bytes": LIMIT_BYTES},
    )
    running = start_server("conversion", config, root)
    yield running
    running.stop()


def channel(server) -> grpc.Channel:
    return grpc.insecure_channel(
        server.address,
        options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)],
    )


def case_clip(case: dict) -> np.ndarray:
    return clip(case["clip_seed"], case["samples"], case["rate"])


def restore(server, audio: audio_pb2.Audio, options=None, output_rate=RATE) -> np.ndarray:
    request = conversion_pb2.RestoreRequest(
        model=MODEL,
        audio=audio,
        options=options,
        output_format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=output_rate),
    )
    with channel(server) as ch:
        response = conversion_pb2_grpc.AudioRestorationStub(ch).Restore(request, timeout=240)
    assert response.audio.format.sample_rate_hz == output_rate
    out = np.frombuffer(response.audio.data, "<f4")
    assert response.total_samples == len(out)
    return out


def f32_audio(samples: np.ndarray, rate: int) -> audio_pb2.Audio:
    return audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=rate),
        data=samples.astype("<f4").tobytes(),
    )


def mode(value: int) -> conversion_pb2.RestorationOptions:
    return conversion_pb2.RestorationOptions(
        voice_fixer=conversion_pb2.VoiceFixerOptions(mode=value)
    )


def rebuild(root):
    weights = reference.document("weights")
    sizes = dict(weights["restorer_sizes"], widths=tuple(weights["restorer_sizes"]["widths"]))
    state, _ = save_voicefixer(
        root, seed=weights["seed"], restorer_sizes=sizes, output_gain=weights["output_gain"]
    )
    return state, weights["digest"]


def test_rebuilt_weights_are_the_fixtures(tmp_path):
    state, expected = rebuild(tmp_path)
    assert digest(state) == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_input_resampling_matches_librosa_load(name):
    """librosa.load(sr=44100) (soxr HQ, ceil(n · ratio) samples) vs the service's decoder."""
    case = CASES[name]
    decoder = StreamDecoder(AudioSpec(Encoding.PCM_F32LE, case["rate"], 1), target_rate_hz=RATE)
    data = case_clip(case).astype("<f4").tobytes()
    ours = np.concatenate([decoder.feed(data), decoder.flush()])
    assert len(ours) == case["input44_samples"] == -(-case["samples"] * RATE // case["rate"])
    assert_close(ours[picks(len(ours))], reference.array(f"{name}/input44"), f"{name} input")


@pytest.mark.parametrize("name", sorted(CASES))
def test_restore_matches_the_original(server, name):
    case = CASES[name]
    out = restore(server, f32_audio(case_clip(case), case["rate"]), mode(case["mode"]))
    # The reply is as long as the input; the original's own output may be shorter
    # (mode 1 ends each segment at a whole 512-sample hop): the rest is silence.
    assert len(out) == round(case["samples"] * RATE / case["rate"])
    n = case["output_samples"]
    assert n <= len(out)
    assert_exact(out[n:], np.zeros(len(out) - n, np.float32), f"{name} tail past the original")
    error = assert_close(out[:n][picks(n)], reference.array(f"{name}/output"), name)
    print(f"{name}: {case['segments']} segment(s), worst error {error:.2g} of the peak")


def test_long_input_is_two_independent_segments(server):
    """The 31 s case: the second segment starts at 30 s with no context (the original
    resets there, so the output around 30 s is compared densely above); restoring its
    last 1 s alone gives the same samples."""
    case = CASES["long"]
    assert case["segments"] == 2
    audio = case_clip(case)
    whole = restore(server, f32_audio(audio, case["rate"]))
    first = -(-case["samples"] * RATE // case["rate"]) - SEGMENT
    assert 0 < first < RATE * 2
    # The same 44.1 kHz samples, sent alone at 44.1 kHz, are the second segment.
    decoder = StreamDecoder(AudioSpec(Encoding.PCM_F32LE, case["rate"], 1), target_rate_hz=RATE)
    data = audio.astype("<f4").tobytes()
    audio44 = np.concatenate([decoder.feed(data), decoder.flush()])
    tail = restore(server, f32_audio(audio44[SEGMENT:], RATE))
    assert_close(whole[SEGMENT : SEGMENT + len(tail)], tail, "second segment alone")


def test_wav_input_and_another_output_rate(server):
    """The short clip as a float WAV file (what the original reads), answered at 16 kHz:
    the reference's 44.1 kHz output resampled (soxr HQ)."""
    case = CASES["short"]
    wav = io.BytesIO()
    soundfile.write(wav, case_clip(case), case["rate"], format="WAV", subtype="FLOAT")
    audio = audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_WAV), data=wav.getvalue()
    )
    out = restore(server, audio, output_rate=16000)
    assert len(out) == case["samples"]
    expected = soxr.resample(reference.array("short/output"), RATE, 16000, "HQ")
    assert_close(out, expected[: len(out)], "short at 16 kHz")


def test_attenuation_limit_mixes_the_input_back(server):
    case = CASES["short"]
    options = conversion_pb2.RestorationOptions(attenuation_limit_db=6.0)
    out = restore(server, f32_audio(case_clip(case), case["rate"]), options)
    mix = 10 ** (-6.0 / 20)
    expected = (1 - mix) * reference.array("short/output") + mix * reference.array("short/input44")
    assert_close(out, expected, "attenuation limit 6 dB")


def test_mode_2_runs_in_training_mode(server):
    """Batch statistics and dropout: not comparable sample by sample (the original's
    dropout draws are its own); the reply keeps the timing and differs from mode 0."""
    case = CASES["short"]
    audio = f32_audio(case_clip(case), case["rate"])
    out = restore(server, audio, mode(2))
    assert len(out) == case["output_samples"] and np.isfinite(out).all()
    assert relative_error(out, reference.array("short/output")) > 1e-3


def test_audio_shorter_than_the_stft_is_restored(server):
    """Under 1025 samples at 44.1 kHz the original's reflect padding fails; the service
    pads silence after the audio for the model and cuts the output back."""
    short = case_clip(CASES["short"])[:300]
    out = restore(server, f32_audio(short, 16000))
    assert len(out) == round(300 * RATE / 16000) and np.isfinite(out).all()
    assert np.abs(out).max() > 0


def test_reply_over_the_message_limit_is_refused_before_restoring(server):
    case = CASES["long"]
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as error:
        restore(server, f32_audio(case_clip(case), case["rate"]), output_rate=96000)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_message_bytes" in error.value.details()
    assert time.monotonic() - started < 2.0


def stream(server, samples: np.ndarray, rate: int, seed: int = 0) -> np.ndarray:
    """F32 chunks of random sizes (split samples included); checks the offsets."""
    data = samples.astype("<f4").tobytes()
    cuts = np.sort(np.random.default_rng(seed).integers(0, len(data), 25))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    config = conversion_pb2.StreamingRestoreConfig(
        model=MODEL,
        format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=rate),
        output_format=audio_pb2.AudioFormat(encoding=F32, sample_rate_hz=RATE),
    )
    requests = [conversion_pb2.StreamingRestoreRequest(config=config)]
    requests += [
        conversion_pb2.StreamingRestoreRequest(audio=audio_pb2.AudioChunk(data=p)) for p in pieces
    ]
    with channel(server) as ch:
        responses = list(
            conversion_pb2_grpc.AudioRestorationStub(ch).StreamingRestore(
                iter(requests), timeout=240
            )
        )
    *chunks, last = responses
    assert last.end_of_stream and last.processed_samples == len(samples)
    offset = 0
    for response in chunks:
        assert response.audio.sample_offset == offset
        offset += response.audio.num_samples
    return np.concatenate([np.frombuffer(r.audio.data, "<f4") for r in chunks])


def test_streaming_restore_difference_from_restore_is_measured(server):
    """StreamingRestore restores 4.5 s windows (0.5 s of context, zeros before the
    first, crossfaded over 0.5 s, the tail padded with silence); Restore restores 30 s
    segments as the original does. They must differ (Restore is not the stream), and
    by how much is reported: on these random weights the model is so sensitive to
    context that the two are barely related (docs/services/conversion.md)."""
    case = CASES["long"]
    audio = case_clip(case)
    whole = restore(server, f32_audio(audio, case["rate"]))
    streamed = stream(server, audio, case["rate"])
    assert len(streamed) == len(whole) == round(case["samples"] * RATE / case["rate"])
    assert np.isfinite(streamed).all()
    error = relative_error(streamed, whole)
    snr = 10 * np.log10(np.sum(whole.astype(np.float64) ** 2) / np.sum((whole - streamed) ** 2.0))
    print(f"StreamingRestore vs Restore: worst {error:.3g} of the peak, {snr:.1f} dB SNR")
    assert error > 1e-3
