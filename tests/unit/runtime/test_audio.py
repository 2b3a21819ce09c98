"""Tests of speechmesh.runtime.audio: codecs, resampling, validation and streaming."""

from __future__ import annotations

import io
import itertools
import struct
import warnings

import numpy as np
import pytest
import soundfile as sf

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime import audio
from speechmesh.runtime.audio import AudioSpec, Encoding, StreamDecoder
from speechmesh.runtime.errors import InvalidArgument, LimitExceeded

S16_STEP = 1 / 32768


def tone(rate: int, seconds: float = 0.5, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chirp(rate: int, seconds: float = 1.0, f0: float = 200.0, f1: float = 3000.0) -> np.ndarray:
    """A sweep with a slow amplitude wobble: no lag aliases like a pure tone has."""
    t = np.arange(int(rate * seconds)) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    envelope = 0.4 + 0.2 * np.sin(2 * np.pi * 3 * t)
    return (envelope * np.sin(phase)).astype(np.float32)


def field_of(excinfo: pytest.ExceptionInfo[InvalidArgument]) -> str:
    return excinfo.value.violations[0].field


def wav_bytes(
    pcm: bytes,
    *,
    rate: int = 16000,
    channels: int = 1,
    bits: int = 16,
    tag: int = 1,
    data_size: int | None = None,
    before_data: bytes = b"",
    after_data: bytes = b"",
) -> bytes:
    """A WAV file written by hand, to control every chunk and size field."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    size = len(pcm) if data_size is None else data_size
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + before_data
        + b"data"
        + struct.pack("<I", size)
        + pcm
        + after_data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def feed_in_chunks(decoder: StreamDecoder, data: bytes, seed: int, max_chunk: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pieces = []
    position = 0
    while position < len(data):
        size = int(rng.integers(1, max_chunk + 1))
        pieces.append(decoder.feed(data[position : position + size]))
        position += size
    pieces.append(decoder.flush())
    return np.concatenate(pieces)


# --- Encoding and AudioSpec ----------------------------------------------------------------


def test_encoding_numbers_match_the_proto() -> None:
    for encoding in Encoding:
        assert audio_pb2.AudioEncoding.Value(f"AUDIO_ENCODING_{encoding.name}") == encoding
    assert len(Encoding) == len(audio_pb2.AudioEncoding.items())
    streamable = audio.STREAMABLE_ENCODINGS
    assert streamable == audio.RAW_ENCODINGS | {Encoding.WAV}


def test_from_proto_raw_defaults_to_mono() -> None:
    fmt = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000)
    assert AudioSpec.from_proto(fmt) == AudioSpec(Encoding.PCM_S16LE, 16000, 1)


def test_from_proto_container_keeps_zeros_for_the_header() -> None:
    fmt = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_FLAC)
    assert AudioSpec.from_proto(fmt) == AudioSpec(Encoding.FLAC, 0, 0)


@pytest.mark.parametrize("value", [0, 99])
def test_from_proto_rejects_unset_or_unknown_encoding(value: int) -> None:
    fmt = audio_pb2.AudioFormat(encoding=value, sample_rate_hz=16000)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as excinfo:
        AudioSpec.from_proto(fmt, field="config.format")
    assert field_of(excinfo) == "config.format.encoding"
    description = excinfo.value.violations[0].description
    assert "PCM_S16LE" in description
    assert "OGG_OPUS" in description


@pytest.mark.parametrize("rate", [0, 999, 384001])
def test_from_proto_rejects_raw_rate_outside_range(rate: int) -> None:
    fmt = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_MULAW, sample_rate_hz=rate)
    with pytest.raises(InvalidArgument) as excinfo:
        AudioSpec.from_proto(fmt)
    assert field_of(excinfo) == "format.sample_rate_hz"
    assert "1000..384000" in excinfo.value.violations[0].description


def test_from_proto_checks_container_rate_when_set() -> None:
    fmt = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_WAV, sample_rate_hz=500)
    with pytest.raises(InvalidArgument) as excinfo:
        AudioSpec.from_proto(fmt, field="audio.format")
    assert field_of(excinfo) == "audio.format.sample_rate_hz"


def test_from_proto_rejects_too_many_channels() -> None:
    fmt = audio_pb2.AudioFormat(
        encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE, sample_rate_hz=16000, channels=33
    )
    with pytest.raises(InvalidArgument) as excinfo:
        AudioSpec.from_proto(fmt)
    assert field_of(excinfo) == "format.channels"


def test_from_proto_for_output_allows_raw_without_rate() -> None:
    fmt = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE)
    spec = AudioSpec.from_proto(fmt, for_output=True)
    assert spec == AudioSpec(Encoding.PCM_S16LE, 0, 1)
    assert audio.output_rate_hz(22050, spec) == 22050


# --- Round trips ----------------------------------------------------------------------------


def test_pcm_s16_round_trip_is_exact_within_quantisation() -> None:
    samples = chirp(16000)
    spec = AudioSpec(Encoding.PCM_S16LE, 16000)
    data = audio.encode(samples, 16000, spec)
    assert len(data) == 2 * len(samples)
    decoded = audio.decode(data, spec)
    assert decoded.sample_rate_hz == 16000
    assert decoded.samples.dtype == np.float32
    assert np.max(np.abs(decoded.samples - samples)) <= S16_STEP / 2 + 1e-9
    # Decoded 16-bit audio encodes back to the very same bytes.
    assert audio.encode(decoded.samples, 16000, spec) == data


def test_pcm_f32_round_trip_is_bitwise() -> None:
    samples = chirp(8000)
    spec = AudioSpec(Encoding.PCM_F32LE, 8000)
    decoded = audio.decode(audio.encode(samples, 8000, spec), spec)
    np.testing.assert_array_equal(decoded.samples, samples)


@pytest.mark.parametrize("encoding", [Encoding.WAV, Encoding.FLAC])
def test_wav_and_flac_round_trip_equal_16_bit_pcm(encoding: Encoding) -> None:
    samples = chirp(22050)
    data = audio.encode(samples, 22050, AudioSpec(encoding))
    decoded = audio.decode(data, AudioSpec(encoding))
    pcm_spec = AudioSpec(Encoding.PCM_S16LE, 22050)
    reference = audio.decode(audio.encode(samples, 22050, pcm_spec), pcm_spec).samples
    assert decoded.sample_rate_hz == 22050
    np.testing.assert_array_equal(decoded.samples, reference)
    with sf.SoundFile(io.BytesIO(data)) as f:
        assert (f.format, f.subtype, f.channels) == (encoding.name, "PCM_16", 1)


def test_mulaw_round_trip_error_is_within_half_a_step() -> None:
    samples = chirp(8000, f1=3500) * 1.6  # peaks at 0.96: the top segment included
    spec = AudioSpec(Encoding.MULAW, 8000)
    data = audio.encode(samples, 8000, spec)
    assert len(data) == len(samples)
    decoded = audio.decode(data, spec).samples
    linear = np.abs(samples) * 32768
    # Half a step of the segment is at most (|x| + bias) / 32, plus 1 for rounding to int16.
    bound = (linear + 132) / 32 + 1
    assert np.all(np.abs(decoded - samples) * 32768 <= bound)
    assert np.max(np.abs(decoded - samples)) > 0.005  # it really is lossy in loud parts


def test_ogg_opus_round_trip_correlates_after_alignment() -> None:
    samples = chirp(16000)
    spec = AudioSpec(Encoding.OGG_OPUS)
    data = audio.encode(samples, 16000, spec)
    assert data[:4] == b"OggS"
    decoded = audio.decode(data, spec)
    assert decoded.sample_rate_hz == audio.OPUS_DECODE_RATE_HZ
    assert abs(decoded.duration_s - 1.0) <= 0.025
    back = audio.resample(decoded.samples, 48000, 16000)
    n = min(len(back), len(samples)) - 400
    best = max(
        np.corrcoef(samples[200 : 200 + n - 200], back[200 + lag : 200 + lag + n - 200])[0, 1]
        for lag in range(-160, 161)
    )
    assert best > 0.9


def test_opus_encodes_at_a_supported_rate() -> None:
    assert audio.opus_rate_hz(8000) == 8000
    assert audio.opus_rate_hz(22050) == 24000
    assert audio.opus_rate_hz(44100) == 48000
    assert audio.opus_rate_hz(96000) == 48000
    spec = AudioSpec(Encoding.OGG_OPUS, 22050)
    assert audio.output_rate_hz(16000, spec) == 24000
    data = audio.encode(tone(16000), 16000, spec)
    # The OpusHead records the rate it was encoded at; decoding accepts it as a declared rate.
    decoded = audio.decode(data, AudioSpec(Encoding.OGG_OPUS, 24000, 1))
    assert abs(decoded.duration_s - 0.5) <= 0.025


def test_encode_resamples_to_the_requested_rate() -> None:
    samples = tone(16000, seconds=1.0)
    data = audio.encode(samples, 16000, AudioSpec(Encoding.PCM_S16LE, 8000))
    assert len(data) == 2 * 8000
    data = audio.encode(samples, 16000, AudioSpec(Encoding.WAV, 48000))
    assert audio.decode(data, AudioSpec(Encoding.WAV)).sample_rate_hz == 48000


def test_encode_clips_integers_keeps_floats_and_neutralises_nan() -> None:
    samples = np.array([2.0, -2.0, np.nan, 0.5, -1.0], dtype=np.float32)
    pcm = np.frombuffer(audio.encode(samples, 8000, AudioSpec(Encoding.PCM_S16LE)), "<i2")
    np.testing.assert_array_equal(pcm, [32767, -32768, 0, 16384, -32768])
    f32 = np.frombuffer(audio.encode(samples, 8000, AudioSpec(Encoding.PCM_F32LE)), "<f4")
    # Float output carries the model's samples beyond full scale unchanged.
    np.testing.assert_array_equal(f32, [2.0, -2.0, 0.0, 0.5, -1.0])


def test_encode_output_is_mono_only() -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        audio.encode(tone(8000), 8000, AudioSpec(Encoding.WAV, channels=2), field="config.format")
    assert field_of(excinfo) == "config.format.channels"


# --- Resampling -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_hz", "to_hz"), [(16000, 8000), (16000, 24000), (44100, 16000), (8000, 48000)]
)
def test_resample_changes_length_by_the_rate_ratio(from_hz: int, to_hz: int) -> None:
    out = audio.resample(tone(from_hz, seconds=1.0, freq=1000), from_hz, to_hz)
    assert out.dtype == np.float32
    assert len(out) == to_hz
    # The tone stays at 1 kHz and keeps its level.
    spectrum = np.abs(np.fft.rfft(out))
    assert np.argmax(spectrum) * to_hz / len(out) == pytest.approx(1000, abs=1)
    assert np.max(np.abs(out[100:-100])) == pytest.approx(0.5, abs=0.01)


def test_resample_same_rate_is_a_no_op() -> None:
    samples = tone(16000)
    assert audio.resample(samples, 16000, 16000) is samples


@pytest.mark.parametrize(
    ("samples", "from_hz", "to_hz", "length"),
    [
        # 44100 · (24000 / 44100) is 24000.000000000004 in floats: librosa pads a zero.
        (44100, 44100, 24000, 24001),
        (352800, 44100, 24000, 192001),
        (507150, 44100, 24000, 276000),
        (24001, 24000, 16000, 16001),  # ceil(16000.67)
        (22050, 22050, 16000, 16000),
    ],
)
def test_resample_as_librosa_has_librosas_length(samples, from_hz, to_hz, length) -> None:
    clip = tone(from_hz, seconds=samples / from_hz)
    plain = audio.resample(clip, from_hz, to_hz)
    out = audio.resample_as_librosa(clip, from_hz, to_hz)
    assert out.dtype == np.float32 and len(out) == length
    common = min(len(plain), length)
    assert np.array_equal(out[:common], plain[:common])
    assert not out[common:].any()


# --- G.711 mu-law -----------------------------------------------------------------------------


def test_mulaw_known_values() -> None:
    codes = np.array([0xFF, 0x00, 0x7F, 0x80, 0xFE, 0x7E], dtype=np.uint8)
    np.testing.assert_array_equal(audio.mulaw_to_linear(codes), [0, -32124, 0, 32124, 8, -8])
    linear = np.array([0, 32767, -32768, 8, -8, 32124], dtype=np.int16)
    np.testing.assert_array_equal(
        audio.linear_to_mulaw(linear), [0xFF, 0x80, 0x00, 0xFE, 0x7E, 0x80]
    )


def test_mulaw_matches_audioop() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    codes = np.arange(256, dtype=np.uint8)
    expected = np.frombuffer(audioop.ulaw2lin(codes.tobytes(), 2), "<i2")
    np.testing.assert_array_equal(audio.mulaw_to_linear(codes), expected)
    # audioop truncates to 14 bits before taking the magnitude, so it rounds negative
    # values that are not multiples of 4 differently; on the rest both agree exactly.
    linear = np.arange(-32768, 32768, 4, dtype=np.int16)
    expected_codes = np.frombuffer(audioop.lin2ulaw(linear.tobytes(), 2), np.uint8)
    np.testing.assert_array_equal(audio.linear_to_mulaw(linear), expected_codes)


def test_mulaw_decode_encode_is_identity_on_codes() -> None:
    codes = np.arange(256, dtype=np.uint8)
    round_trip = audio.linear_to_mulaw(audio.mulaw_to_linear(codes))
    # 0x7F is "negative zero" and encodes back as +0 (0xFF); every other code is kept.
    expected = codes.copy()
    expected[0x7F] = 0xFF
    np.testing.assert_array_equal(round_trip, expected)


# --- Channels ---------------------------------------------------------------------------------


def test_raw_stereo_is_averaged_to_mono() -> None:
    left = np.array([1000, -2000, 3000], dtype="<i2")
    right = np.array([3000, 2000, -3001], dtype="<i2")
    data = np.stack([left, right], axis=1).tobytes()
    decoded = audio.decode(data, AudioSpec(Encoding.PCM_S16LE, 8000, 2))
    np.testing.assert_allclose(decoded.samples * 32768, [2000, 0, -0.5])


def test_wav_stereo_is_averaged_to_mono() -> None:
    left, right = tone(16000, amp=0.5), tone(16000, freq=880, amp=0.25)
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([left, right], axis=1), 16000, format="WAV", subtype="FLOAT")
    decoded = audio.decode(buffer.getvalue(), AudioSpec(Encoding.WAV))
    np.testing.assert_allclose(decoded.samples, (left + right) / 2, atol=1e-7)


# --- Decode errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [AudioSpec(Encoding.PCM_S16LE, 16000), AudioSpec(Encoding.WAV), AudioSpec(Encoding.OGG_OPUS)],
)
def test_decode_rejects_empty_audio(spec: AudioSpec) -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        audio.decode(b"", spec, field="request.audio.data")
    assert field_of(excinfo) == "request.audio.data"
    assert excinfo.value.violations[0].description == "audio is empty"


@pytest.mark.parametrize(
    ("encoding", "label"),
    [(Encoding.WAV, "WAV"), (Encoding.FLAC, "FLAC"), (Encoding.OGG_OPUS, "Ogg/Opus")],
)
def test_decode_rejects_garbage_for_containers(encoding: Encoding, label: str) -> None:
    garbage = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    with pytest.raises(InvalidArgument) as excinfo:
        audio.decode(garbage, AudioSpec(encoding))
    assert field_of(excinfo) == "audio.data"
    assert f"expected {label} audio" in excinfo.value.violations[0].description


def test_decode_rejects_a_container_of_another_kind() -> None:
    flac = audio.encode(tone(16000), 16000, AudioSpec(Encoding.FLAC))
    with pytest.raises(InvalidArgument) as excinfo:
        audio.decode(flac, AudioSpec(Encoding.WAV))
    assert "expected WAV audio but got FLAC" in excinfo.value.violations[0].description
    opus = audio.encode(tone(16000), 16000, AudioSpec(Encoding.OGG_OPUS))
    with pytest.raises(InvalidArgument):
        audio.decode(opus, AudioSpec(Encoding.FLAC))


def test_decode_rejects_truncated_wav() -> None:
    data = audio.encode(tone(16000), 16000, AudioSpec(Encoding.WAV))
    with pytest.raises(InvalidArgument) as excinfo:
        audio.decode(data[:20], AudioSpec(Encoding.WAV))
    assert field_of(excinfo) == "audio.data"


@pytest.mark.parametrize(
    ("spec", "num_bytes"),
    [
        (AudioSpec(Encoding.PCM_S16LE, 16000), 3),
        (AudioSpec(Encoding.PCM_S16LE, 16000, 2), 6),
        (AudioSpec(Encoding.PCM_F32LE, 16000), 10),
        (AudioSpec(Encoding.MULAW, 8000, 3), 4),
    ],
)
def test_decode_rejects_partial_frames(spec: AudioSpec, num_bytes: int) -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        audio.decode(b"\x01" * num_bytes, spec)
    assert field_of(excinfo) == "audio.data"
    assert "not a whole number" in excinfo.value.violations[0].description


@pytest.mark.parametrize("encoding", [Encoding.WAV, Encoding.FLAC, Encoding.OGG_OPUS])
def test_decode_rejects_rate_and_channels_that_disagree_with_the_header(
    encoding: Encoding,
) -> None:
    data = audio.encode(tone(16000), 16000, AudioSpec(encoding))
    with pytest.raises(InvalidArgument) as excinfo:
        audio.decode(data, AudioSpec(encoding, 44100), field="audio.data")
    assert field_of(excinfo) == "audio.data"
    assert "44100" in excinfo.value.violations[0].description
    with pytest.raises(InvalidArgument) as excinfo:
        audio.decode(data, AudioSpec(encoding, 0, 2))
    assert "channel" in excinfo.value.violations[0].description


def test_decode_rejects_non_finite_floats() -> None:
    data = np.array([0.1, np.nan, 0.2], dtype="<f4").tobytes()
    with pytest.raises(InvalidArgument) as excinfo:
        audio.decode(data, AudioSpec(Encoding.PCM_F32LE, 16000))
    assert "NaN" in excinfo.value.violations[0].description


@pytest.mark.parametrize(
    ("encoding", "rate"),
    [(Encoding.PCM_S16LE, 16000), (Encoding.FLAC, 0), (Encoding.OGG_OPUS, 0)],
)
def test_decode_enforces_max_duration(encoding: Encoding, rate: int) -> None:
    spec = AudioSpec(encoding, rate)
    data = audio.encode(tone(16000, seconds=2.0), 16000, spec)
    assert audio.decode(data, spec, max_duration_s=2.1).duration_s == pytest.approx(2.0, abs=0.03)
    with pytest.raises(LimitExceeded) as excinfo:
        audio.decode(data, spec, max_duration_s=1.0)
    assert excinfo.value.allowed == 1.0
    assert excinfo.value.requested > 1.0


def test_decode_reads_a_wav_whose_writer_left_the_size_at_zero() -> None:
    pcm = (np.arange(-500, 500, dtype="<i2") * 30).tobytes()
    decoded = audio.decode(wav_bytes(pcm, data_size=0), AudioSpec(Encoding.WAV))
    np.testing.assert_array_equal(decoded.samples * 32768, np.frombuffer(pcm, "<i2"))


# --- StreamDecoder --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        AudioSpec(Encoding.PCM_S16LE, 16000, 1),
        AudioSpec(Encoding.PCM_S16LE, 16000, 2),
        AudioSpec(Encoding.PCM_F32LE, 16000, 3),
        AudioSpec(Encoding.MULAW, 8000, 1),
    ],
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stream_in_random_chunks_equals_one_shot_decode(spec: AudioSpec, seed: int) -> None:
    mono = chirp(spec.sample_rate_hz, seconds=0.3)
    interleaved = np.repeat(mono, spec.channels) * np.tile(
        np.linspace(0.5, 1.0, spec.channels, dtype=np.float32), len(mono)
    )
    data = audio.encode(interleaved, spec.sample_rate_hz, AudioSpec(spec.encoding))
    expected = audio.decode(data, spec).samples
    decoder = StreamDecoder(spec)
    got = feed_in_chunks(decoder, data, seed, max_chunk=7 if seed == 1 else 997)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    assert decoder.samples_in == len(mono)
    assert decoder.input_rate_hz == spec.sample_rate_hz


def test_whole_frame_chunks_around_split_ones_decode_the_same() -> None:
    # Whole-frame chunks with nothing held back are decoded as they come; a split frame
    # goes through the pending bytes. Both ways must give the same samples and count.
    spec = AudioSpec(Encoding.PCM_S16LE, 16000, 2)
    data = audio.encode(np.repeat(chirp(16000, seconds=0.1), 2), 16000, AudioSpec(spec.encoding))
    cuts = [0, 400, 800, 1003, 1600, 2000, 2401, 2402, 3200, len(data)]
    decoder = StreamDecoder(spec)
    got = np.concatenate([decoder.feed(data[a:b]) for a, b in itertools.pairwise(cuts)])
    np.testing.assert_array_equal(got, audio.decode(data, spec).samples)
    assert decoder.samples_in == len(data) // 4
    assert decoder.feed(b"").size == 0


def test_stream_one_byte_at_a_time_holds_back_split_samples() -> None:
    decoder = StreamDecoder(AudioSpec(Encoding.PCM_S16LE, 8000, 2))
    data = np.array([100, 300, -32768, 32767], dtype="<i2").tobytes()
    outputs = [decoder.feed(data[i : i + 1]) for i in range(len(data))]
    assert [len(o) for o in outputs] == [0, 0, 0, 1, 0, 0, 0, 1]
    np.testing.assert_array_equal(np.concatenate(outputs) * 32768, [200, -0.5])
    assert decoder.samples_in == 2
    assert len(decoder.flush()) == 0


@pytest.mark.parametrize("seed", [4, 5])
def test_resampled_stream_matches_one_shot_resample(seed: int) -> None:
    spec = AudioSpec(Encoding.PCM_S16LE, 44100)
    samples = chirp(44100, seconds=0.5)
    data = audio.encode(samples, 44100, spec)
    decoder = StreamDecoder(spec, target_rate_hz=16000)
    assert decoder.output_rate_hz == 16000
    streamed = feed_in_chunks(decoder, data, seed, max_chunk=3001)
    whole = StreamDecoder(spec, target_rate_hz=16000)
    in_one_chunk = np.concatenate([whole.feed(data), whole.flush()])
    one_shot = audio.resample(audio.decode(data, spec).samples, 44100, 16000)
    assert abs(len(streamed) - len(one_shot)) <= 2
    assert len(streamed) == len(in_one_chunk)
    np.testing.assert_allclose(streamed, in_one_chunk, atol=1e-5)
    n = min(len(streamed), len(one_shot))
    np.testing.assert_allclose(streamed[100 : n - 100], one_shot[100 : n - 100], atol=1e-3)
    assert decoder.samples_in == len(samples)


def test_stream_without_resampling_when_target_equals_input() -> None:
    spec = AudioSpec(Encoding.PCM_F32LE, 16000)
    data = audio.encode(tone(16000), 16000, spec)
    decoder = StreamDecoder(spec, target_rate_hz=16000)
    np.testing.assert_array_equal(decoder.feed(data), audio.decode(data, spec).samples)


def test_wav_stream_skips_a_list_chunk_before_data() -> None:
    pcm = audio.encode(chirp(16000, seconds=0.2), 16000, AudioSpec(Encoding.PCM_S16LE))
    list_chunk = b"LIST" + struct.pack("<I", 13) + b"INFOISFT\x05\x00\x00\x00x" + b"\x00"
    data = wav_bytes(pcm, before_data=list_chunk, after_data=b"id3 \x04\x00\x00\x00abcd")
    expected = audio.decode(data, AudioSpec(Encoding.WAV)).samples
    np.testing.assert_array_equal(
        expected, audio.decode(pcm, AudioSpec(Encoding.PCM_S16LE, 16000)).samples
    )
    for seed, max_chunk in [(6, 1), (7, 5), (8, 200)]:
        decoder = StreamDecoder(AudioSpec(Encoding.WAV))
        assert decoder.input_rate_hz is None
        got = feed_in_chunks(decoder, data, seed, max_chunk)
        np.testing.assert_array_equal(got, expected)
        assert decoder.input_rate_hz == 16000
        assert decoder.samples_in == len(expected)


@pytest.mark.parametrize("data_size", [0, 0xFFFFFFFF])
def test_wav_stream_of_unknown_length(data_size: int) -> None:
    pcm = np.arange(-1000, 1000, dtype="<i2").tobytes()
    decoder = StreamDecoder(AudioSpec(Encoding.WAV), target_rate_hz=8000)
    got = feed_in_chunks(decoder, wav_bytes(pcm, data_size=data_size), 9, max_chunk=64)
    assert decoder.samples_in == 2000
    assert abs(len(got) - 1000) <= 2


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "ULAW"])
def test_wav_stream_formats_match_libsndfile(subtype: str) -> None:
    stereo = np.stack([chirp(8000, seconds=0.25), tone(8000, seconds=0.25)], axis=1)
    buffer = io.BytesIO()
    sf.write(buffer, stereo, 8000, format="WAV", subtype=subtype)
    data = buffer.getvalue()
    expected = audio.decode(data, AudioSpec(Encoding.WAV)).samples
    got = feed_in_chunks(StreamDecoder(AudioSpec(Encoding.WAV, 8000, 2)), data, 10, max_chunk=50)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("encoding", [Encoding.FLAC, Encoding.OGG_OPUS])
def test_stream_rejects_containers_that_cannot_stream(encoding: Encoding) -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        StreamDecoder(AudioSpec(encoding))
    assert field_of(excinfo) == "config.format.encoding"
    assert "PCM_S16LE, PCM_F32LE, MULAW or WAV" in excinfo.value.violations[0].description


def test_stream_ending_inside_a_sample_is_an_error() -> None:
    decoder = StreamDecoder(AudioSpec(Encoding.PCM_F32LE, 16000))
    assert len(decoder.feed(b"\x00" * 10)) == 2
    with pytest.raises(InvalidArgument) as excinfo:
        decoder.flush()
    assert field_of(excinfo) == "audio"
    assert excinfo.value.violations[0].description == "stream ended inside a sample: 2 stray bytes"


@pytest.mark.parametrize(
    "header",
    [
        b"RIFX" + b"\x00" * 40,
        b"RIFF\x00\x00\x00\x00AVI " + b"\x00" * 40,
        wav_bytes(b"", bits=12),
        wav_bytes(b"", tag=2, bits=4),
        wav_bytes(b"", channels=0),
        b"RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00",
    ],
)
def test_stream_rejects_malformed_wav_headers(header: bytes) -> None:
    decoder = StreamDecoder(AudioSpec(Encoding.WAV))
    with pytest.raises(InvalidArgument) as excinfo:
        decoder.feed(header)
    assert field_of(excinfo) == "audio"


def test_stream_ending_inside_the_wav_header_is_an_error() -> None:
    decoder = StreamDecoder(AudioSpec(Encoding.WAV))
    assert len(decoder.feed(wav_bytes(b"")[:30])) == 0
    with pytest.raises(InvalidArgument) as excinfo:
        decoder.flush()
    assert "WAV header" in excinfo.value.violations[0].description


def test_wav_stream_rejects_a_config_that_disagrees_with_the_header() -> None:
    decoder = StreamDecoder(AudioSpec(Encoding.WAV, 8000))
    with pytest.raises(InvalidArgument) as excinfo:
        decoder.feed(wav_bytes(b"\x00\x00", rate=16000))
    assert field_of(excinfo) == "config.format.sample_rate_hz"
