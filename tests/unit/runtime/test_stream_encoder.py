"""runtime.audio.StreamEncoder: pieces encoded one by one form one valid stream."""

from __future__ import annotations

import numpy as np
import pytest

from speechmesh.runtime.audio import AudioSpec, Encoding, StreamEncoder, decode, encode


def speechlike(rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.4 * np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)


def streamed(encoding: Encoding, samples: np.ndarray, rate: int, sizes: list[int]) -> list[bytes]:
    encoder = StreamEncoder(encoding, rate)
    out, start = [], 0
    for size in sizes:
        out.append(encoder.encode(samples[start : start + size]))
        start += size
    out.append(encoder.encode(samples[start:]))
    out.append(encoder.finish())
    return out


@pytest.mark.parametrize("encoding", [Encoding.PCM_S16LE, Encoding.PCM_F32LE, Encoding.MULAW])
def test_raw_streams_are_the_whole_encoding_cut_anywhere(encoding):
    samples = speechlike(16000)
    pieces = streamed(encoding, samples, 16000, [1, 999, 0, 4000])
    assert b"".join(pieces) == encode(samples, 16000, AudioSpec(encoding, 16000))


def test_a_streamed_wav_says_its_size_is_unknown_and_decodes_to_every_sample():
    samples = speechlike(22050)
    pieces = streamed(Encoding.WAV, samples, 22050, [500, 7000])
    assert pieces[0][4:8] == b"\xff\xff\xff\xff" and pieces[0][40:44] == b"\xff\xff\xff\xff"
    decoded = decode(b"".join(pieces), AudioSpec(Encoding.WAV))
    whole = decode(encode(samples, 22050, AudioSpec(Encoding.WAV)), AudioSpec(Encoding.WAV))
    assert decoded.sample_rate_hz == 22050
    np.testing.assert_array_equal(decoded.samples, whole.samples)


def test_a_streamed_flac_without_a_length_decodes_losslessly():
    samples = speechlike(22050)
    pieces = streamed(Encoding.FLAC, samples, 22050, [3000, 3000, 10000])
    assert all(pieces[:3]), "bytes leave before the end"
    decoded = decode(b"".join(pieces), AudioSpec(Encoding.FLAC))
    whole = decode(encode(samples, 22050, AudioSpec(Encoding.FLAC)), AudioSpec(Encoding.FLAC))
    assert decoded.sample_rate_hz == 22050
    np.testing.assert_array_equal(decoded.samples, whole.samples)


def test_a_streamed_opus_sends_pages_as_it_goes_and_keeps_the_signal():
    samples = speechlike(24000, 2.0)
    pieces = streamed(Encoding.OGG_OPUS, samples, 24000, [4800] * 9)
    assert sum(1 for piece in pieces[:9] if piece) >= 8
    decoded = decode(b"".join(pieces), AudioSpec(Encoding.OGG_OPUS))
    assert decoded.sample_rate_hz == 48000
    assert abs(len(decoded.samples) - 2 * len(samples)) <= 2 * 960
    reference = np.repeat(samples, 2)[: len(decoded.samples)]
    lag = int(np.argmax(np.correlate(decoded.samples[:9600], reference[:9600], "full"))) - 9599
    aligned = decoded.samples[max(lag, 0) :][: len(reference) - 4800]
    correlation = np.corrcoef(aligned, reference[: len(aligned)])[0, 1]
    assert correlation > 0.95


def test_an_opus_stream_needs_an_opus_rate():
    with pytest.raises(ValueError, match="Opus"):
        StreamEncoder(Encoding.OGG_OPUS, 22050)
