"""runtime.audio's lossy codecs: MP3, AAC (ADTS and M4A), Ogg/Vorbis and WebM/Opus."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from speechmesh.runtime import audio
from speechmesh.runtime.audio import AudioSpec, Encoding, StreamEncoder, decode, encode
from speechmesh.runtime.errors import InvalidArgument, LimitExceeded

LOSSY = [Encoding.MP3, Encoding.AAC, Encoding.OGG_VORBIS, Encoding.WEBM_OPUS]
LABELS = {
    Encoding.MP3: "MP3",
    Encoding.AAC: "AAC",
    Encoding.OGG_VORBIS: "Ogg/Vorbis",
    Encoding.WEBM_OPUS: "WebM/Opus",
}


def sweep(rate: int, seconds: float = 1.0) -> np.ndarray:
    """A 200 Hz to 2.3 kHz sweep with a wobbling envelope: one clear alignment lag."""
    t = np.arange(int(rate * seconds)) / rate
    envelope = 0.35 + 0.15 * np.sin(2 * np.pi * 3 * t)
    return (envelope * np.sin(2 * np.pi * (200 * t + 1050 * t**2))).astype(np.float32)


def similarity(decoded: np.ndarray, rate: int, reference: np.ndarray, ref_rate: int) -> float:
    """Correlation of the decoded audio with the reference, at the best lag (codecs add
    a delay), both at the decoded rate."""
    reference = audio.resample(reference, ref_rate, rate)
    window = min(len(decoded), len(reference)) // 2
    lags = np.correlate(decoded[: 2 * window], reference[:window], "valid")
    lag = int(np.argmax(lags))
    aligned = decoded[lag : lag + len(reference)]
    return float(np.corrcoef(aligned, reference[: len(aligned)])[0, 1])


def m4a(samples: np.ndarray, rate: int) -> bytes:
    """An M4A file (AAC in MP4), as phones and browsers record them."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="ipod") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = rate, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return buffer.getvalue()


@pytest.mark.parametrize("encoding", LOSSY)
@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_lossy_encodings_round_trip_at_any_rate(encoding: Encoding, rate: int) -> None:
    samples = sweep(rate)
    data = encode(samples, rate, AudioSpec(encoding))
    assert audio.detect_encoding(data) == encoding
    decoded = decode(data, AudioSpec(encoding))
    expected_rate = 48000 if encoding == Encoding.WEBM_OPUS else rate
    assert decoded.sample_rate_hz == expected_rate
    # Codecs pad to whole frames, and ADTS keeps AAC's 1024 priming samples.
    assert 0 <= decoded.duration_s - 1.0 < 0.05 + 2048 / rate
    assert similarity(decoded.samples, decoded.sample_rate_hz, samples, rate) > 0.95


@pytest.mark.parametrize(
    ("encoding", "rate", "written"),
    [
        (Encoding.MP3, 20000, 22050),
        (Encoding.MP3, 96000, 48000),
        (Encoding.MP3, 1000, 8000),
        (Encoding.AAC, 96000, 96000),
        (Encoding.AAC, 100000, 96000),
        (Encoding.AAC, 7000, 7350),
        (Encoding.OGG_VORBIS, 17000, 17000),
        (Encoding.WEBM_OPUS, 22050, 24000),
        (Encoding.FLAC, 17000, 17000),
    ],
)
def test_codecs_move_to_the_nearest_rate_that_keeps_the_bandwidth(
    encoding: Encoding, rate: int, written: int
) -> None:
    assert audio.codec_rate_hz(encoding, rate) == written
    assert audio.output_rate_hz(rate, AudioSpec(encoding)) == written
    data = encode(sweep(rate, 0.3), rate, AudioSpec(encoding))
    if encoding != Encoding.WEBM_OPUS:  # Opus always decodes at 48 kHz
        assert decode(data, AudioSpec(encoding)).sample_rate_hz == written


def test_an_m4a_file_decodes_as_aac() -> None:
    samples = sweep(16000)
    data = m4a(samples, 16000)
    assert audio.detect_encoding(data) == Encoding.AAC
    decoded = decode(data, AudioSpec(Encoding.AAC, 16000, 1))
    assert decoded.sample_rate_hz == 16000
    assert similarity(decoded.samples, 16000, samples, 16000) > 0.95


def test_an_mp3_with_an_id3_tag_is_detected_and_decoded() -> None:
    data = encode(sweep(16000), 16000, AudioSpec(Encoding.MP3))
    assert data[:3] == b"ID3"  # the muxer tags its files
    tag_size = audio._after_id3(data)
    assert audio.detect_encoding(data[tag_size:]) == Encoding.MP3
    assert decode(data[tag_size:], AudioSpec(Encoding.MP3)).duration_s > 0.9


def test_detection_knows_every_container_and_nothing_else() -> None:
    samples = sweep(16000, 0.2)
    for encoding in [Encoding.WAV, Encoding.FLAC, Encoding.OGG_OPUS, *LOSSY]:
        assert audio.detect_encoding(encode(samples, 16000, AudioSpec(encoding))) == encoding
    rng = np.random.default_rng(1)
    for _ in range(20):
        assert audio.detect_encoding(rng.integers(0, 256, 3000, np.uint8).tobytes()) is None
    assert audio.detect_encoding(encode(samples, 16000, AudioSpec(Encoding.PCM_S16LE))) is None


@pytest.mark.parametrize("encoding", LOSSY)
def test_streamed_lossy_audio_leaves_as_it_is_made_and_decodes(encoding: Encoding) -> None:
    rate = audio.codec_rate_hz(encoding, 24000)
    samples = sweep(rate, 2.0)
    encoder = StreamEncoder(encoding, rate)
    step = rate // 10
    pieces = [encoder.encode(samples[i : i + step]) for i in range(0, len(samples), step)]
    pieces.append(encoder.finish())
    # Bytes leave while the audio is still coming, not all at the end.
    assert sum(1 for piece in pieces[:-1] if piece) >= len(pieces) // 2
    streamed = decode(b"".join(pieces), AudioSpec(encoding))
    whole = decode(encode(samples, rate, AudioSpec(encoding)), AudioSpec(encoding))
    assert streamed.sample_rate_hz == whole.sample_rate_hz
    assert abs(streamed.duration_s - whole.duration_s) < 0.1
    assert similarity(streamed.samples, streamed.sample_rate_hz, samples, rate) > 0.95


@pytest.mark.parametrize("encoding", [Encoding.MP3, Encoding.AAC, Encoding.WEBM_OPUS])
def test_a_stream_needs_a_rate_its_codec_takes(encoding: Encoding) -> None:
    with pytest.raises(ValueError, match="cannot run at 23000 Hz"):
        StreamEncoder(encoding, 23000)


@pytest.mark.parametrize("encoding", LOSSY)
def test_garbage_is_invalid_argument_naming_the_format(encoding: Encoding) -> None:
    label = LABELS[encoding]
    rng = np.random.default_rng(0)
    garbage = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    valid = encode(sweep(16000), 16000, AudioSpec(encoding))
    for data in [garbage, valid[:200] + garbage, valid[:12], valid[:60]]:
        with pytest.raises(InvalidArgument) as excinfo:
            decode(data, AudioSpec(encoding), field="file")
        violation = excinfo.value.violations[0]
        assert violation.field == "file"
        assert f"{label} audio" in violation.description


@pytest.mark.parametrize("encoding", LOSSY)
def test_a_file_cut_anywhere_decodes_or_is_invalid_argument(encoding: Encoding) -> None:
    valid = encode(sweep(16000), 16000, AudioSpec(encoding))
    for cut in range(1, len(valid), max(1, len(valid) // 37)):
        try:
            decoded = decode(valid[:cut], AudioSpec(encoding))
        except InvalidArgument as error:
            assert LABELS[encoding] in error.violations[0].description
        else:
            assert np.isfinite(decoded.samples).all()


def test_another_container_is_named() -> None:
    wav = encode(sweep(16000), 16000, AudioSpec(Encoding.WAV))
    with pytest.raises(InvalidArgument, match="expected MP3 audio but got WAV"):
        decode(wav, AudioSpec(Encoding.MP3))
    mp3 = encode(sweep(16000), 16000, AudioSpec(Encoding.MP3))
    with pytest.raises(InvalidArgument, match="expected Ogg/Vorbis audio but got MP3"):
        decode(mp3, AudioSpec(Encoding.OGG_VORBIS))
    opus = encode(sweep(16000), 16000, AudioSpec(Encoding.OGG_OPUS))
    with pytest.raises(InvalidArgument, match="expected Ogg/Vorbis audio but got Ogg/Opus"):
        decode(opus, AudioSpec(Encoding.OGG_VORBIS))


@pytest.mark.parametrize("encoding", LOSSY)
def test_a_header_that_disagrees_with_the_format_is_rejected(encoding: Encoding) -> None:
    data = encode(sweep(16000), 16000, AudioSpec(encoding))
    with pytest.raises(InvalidArgument, match="44100 Hz"):
        decode(data, AudioSpec(encoding, 44100))
    with pytest.raises(InvalidArgument, match="channel"):
        decode(data, AudioSpec(encoding, 0, 3))
    # What a response's format says describes the file (Vorbis: mono on two channels).
    rate = audio.output_rate_hz(16000, AudioSpec(encoding))
    assert decode(data, AudioSpec(encoding, rate, 1)).duration_s > 0.9


@pytest.mark.parametrize("encoding", LOSSY)
def test_max_duration_is_enforced_while_decoding(encoding: Encoding) -> None:
    data = encode(sweep(16000, 2.0), 16000, AudioSpec(encoding))
    with pytest.raises(LimitExceeded):
        decode(data, AudioSpec(encoding), max_duration_s=1.0)
    assert decode(data, AudioSpec(encoding), max_duration_s=3.0).duration_s >= 2.0
