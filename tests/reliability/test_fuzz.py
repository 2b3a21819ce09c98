"""Property-based fuzzing of what every request goes through before a model sees it:
audio formats and bytes, streamed chunks, float options, VAD options and segmentation,
text checks and splitting, and the gateway's routing parse. Each input has one of the
documented outcomes: a value that keeps the documented promises, or one of our typed
errors naming the field (INVALID_ARGUMENT, RESOURCE_EXHAUSTED). Any other exception
would reach a client as INTERNAL.
"""

from __future__ import annotations

import itertools
import math
from functools import cache

import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from speechmesh.audio.v1 import audio_pb2
from speechmesh.gateway.proxy import routes
from speechmesh.runtime import audio as audio_io
from speechmesh.runtime.audio import AudioSpec, Encoding, StreamDecoder
from speechmesh.runtime.errors import InvalidArgument, LimitExceeded
from speechmesh.runtime.numbers import number_option
from speechmesh.runtime.text import split_text
from speechmesh.services.tts.servicer import check_text
from speechmesh.services.vad.segmentation.params import vad_params
from speechmesh.services.vad.segmentation.segmenter import EventKind, Segmenter
from speechmesh.vad.v1 import vad_pb2

# Bounded: the quick suite runs these; the seeds differ from run to run.
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REAL_ENCODINGS = [e for e in Encoding if e != Encoding.UNSPECIFIED]
CONTAINERS = [e for e in REAL_ENCODINGS if e not in audio_io.RAW_ENCODINGS]
STREAMABLE = sorted(audio_io.STREAMABLE_ENCODINGS)
RATE = 16000


def invalid_field(error: InvalidArgument) -> str:
    return error.violations[0].field


# --- Audio formats and bytes ----------------------------------------------------------


@FUZZ
@given(
    encoding=st.integers(-3, 40),
    rate=st.one_of(st.integers(0, 200_000), st.integers(0, 2**32 - 1)),
    channels=st.integers(0, 2**32 - 1),
    for_output=st.booleans(),
)
def test_any_audio_format_is_a_spec_or_names_its_field(encoding, rate, channels, for_output):
    fmt = audio_pb2.AudioFormat(encoding=encoding, sample_rate_hz=rate, channels=channels)
    try:
        spec = AudioSpec.from_proto(fmt, "x.format", for_output=for_output)
    except InvalidArgument as error:
        assert invalid_field(error).startswith("x.format."), invalid_field(error)
        return
    assert spec.encoding == encoding and spec.channels <= audio_io.MAX_CHANNELS
    if spec.sample_rate_hz:
        assert audio_io.MIN_SAMPLE_RATE_HZ <= spec.sample_rate_hz <= audio_io.MAX_SAMPLE_RATE_HZ
    elif spec.is_raw:
        assert for_output


def check_decoded(data: bytes, spec: AudioSpec, max_s: float | None) -> None:
    """decode's outcomes: mono finite float32 within the limit, or a typed error."""
    try:
        decoded = audio_io.decode(data, spec, "audio.data", max_duration_s=max_s)
    except InvalidArgument as error:
        assert invalid_field(error).startswith("audio.data"), invalid_field(error)
        return
    except LimitExceeded as error:
        assert error.limit == "max_audio_seconds" and max_s is not None
        return
    samples = decoded.samples
    assert samples.dtype == np.float32 and samples.ndim == 1 and len(samples) > 0
    assert np.isfinite(samples).all()
    assert decoded.sample_rate_hz > 0
    if max_s is not None:
        # Lossy decoders may run a frame past the limit before they stop.
        assert decoded.duration_s <= max_s + 0.2, (decoded.duration_s, max_s)


def spec_for(encoding: Encoding, rate: int = RATE) -> AudioSpec:
    return AudioSpec(encoding, rate if encoding in audio_io.RAW_ENCODINGS else 0)


limits = st.one_of(st.none(), st.floats(0.01, 5.0))


@FUZZ
@given(encoding=st.sampled_from(REAL_ENCODINGS), data=st.binary(max_size=4096), max_s=limits)
def test_any_bytes_in_any_encoding_decode_or_are_refused(encoding, data, max_s):
    check_decoded(data, spec_for(encoding), max_s)


@cache
def real_file(encoding: Encoding) -> bytes:
    """A quarter second of a tone, really encoded: the start of every damaged file."""
    t = np.arange(RATE // 4) / RATE
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return audio_io.encode(tone, RATE, AudioSpec(encoding, RATE))


@st.composite
def damaged(draw: st.DrawFn) -> tuple[Encoding, bytes]:
    """A real file cut short, with bytes overwritten, or with junk spliced in."""
    encoding = draw(st.sampled_from(CONTAINERS))
    data = bytearray(real_file(encoding))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["cut", "overwrite", "insert"]))
        if kind == "cut":
            data = data[:where]
        elif kind == "overwrite":
            junk = draw(st.binary(min_size=1, max_size=16))
            data[where : where + len(junk)] = junk
        else:
            data[where:where] = draw(st.binary(min_size=1, max_size=64))
    return encoding, bytes(data)


@FUZZ
@given(file=damaged(), max_s=limits)
def test_damaged_files_decode_or_are_refused(file, max_s):
    encoding, data = file
    check_decoded(data, spec_for(encoding), max_s)


@FUZZ
@given(data=st.binary(max_size=2048))
def test_encoding_detection_never_fails(data):
    found = audio_io.detect_encoding(data)
    assert found is None or isinstance(found, Encoding)


# --- Streamed chunks --------------------------------------------------------------------


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def stream_decode(spec: AudioSpec, chunks: list[bytes], target: int | None) -> np.ndarray:
    decoder = StreamDecoder(spec, target_rate_hz=target)
    parts = [decoder.feed(chunk) for chunk in chunks]
    parts.append(decoder.flush())
    return np.concatenate(parts)


@FUZZ
@given(
    encoding=st.sampled_from(STREAMABLE),
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(0, 3000), max_size=12),
    target=st.sampled_from([None, 8000, 16000, 24000]),
)
def test_any_stream_bytes_in_any_chunking_decode_or_are_refused(encoding, data, cuts, target):
    try:
        samples = stream_decode(spec_for(encoding), chunked(data, cuts), target)
    except InvalidArgument as error:
        assert invalid_field(error).split(".")[0] in ("audio", "config"), invalid_field(error)
        return
    assert samples.dtype == np.float32 and np.isfinite(samples).all()


@FUZZ
@given(
    encoding=st.sampled_from(sorted(audio_io.RAW_ENCODINGS)),
    frames=st.integers(0, 2000),
    cuts=st.lists(st.integers(0, 8000), max_size=12),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_streamed_sample_is_counted_however_it_is_chunked(encoding, frames, cuts, seed):
    """The sample accounting of every audio stream: samples_in counts each whole frame
    sent, and the samples equal the whole-file decode bit for bit."""
    spec = spec_for(encoding)
    noise = np.random.default_rng(seed).uniform(-1, 1, frames).astype(np.float32)
    data = audio_io.encode(noise, RATE, spec) if frames else b""
    decoder = StreamDecoder(spec)
    parts = [decoder.feed(chunk) for chunk in chunked(data, cuts)]
    parts.append(decoder.flush())
    assert decoder.samples_in == frames
    if frames:
        whole = audio_io.decode(data, spec).samples
        np.testing.assert_array_equal(np.concatenate(parts), whole)


# --- Float options --------------------------------------------------------------------

bounds = st.one_of(st.none(), st.floats(-1e6, 1e6))


@FUZZ
@given(
    value=st.floats(allow_nan=True, allow_infinity=True),
    at_least=bounds,
    above=bounds,
    at_most=bounds,
    below=bounds,
)
def test_a_float_option_is_within_its_bounds_or_names_its_field(
    value, at_least, above, at_most, below
):
    try:
        got = number_option(
            value, "options.x", at_least=at_least, above=above, at_most=at_most, below=below
        )
    except InvalidArgument as error:
        assert invalid_field(error) == "options.x"
        assert "finite number" in error.violations[0].description
        return
    assert math.isfinite(got) and got == value
    assert at_least is None or got >= at_least
    assert above is None or got > above
    assert at_most is None or got <= at_most
    assert below is None or got < below


# --- VAD options and the segments they make ---------------------------------------------

wild_floats = st.floats(allow_nan=True, allow_infinity=True, width=32)
wild_ms = st.integers(0, 2**31 - 1)
# Half the options drawn where settings are plausible, so most runs reach the segmenter.
OPTION_VALUES = {
    "threshold": st.one_of(st.floats(0.0625, 0.9375, width=32), wild_floats),
    "negative_threshold": st.one_of(st.floats(0.015625, 0.875, width=32), wild_floats),
    "min_speech_duration_ms": st.one_of(st.integers(0, 1000), wild_ms),
    "min_silence_duration_ms": st.one_of(st.integers(0, 1000), wild_ms),
    "speech_pad_ms": st.one_of(st.integers(0, 500), wild_ms),
    "max_speech_duration_s": st.one_of(st.floats(0, 20, width=32), wild_floats),
}


@st.composite
def vad_options(draw: st.DrawFn) -> vad_pb2.VadOptions:
    chosen = draw(st.sets(st.sampled_from(sorted(OPTION_VALUES))))
    return vad_pb2.VadOptions(**{name: draw(OPTION_VALUES[name]) for name in chosen})


# Speech-like probabilities: runs of windows around one level each.
runs = st.lists(st.tuples(st.floats(0, 1), st.integers(1, 80)), max_size=12)


@FUZZ
@given(options=vad_options(), levels=runs, rate=st.sampled_from([8000, 16000]))
def test_vad_options_are_refused_or_give_segments_inside_the_audio(options, levels, rate):
    """Every segment lies inside the audio, after the one before it, and every segment
    that starts also ends."""
    try:
        params = vad_params(options)
    except InvalidArgument as error:
        assert invalid_field(error).startswith("options."), invalid_field(error)
        event("options refused")
        return
    window = 512 if rate == 16000 else 256
    segmenter = Segmenter(params, rate, window)
    probabilities = [level for level, count in levels for _ in range(count)]
    events = [e for p in probabilities for e in segmenter.push(p)]
    total = len(probabilities) * window
    events += segmenter.finish(total)
    ends = [e for e in events if e.kind == EventKind.END]
    event("segments found" if ends else "no segment")
    previous_end = 0
    for end in ends:
        assert previous_end <= end.start < end.end <= total, (end, total)
        previous_end = end.end
    starts = [e.start for e in events if e.kind == EventKind.START]
    assert starts == [e.start for e in ends]
    if params.max_speech_s > 0:
        longest = params.max_speech_s * rate + window  # cut within a window of the limit
        assert all(e.end - e.start <= longest for e in ends), (ends, longest)


# --- Text ---------------------------------------------------------------------------------


@FUZZ
@given(text=st.text(max_size=300), limit=st.integers(1, 400))
def test_text_is_accepted_or_names_its_field(text, limit):
    try:
        check_text(text, "requests[3].text", limit)
    except InvalidArgument as error:
        assert invalid_field(error) == "requests[3].text"
        return
    assert text.strip() and len(text) <= limit


@FUZZ
@given(text=st.text(max_size=400), max_chars=st.integers(1, 120))
def test_any_text_splits_into_pieces_that_are_its_own_characters(text, max_chars):
    pieces = split_text(text, max_chars)
    end = 0
    for index, piece in enumerate(pieces):
        assert piece.index == index and piece.text
        assert piece.text == text[piece.start_char : piece.end_char]
        assert piece.start_char >= end
        end = piece.end_char
    # Nothing but white space is left out.
    covered = "".join(p.text for p in pieces)
    assert "".join(text.split()) == "".join(covered.split())


# --- The gateway's routing parse -------------------------------------------------------

ROUTES = list(routes().values())


@FEW
@given(route=st.sampled_from(ROUTES), raw=st.binary(max_size=256))
def test_the_gateway_reads_a_model_from_any_bytes_or_refuses_them(route, raw):
    """What the gateway parses of a request it forwards: the model id, or an error the
    interceptor maps to INVALID_ARGUMENT (a DecodeError or a config-first violation)."""
    try:
        model = route.model_of(raw)
    except DecodeError:
        return
    except InvalidArgument as error:
        assert route.request_streaming and invalid_field(error) == "config"
        return
    assert isinstance(model, str)


@pytest.mark.parametrize("encoding", CONTAINERS, ids=lambda e: e.name)
def test_the_damaged_files_start_from_real_files(encoding):
    """The fuzzing above damages files that decode when whole."""
    decoded = audio_io.decode(real_file(encoding), spec_for(encoding))
    # (AAC adds its encoder delay and pads to whole frames)
    assert decoded.duration_s == pytest.approx(0.25, abs=0.1)
