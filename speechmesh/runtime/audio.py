"""Decodes, encodes and resamples audio: the one place the mesh turns bytes into samples.

Everything inside the mesh is mono float32 in [-1, 1]. `decode` turns a whole piece of
audio in any `AudioEncoding` into that, `StreamDecoder` does the same for a stream fed
in chunks of any size, `resample` changes the rate (soxr) and `encode` turns samples
back into bytes. Bad input raises `InvalidArgument` naming the field; no library
exception escapes.

Libraries: soundfile (WAV, FLAC), PyAV (Ogg/Opus, MP3, AAC, Ogg/Vorbis, WebM/Opus: it
bundles FFmpeg's codecs, no ffmpeg binary is needed), soxr (resampling), numpy (raw PCM
and G.711 mu-law). `detect_encoding` tells the container of a file from its first bytes.
"""

from __future__ import annotations

import asyncio
import enum
import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from speechmesh.audio.v1 import audio_pb2
from speechmesh.runtime import admission
from speechmesh.runtime.errors import InvalidArgument, LimitExceeded, SpeechmeshError

Samples = npt.NDArray[np.float32]

MIN_SAMPLE_RATE_HZ = 1000
MAX_SAMPLE_RATE_HZ = 384000
MAX_CHANNELS = 32

# Opus runs at one of these rates only; `encode` picks the closest one that keeps the
# whole bandwidth (see `opus_rate_hz`). Decoding always yields 48 kHz.
OPUS_RATES_HZ = (8000, 12000, 16000, 24000, 48000)
OPUS_DECODE_RATE_HZ = 48000
# Mono speech is transparent well below this; it is libopus' own default for mono.
OPUS_BITRATE = 64000

# A WAV stream's header (RIFF, fmt and any LIST/bext chunks before "data") is buffered
# until complete; past this size it is not a header but a misuse of the format.
MAX_WAV_HEADER_BYTES = 1 << 20

RESAMPLE_QUALITY = "HQ"

_EMPTY: Samples = np.zeros(0, dtype=np.float32)

# libsndfile's frame count for a file whose header does not say its length (a FLAC
# written by a streaming encoder stores 0 samples, which it reports as SF_COUNT_MAX).
_UNKNOWN_FRAMES = 1 << 62


class Encoding(enum.IntEnum):
    """speechmesh.audio.v1.AudioEncoding, with the same numbers and shorter names."""

    UNSPECIFIED = 0
    PCM_S16LE = 1
    PCM_F32LE = 2
    WAV = 3
    FLAC = 4
    OGG_OPUS = 5
    MULAW = 6
    MP3 = 7
    AAC = 8
    OGG_VORBIS = 9
    WEBM_OPUS = 10


RAW_ENCODINGS = frozenset({Encoding.PCM_S16LE, Encoding.PCM_F32LE, Encoding.MULAW})
STREAMABLE_ENCODINGS = RAW_ENCODINGS | {Encoding.WAV}

_LABELS = {
    Encoding.WAV: "WAV",
    Encoding.FLAC: "FLAC",
    Encoding.OGG_OPUS: "Ogg/Opus",
    Encoding.MP3: "MP3",
    Encoding.AAC: "AAC",
    Encoding.OGG_VORBIS: "Ogg/Vorbis",
    Encoding.WEBM_OPUS: "WebM/Opus",
}
# libsndfile's names for what it found in a file, per encoding we expect there.
_SOUNDFILE_FORMATS = {Encoding.WAV: {"WAV", "WAVEX", "RF64"}, Encoding.FLAC: {"FLAC"}}


def _allowed_encodings() -> str:
    return ", ".join(e.name for e in Encoding if e != Encoding.UNSPECIFIED)


def _check_rate(rate_hz: int, field: str) -> None:
    if not MIN_SAMPLE_RATE_HZ <= rate_hz <= MAX_SAMPLE_RATE_HZ:
        raise InvalidArgument(
            field,
            f"sample rate {rate_hz} Hz is outside the allowed range "
            f"{MIN_SAMPLE_RATE_HZ}..{MAX_SAMPLE_RATE_HZ} Hz",
        )


@dataclass(frozen=True)
class AudioSpec:
    """How audio bytes are encoded. For containers 0 means "as in the header";
    for raw encodings channels 0 means 1, and sample_rate_hz 0 is only meaningful as
    an output spec ("keep the input's rate")."""

    encoding: Encoding
    sample_rate_hz: int = 0
    channels: int = 0

    def __post_init__(self) -> None:
        # Programming errors, not client errors: from_proto reports those by field.
        if not isinstance(self.encoding, Encoding) or self.encoding == Encoding.UNSPECIFIED:
            raise ValueError(f"AudioSpec needs a real Encoding, got {self.encoding!r}")
        if self.sample_rate_hz < 0 or self.channels < 0:
            raise ValueError(f"negative sample rate or channel count in {self!r}")

    @property
    def is_raw(self) -> bool:
        return self.encoding in RAW_ENCODINGS

    @classmethod
    def from_proto(
        cls, fmt: audio_pb2.AudioFormat, field: str = "format", *, for_output: bool = False
    ) -> AudioSpec:
        """Validates a client's AudioFormat; errors name f"{field}.<member>".

        With for_output, a raw encoding may leave sample_rate_hz at 0 to get the
        producer's own rate (see `output_rate_hz`).
        """
        try:
            encoding = Encoding(fmt.encoding)
        except ValueError:
            encoding = Encoding.UNSPECIFIED
        if encoding == Encoding.UNSPECIFIED:
            raise InvalidArgument(
                f"{field}.encoding",
                f"encoding {fmt.encoding} is not set or unknown; allowed: {_allowed_encodings()}",
            )
        rate = fmt.sample_rate_hz
        if encoding in RAW_ENCODINGS and rate == 0 and not for_output:
            raise InvalidArgument(
                f"{field}.sample_rate_hz",
                f"{encoding.name} audio needs a sample rate in "
                f"{MIN_SAMPLE_RATE_HZ}..{MAX_SAMPLE_RATE_HZ} Hz",
            )
        if rate != 0:
            _check_rate(rate, f"{field}.sample_rate_hz")
        channels = fmt.channels
        if channels > MAX_CHANNELS:
            raise InvalidArgument(
                f"{field}.channels", f"{channels} channels; at most {MAX_CHANNELS} are allowed"
            )
        if encoding in RAW_ENCODINGS and channels == 0:
            channels = 1
        return cls(encoding, rate, channels)


@dataclass
class DecodedAudio:
    """Mono float32 samples, shape [n], at their own rate."""

    samples: Samples
    sample_rate_hz: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate_hz


# --- G.711 mu-law --------------------------------------------------------------------

_MULAW_BIAS = 0x84
_MULAW_CLIP = 32635  # largest magnitude that still fits the top segment after the bias


def _mulaw_decode_table() -> npt.NDArray[np.int16]:
    """The linear value of each of the 256 mu-law codes."""
    code = ~np.arange(256, dtype=np.uint8)  # codes are stored with all bits inverted
    exponent = (code >> 4) & 0x07
    mantissa = (code & 0x0F).astype(np.int32)
    magnitude = ((mantissa << 3) + _MULAW_BIAS) << exponent
    linear = np.where(code & 0x80, _MULAW_BIAS - magnitude, magnitude - _MULAW_BIAS)
    return linear.astype(np.int16)


def _mulaw_encode_table() -> npt.NDArray[np.uint8]:
    """The mu-law code of every int16 value, indexed by the value's uint16 bit pattern."""
    linear = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    sign = np.where(linear < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(linear), _MULAW_CLIP) + _MULAW_BIAS
    # The segment is the position of the highest set bit above bit 7: frexp gives it exactly.
    _, top_bit = np.frexp((magnitude >> 7).astype(np.float64))
    exponent = top_bit.astype(np.int32) - 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    codes: npt.NDArray[np.uint8] = (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)
    return codes


# Built once: lookups make both directions one vectorised indexing operation.
_MULAW_TO_LINEAR = _mulaw_decode_table()
_LINEAR_TO_MULAW = _mulaw_encode_table()


def mulaw_to_linear(codes: npt.NDArray[np.uint8]) -> npt.NDArray[np.int16]:
    """G.711 mu-law bytes to 16-bit linear PCM (0xFF -> 0, 0x00 -> -32124)."""
    return _MULAW_TO_LINEAR[codes]


def linear_to_mulaw(linear: npt.NDArray[np.int16]) -> npt.NDArray[np.uint8]:
    """16-bit linear PCM to G.711 mu-law bytes (bias 0x84, clip 32635, bits inverted)."""
    return _LINEAR_TO_MULAW[linear.view(np.uint16)]


# --- Raw sample layouts ----------------------------------------------------------------

# Sample kinds: the raw encodings plus what a WAV "fmt " chunk may describe.
_SAMPLE_WIDTH = {"u8": 1, "s16": 2, "s24": 3, "s32": 4, "f32": 4, "mulaw": 1}
_RAW_KIND = {Encoding.PCM_S16LE: "s16", Encoding.PCM_F32LE: "f32", Encoding.MULAW: "mulaw"}


def _s24_to_float(data: bytes) -> Samples:
    triplets = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
    value = triplets[:, 0] | (triplets[:, 1] << 8) | (triplets[:, 2] << 16)
    value = (value << 8) >> 8  # sign-extend the 24-bit value
    return value.astype(np.float32) * np.float32(2.0**-23)


# Full-scale integers map to [-1, 1) by dividing by 2**(bits-1), as libsndfile does, so a
# streamed WAV gives the very same floats as a decoded one.
_TO_FLOAT: dict[str, Callable[[bytes], Samples]] = {
    "u8": lambda d: (np.frombuffer(d, np.uint8).astype(np.float32) - 128) * np.float32(2.0**-7),
    "s16": lambda d: np.frombuffer(d, "<i2").astype(np.float32) * np.float32(2.0**-15),
    "s24": _s24_to_float,
    "s32": lambda d: np.frombuffer(d, "<i4").astype(np.float32) * np.float32(2.0**-31),
    "f32": lambda d: np.frombuffer(d, "<f4").astype(np.float32),
    "mulaw": lambda d: (
        mulaw_to_linear(np.frombuffer(d, np.uint8)).astype(np.float32) * np.float32(2.0**-15)
    ),
}


@dataclass(frozen=True)
class _RawLayout:
    kind: str
    channels: int

    @property
    def frame_bytes(self) -> int:
        return _SAMPLE_WIDTH[self.kind] * self.channels


def _raw_layout(spec: AudioSpec) -> _RawLayout:
    if spec.sample_rate_hz == 0:
        raise ValueError(f"raw audio needs a sample rate: {spec!r}")
    return _RawLayout(_RAW_KIND[spec.encoding], spec.channels or 1)


def _to_mono(frames: npt.NDArray[np.float32], channels: int) -> Samples:
    """Averages interleaved channels ([n * channels] or [n, channels]) to [n]."""
    if channels == 1:
        return frames.reshape(-1)
    mono: Samples = frames.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return mono


def _decode_pcm(data: bytes, layout: _RawLayout) -> Samples:
    """Whole frames of raw samples to mono float32."""
    return _to_mono(_TO_FLOAT[layout.kind](data), layout.channels)


# --- Decoding ----------------------------------------------------------------------------


def _check_duration(frames: int, rate_hz: int, max_duration_s: float | None) -> None:
    if max_duration_s is not None and frames > max_duration_s * rate_hz:
        raise LimitExceeded("max_audio_seconds", max_duration_s, round(frames / rate_hz, 3), "s")


# Containers whose demuxer knows the length from the stream's own timestamps (Ogg's last
# granule position, WebM's Duration), not from a bitrate guess as with MP3 and AAC.
_DECLARED_LENGTH = frozenset({Encoding.OGG_OPUS, Encoding.OGG_VORBIS, Encoding.WEBM_OPUS})
# What a declared length may exceed the audio by (Opus pre-skip, last-page rounding).
_DECLARED_SLACK_S = 0.1


def _check_declared_duration(
    container: Any, encoding: Encoding, max_duration_s: float | None
) -> None:
    """Refuses, before decoding anything, a file whose container says it is too long: a
    megabyte of Opus silence holds an hour, which would decode to gigabytes."""
    if max_duration_s is None or encoding not in _DECLARED_LENGTH or not container.duration:
        return
    declared_s = container.duration / 1e6  # PyAV gives microseconds
    if declared_s > max_duration_s + _DECLARED_SLACK_S:
        raise LimitExceeded("max_audio_seconds", max_duration_s, round(declared_s, 3), "s")


def _check_header(spec: AudioSpec, rate_hz: int, channels: int, field: str) -> None:
    """A container's header is the truth; a spec that says otherwise is a client bug."""
    label = _LABELS[spec.encoding]
    if spec.sample_rate_hz and spec.sample_rate_hz != rate_hz:
        raise InvalidArgument(
            field,
            f"the {label} header says {rate_hz} Hz but the format says {spec.sample_rate_hz} Hz",
        )
    if spec.channels and spec.channels != channels:
        raise InvalidArgument(
            field,
            f"the {label} header says {channels} channel(s) but the format says {spec.channels}",
        )


def _library_reason(error: Exception) -> str:
    """The short cause of a soundfile/PyAV error, without file-object reprs."""
    reason = getattr(error, "error_string", None) or getattr(error, "strerror", None)
    return str(reason) if reason else type(error).__name__


def _decode_soundfile(
    data: bytes, spec: AudioSpec, field: str, max_duration_s: float | None
) -> DecodedAudio:
    with sf.SoundFile(io.BytesIO(data)) as f:
        if f.format not in _SOUNDFILE_FORMATS[spec.encoding]:
            raise InvalidArgument(
                field, f"expected {_LABELS[spec.encoding]} audio but got {f.format}"
            )
        _check_header(spec, f.samplerate, f.channels, field)
        if f.frames == 0 and spec.encoding == Encoding.WAV:
            # Written by a streaming writer that never patched the sizes: read it raw.
            return _decode_wav_unknown_length(data, field, max_duration_s)
        if f.frames >= _UNKNOWN_FRAMES:
            # A FLAC stream whose writer could not go back to fill in its length.
            return _decode_flac_stream(data, max_duration_s)
        _check_duration(f.frames, f.samplerate, max_duration_s)
        frames = f.read(dtype="float32", always_2d=True)
        return DecodedAudio(_to_mono(frames, f.channels), f.samplerate)


def _decode_flac_stream(data: bytes, max_duration_s: float | None) -> DecodedAudio:
    """A FLAC without a length in its header, which libsndfile cannot read to the end."""
    with av.open(io.BytesIO(data), mode="r", format="flac") as container:
        stream = container.streams.audio[0]
        rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
        pieces: list[Samples] = []
        total = 0
        for frame in container.decode(stream):
            array = frame.to_ndarray()
            # FFmpeg decodes 16-bit FLAC to s16 and deeper ones to left-aligned s32.
            bits = 16 if array.dtype == np.int16 else 32
            floats = array.astype(np.float32) * np.float32(2.0 ** (1 - bits))
            mono = floats.mean(axis=0) if frame.format.is_planar else _to_mono(floats, channels)
            pieces.append(mono.astype(np.float32, copy=False))
            total += len(mono)
            _check_duration(total, rate, max_duration_s)
    return DecodedAudio(np.concatenate(pieces) if pieces else _EMPTY, rate)


def _decode_wav_unknown_length(
    data: bytes, field: str, max_duration_s: float | None
) -> DecodedAudio:
    header = _parse_wav_header(data, field)
    if header is None:
        raise InvalidArgument(field, "the WAV header is incomplete")
    payload = data[header.data_offset :]
    whole = len(payload) // header.layout.frame_bytes * header.layout.frame_bytes
    _check_duration(whole // header.layout.frame_bytes, header.sample_rate_hz, max_duration_s)
    return DecodedAudio(_decode_pcm(payload[:whole], header.layout), header.sample_rate_hz)


def _opus_input_rate(extradata: bytes | None) -> int | None:
    """The original rate recorded in the OpusHead (informational; decoding is 48 kHz)."""
    if extradata and len(extradata) >= 16 and extradata.startswith(b"OpusHead"):
        return int(struct.unpack_from("<I", extradata, 12)[0])
    return None


def _decode_opus(
    data: bytes, spec: AudioSpec, field: str, max_duration_s: float | None
) -> DecodedAudio:
    with av.open(io.BytesIO(data), mode="r", format="ogg") as container:
        if not container.streams.audio:
            raise InvalidArgument(field, "expected Ogg/Opus audio but the Ogg holds no audio")
        stream = container.streams.audio[0]
        if stream.codec_context.name != "opus":
            raise InvalidArgument(
                field, f"expected Ogg/Opus audio but the Ogg holds {stream.codec_context.name}"
            )
        _check_declared_duration(container, spec.encoding, max_duration_s)
        channels = stream.codec_context.channels
        declared = spec.sample_rate_hz
        # Both the decode rate and the encoder's input rate describe an Opus file truly.
        if declared in (0, OPUS_DECODE_RATE_HZ, _opus_input_rate(stream.codec_context.extradata)):
            spec = AudioSpec(spec.encoding, 0, spec.channels)
        _check_header(spec, OPUS_DECODE_RATE_HZ, channels, field)
        pieces: list[Samples] = []
        total = 0
        for frame in container.decode(stream):
            array = frame.to_ndarray().astype(np.float32, copy=False)
            # Planar frames are [channels, n]; packed ones are [1, n * channels].
            mono = array.mean(axis=0) if frame.format.is_planar else _to_mono(array, channels)
            pieces.append(mono.astype(np.float32, copy=False))
            total += len(mono)
            _check_duration(total, OPUS_DECODE_RATE_HZ, max_duration_s)
    samples = np.concatenate(pieces) if pieces else _EMPTY
    return DecodedAudio(samples, OPUS_DECODE_RATE_HZ)


def _decode_raw(
    data: bytes, spec: AudioSpec, field: str, max_duration_s: float | None
) -> DecodedAudio:
    layout = _raw_layout(spec)
    if len(data) % layout.frame_bytes:
        raise InvalidArgument(
            field,
            f"{len(data)} bytes is not a whole number of {layout.frame_bytes}-byte frames "
            f"({layout.channels} channel(s) of {spec.encoding.name})",
        )
    _check_duration(len(data) // layout.frame_bytes, spec.sample_rate_hz, max_duration_s)
    return DecodedAudio(_decode_pcm(data, layout), spec.sample_rate_hz)


def _check_finite(samples: Samples, field: str) -> None:
    # Float input may hold NaN/inf, which would poison every model downstream.
    if not np.isfinite(samples).all():
        raise InvalidArgument(field, "audio holds NaN or infinite samples")


def decode(
    data: bytes,
    spec: AudioSpec,
    field: str = "audio.data",
    *,
    max_duration_s: float | None = None,
) -> DecodedAudio:
    """Whole audio in any encoding to mono float32 at its own rate (channels averaged).

    Ogg/Opus always decodes at 48 kHz. max_duration_s, when given, raises LimitExceeded
    before decoding wherever the duration is known up front (raw, WAV, FLAC, and the
    length an Ogg or WebM container records) and as soon as it is passed otherwise, so a
    small compressed file cannot blow up memory.
    """
    if not data:
        raise InvalidArgument(field, "audio is empty")
    if spec.is_raw:
        decoded = _decode_raw(data, spec, field, max_duration_s)
    else:
        decoded = _decode_container(data, spec, field, max_duration_s)
        if len(decoded.samples) == 0:
            raise InvalidArgument(field, f"the {_LABELS[spec.encoding]} audio holds no samples")
    _check_finite(decoded.samples, field)
    return decoded


async def decode_request_audio(
    audio: audio_pb2.Audio, field: str, max_duration_s: float | None
) -> DecodedAudio:
    """A request's whole Audio, decoded off the event loop; errors name f"{field}.*".

    The call holds the decoded audio until it ends (`admission.hold`): raw audio is
    charged before it is decoded, since its length is known; other encodings once
    decoded, max_duration_s bounding what one decode can make."""
    spec = AudioSpec.from_proto(audio.format, f"{field}.format")
    known_s = 0.0
    if spec.is_raw and audio.data and spec.sample_rate_hz:
        known_s = len(audio.data) / _raw_layout(spec).frame_bytes / spec.sample_rate_hz
        if max_duration_s is None or known_s <= max_duration_s:
            admission.hold(known_s)
        # (longer: decode refuses it by max_audio_seconds, the limit the client hit)
    decoded = await asyncio.to_thread(
        decode, audio.data, spec, f"{field}.data", max_duration_s=max_duration_s
    )
    if not spec.is_raw:
        admission.hold(decoded.duration_s)
    return decoded


def _decode_container(
    data: bytes, spec: AudioSpec, field: str, max_duration_s: float | None
) -> DecodedAudio:
    try:
        if spec.encoding == Encoding.OGG_OPUS:
            return _decode_opus(data, spec, field, max_duration_s)
        if spec.encoding in _AV_CODECS:
            return _decode_av(data, spec, field, max_duration_s)
        return _decode_soundfile(data, spec, field, max_duration_s)
    except SpeechmeshError:
        raise
    except Exception as error:
        # libsndfile and FFmpeg report corrupt input through many exception types; to a
        # client they all mean the same thing.
        raise InvalidArgument(
            field,
            f"expected {_LABELS[spec.encoding]} audio but could not decode it "
            f"({_library_reason(error)})",
        ) from error


# --- Lossy codecs through PyAV: MP3, AAC, Ogg/Vorbis, WebM/Opus -----------------------------

# The rates each encoder runs at, ascending; `codec_rate_hz` picks among them.
MP3_RATES_HZ: tuple[int, ...] = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
AAC_RATES_HZ: tuple[int, ...] = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100)
AAC_RATES_HZ += (48000, 64000, 88200, 96000)
# Mono speech at 64 kbit/s is well above what either codec needs to be transparent.
MP3_BITRATE = 64000
AAC_BITRATE = 64000


@dataclass(frozen=True)
class _AvCodec:
    """How PyAV writes and reads one lossy encoding."""

    encoder: str  # PyAV encoder
    muxer: str  # container format written
    decoders: frozenset[str]  # codec names accepted on input
    rates_hz: tuple[int, ...] | None  # what the encoder takes; None: any rate
    sample_format: str  # what the encoder takes
    channels: int = 1  # channels written (the mono signal on each)
    bit_rate: int | None = None
    codec_options: tuple[tuple[str, str], ...] = ()
    muxer_options: tuple[tuple[str, str], ...] = ()


_AV_CODECS = {
    Encoding.MP3: _AvCodec(
        "libmp3lame", "mp3", frozenset({"mp3", "mp3float"}), MP3_RATES_HZ, "fltp",
        bit_rate=MP3_BITRATE,
    ),
    Encoding.AAC: _AvCodec(
        "aac", "adts", frozenset({"aac"}), AAC_RATES_HZ, "fltp", bit_rate=AAC_BITRATE
    ),
    # FFmpeg's own Vorbis encoder (the only one PyAV bundles) is marked experimental and
    # writes stereo only, at any rate.
    Encoding.OGG_VORBIS: _AvCodec(
        "vorbis", "ogg", frozenset({"vorbis"}), None, "fltp", channels=2,
        codec_options=(("strict", "experimental"),),
        # The Ogg muxer otherwise gathers a second of packets per page.
        muxer_options=(("page_duration", "20000"),),
    ),
    Encoding.WEBM_OPUS: _AvCodec(
        "libopus", "webm", frozenset({"opus"}), OPUS_RATES_HZ, "flt", bit_rate=OPUS_BITRATE,
        # A cluster every 100 ms, so a stream's bytes leave as they are made.
        muxer_options=(("cluster_time_limit", "100"),),
    ),
}  # fmt: skip

# MPEG audio Layer III bit rates in kbit/s by index: MPEG-1, then MPEG-2 and 2.5.
_MP3_KBPS = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_AAC_RATE_INDEX: tuple[int, ...] = (
    96000,
    88200,
    64000,
    48000,
    44100,
    32000,
    24000,
    22050,
    16000,
    12000,
)
_AAC_RATE_INDEX += (11025, 8000, 7350)
# How far into a file the codec's identification of an Ogg or WebM is looked for.
_SNIFF_BYTES = 4096


def _mp3_frame_length(data: bytes, offset: int) -> int | None:
    """The length of the MPEG Layer III frame whose header starts at offset, or None."""
    if len(data) < offset + 4 or data[offset] != 0xFF or data[offset + 1] & 0xE0 != 0xE0:
        return None
    b1, b2 = data[offset + 1], data[offset + 2]
    version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
    bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    kbps = _MP3_KBPS[3 if version == 3 else 2][bitrate_index]
    rate = _MP3_RATES[version][rate_index]
    per_frame = 144 if version == 3 else 72  # bytes per (bit/s / Hz): 1152 or 576 samples
    return per_frame * kbps * 1000 // rate + ((b2 >> 1) & 1)


def _adts_frame_length(data: bytes, offset: int) -> int | None:
    """The length of the ADTS frame whose header starts at offset, or None."""
    if len(data) < offset + 7 or data[offset] != 0xFF or data[offset + 1] & 0xF6 != 0xF0:
        return None
    if (data[offset + 2] >> 2) & 0x0F >= len(_AAC_RATE_INDEX):
        return None
    length = ((data[offset + 3] & 3) << 11) | (data[offset + 4] << 3) | (data[offset + 5] >> 5)
    return length if length >= 7 else None


def _frames_chain(
    data: bytes, offset: int, frame_length: Callable[[bytes, int], int | None]
) -> bool:
    """Whether a frame starts at offset and the next one (if the data goes on) right after."""
    length = frame_length(data, offset)
    if length is None:
        return False
    following = offset + length
    return following + 4 > len(data) or frame_length(data, following) is not None


def _after_id3(data: bytes) -> int:
    """Where the audio starts after any ID3v2 tags (MP3 and ADTS files may begin with them)."""
    offset = 0
    while data[offset : offset + 3] == b"ID3" and len(data) >= offset + 10:
        size = 0
        for byte in data[offset + 6 : offset + 10]:
            size = (size << 7) | (byte & 0x7F)  # "syncsafe": 7 bits a byte
        footer = 10 if data[offset + 5] & 0x10 else 0
        offset += 10 + size + footer
    return offset


def detect_encoding(data: bytes) -> Encoding | None:
    """The container encoding of a file, told from its first bytes; None when unknown.

    For uploads whose format nobody declared (an HTTP file, say). Raw encodings have no
    signature and are never detected. MP3 and ADTS count only when two frames follow one
    another (or one fills the data), so noise that happens to hold a sync word does not.
    """
    head = data[:_SNIFF_BYTES]
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return Encoding.WAV
    if head[:4] == b"fLaC":
        return Encoding.FLAC
    if head[:4] == b"OggS":
        if b"OpusHead" in head:
            return Encoding.OGG_OPUS
        if b"\x01vorbis" in head:
            return Encoding.OGG_VORBIS
        return None
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska or WebM
        return Encoding.WEBM_OPUS
    if head[4:8] == b"ftyp":  # MP4 family: M4A holds AAC
        return Encoding.AAC
    start = _after_id3(data)
    if _frames_chain(data, start, _adts_frame_length):
        return Encoding.AAC
    if _frames_chain(data, start, _mp3_frame_length):
        return Encoding.MP3
    return None


def _demuxer(encoding: Encoding, data: bytes) -> str:
    if encoding == Encoding.AAC:
        return "mov" if data[4:8] == b"ftyp" else "aac"
    return {Encoding.MP3: "mp3", Encoding.OGG_VORBIS: "ogg", Encoding.WEBM_OPUS: "matroska"}[
        encoding
    ]


def _frame_to_mono(frame: Any) -> Samples:
    """A decoded PyAV frame of any sample format as mono float32."""
    array = frame.to_ndarray()
    if array.dtype == np.int16:
        floats = array.astype(np.float32) * np.float32(2.0**-15)
    elif array.dtype == np.int32:
        floats = array.astype(np.float32) * np.float32(2.0**-31)
    elif array.dtype == np.uint8:
        floats = (array.astype(np.float32) - 128) * np.float32(2.0**-7)
    else:
        floats = array.astype(np.float32, copy=False)
    if frame.format.is_planar:  # [channels, n]
        mono: Samples = floats.mean(axis=0, dtype=np.float32)
        return mono
    return _to_mono(floats, len(frame.layout.channels))  # [1, n * channels]


def _check_av_header(spec: AudioSpec, rate_hz: int, channels: int, field: str) -> None:
    label = _LABELS[spec.encoding]
    # An Opus file is truly described by its encoder's rate as well as the decode rate.
    rates = OPUS_RATES_HZ if spec.encoding == Encoding.WEBM_OPUS else (rate_hz,)
    if spec.sample_rate_hz and spec.sample_rate_hz not in rates:
        raise InvalidArgument(
            field,
            f"the {label} header says {rate_hz} Hz but the format says {spec.sample_rate_hz} Hz",
        )
    # Our own Vorbis output is mono on two channels: 1 describes it too.
    vorbis_mono = spec.encoding == Encoding.OGG_VORBIS and spec.channels == 1 and channels == 2
    if spec.channels and spec.channels != channels and not vorbis_mono:
        raise InvalidArgument(
            field,
            f"the {label} header says {channels} channel(s) but the format says {spec.channels}",
        )


def _decode_av(
    data: bytes, spec: AudioSpec, field: str, max_duration_s: float | None
) -> DecodedAudio:
    label = _LABELS[spec.encoding]
    found = detect_encoding(data)
    if found != spec.encoding:
        what = f"got {_LABELS[found]}" if found else f"the data does not start like {label}"
        raise InvalidArgument(field, f"expected {label} audio but {what}")
    codec = _AV_CODECS[spec.encoding]
    with av.open(io.BytesIO(data), mode="r", format=_demuxer(spec.encoding, data)) as container:
        if not container.streams.audio:
            raise InvalidArgument(field, f"expected {label} audio but the file holds no audio")
        stream = container.streams.audio[0]
        name = stream.codec_context.name
        if name not in codec.decoders:
            raise InvalidArgument(field, f"expected {label} audio but the file holds {name}")
        _check_declared_duration(container, spec.encoding, max_duration_s)
        pieces: list[Samples] = []
        rate = 0
        total = 0
        for frame in container.decode(stream):
            if not rate:
                rate = frame.sample_rate
                _check_av_header(spec, rate, len(frame.layout.channels), field)
            elif frame.sample_rate != rate:
                raise InvalidArgument(
                    field, f"the {label} audio changes rate from {rate} to {frame.sample_rate} Hz"
                )
            mono = _frame_to_mono(frame)
            pieces.append(mono)
            total += len(mono)
            _check_duration(total, rate, max_duration_s)
    if not rate:
        raise InvalidArgument(field, f"the {label} audio holds no samples")
    return DecodedAudio(np.concatenate(pieces) if pieces else _EMPTY, rate)


def _open_av_writer(file: Any, encoding: Encoding, rate_hz: int) -> tuple[Any, Any]:
    codec = _AV_CODECS[encoding]
    container = av.open(file, mode="w", format=codec.muxer, options=dict(codec.muxer_options))
    stream: Any = container.add_stream(
        codec.encoder, rate=rate_hz, options=dict(codec.codec_options)
    )
    stream.layout = "mono" if codec.channels == 1 else "stereo"
    if codec.bit_rate:
        stream.bit_rate = codec.bit_rate
    return container, stream


def _av_frame(samples: Samples, encoding: Encoding, rate_hz: int, pts: int) -> Any:
    codec = _AV_CODECS[encoding]
    clipped = np.clip(samples, -1.0, 1.0).astype(np.float32).reshape(1, -1)
    if codec.channels > 1:  # planar: one row per channel
        clipped = np.repeat(clipped, codec.channels, axis=0)
    layout = "mono" if codec.channels == 1 else "stereo"
    frame = av.AudioFrame.from_ndarray(clipped, format=codec.sample_format, layout=layout)
    frame.sample_rate = rate_hz
    frame.pts = pts
    return frame


def _encode_av(samples: Samples, rate_hz: int, encoding: Encoding) -> bytes:
    """A whole file. Written to a seekable buffer, an MP3 gets its LAME tag, which tells
    decoders the encoder's delay and padding so the decoded length is exact."""
    buffer = io.BytesIO()
    container, stream = _open_av_writer(buffer, encoding, rate_hz)
    with container:
        if len(samples):
            for packet in stream.encode(_av_frame(samples, encoding, rate_hz, 0)):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


# --- Resampling and encoding ---------------------------------------------------------------


def resample(samples: Samples, from_hz: int, to_hz: int) -> Samples:
    """Mono float32 from one rate to another with soxr; returns the input when equal."""
    if from_hz <= 0 or to_hz <= 0:
        raise ValueError(f"sample rates must be positive, got {from_hz} -> {to_hz}")
    if from_hz == to_hz:
        return samples
    out = soxr.resample(
        np.ascontiguousarray(samples, dtype=np.float32), from_hz, to_hz, RESAMPLE_QUALITY
    )
    return np.asarray(out, dtype=np.float32)


def resample_as_librosa(samples: Samples, from_hz: int, to_hz: int) -> Samples:
    """What librosa.resample (and so librosa.load(sr=...)) returns with its defaults: soxr
    HQ, then cut or zero-padded to ceil(n · ratio) samples, the ratio taken as a float as
    librosa does, so that the product can round up (1 s at 44.1 kHz becomes 24 001
    samples at 24 kHz, the last a zero). For references that read their audio so."""
    out = resample(samples, from_hz, to_hz)
    if from_hz == to_hz:
        return out
    size = int(np.ceil(len(samples) * (float(to_hz) / from_hz)))
    return np.pad(out[:size], (0, max(0, size - len(out))))


def resample_stream(from_hz: int, to_hz: int) -> soxr.ResampleStream:
    """A mono float32 resampler for audio that comes in parts (resample_chunk(part,
    last=...)), at the quality of `resample`."""
    return soxr.ResampleStream(from_hz, to_hz, 1, dtype="float32", quality=RESAMPLE_QUALITY)


def opus_rate_hz(rate_hz: int) -> int:
    """The Opus rate to encode audio of rate_hz at: the lowest supported rate that keeps
    all of its bandwidth (22050 -> 24000, 44100 -> 48000), 48 kHz above that."""
    return next((r for r in OPUS_RATES_HZ if r >= rate_hz), OPUS_DECODE_RATE_HZ)


def codec_rate_hz(encoding: Encoding, rate_hz: int) -> int:
    """The rate `encoding` is written at for audio of rate_hz. Codecs that run at a few
    rates only (Opus, MP3, AAC) take the lowest one that keeps all of the audio's
    bandwidth (MP3: 22050 -> 22050, 20000 -> 22050; Opus: 22050 -> 24000), their highest
    above that; every other encoding keeps rate_hz."""
    if encoding == Encoding.OGG_OPUS:
        return opus_rate_hz(rate_hz)
    codec = _AV_CODECS.get(encoding)
    if codec is None or codec.rates_hz is None:
        return rate_hz
    return next((r for r in codec.rates_hz if r >= rate_hz), codec.rates_hz[-1])


def output_rate_hz(input_rate_hz: int, spec: AudioSpec) -> int:
    """The rate `encode` writes for samples at input_rate_hz: what a response's
    AudioFormat.sample_rate_hz should say."""
    return codec_rate_hz(spec.encoding, spec.sample_rate_hz or input_rate_hz)


def _to_s16(samples: Samples) -> npt.NDArray[np.int16]:
    """Float to 16-bit PCM, clipped; the inverse of the decoders' 1/32768 scale, so
    decoded 16-bit audio encodes back to the very same bytes."""
    # NaN would otherwise become an arbitrary integer.
    finite = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    scaled = np.round(finite.astype(np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype("<i2")


def _to_f32(samples: Samples) -> npt.NDArray[np.float32]:
    """Float PCM as the model made it: never clipped, so a family whose reference returns
    samples beyond [-1, 1] reaches the client unchanged; only NaN and Inf are replaced."""
    return np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0).astype("<f4")


def _encode_soundfile(samples: Samples, rate_hz: int, container: str) -> bytes:
    buffer = io.BytesIO()
    # Writing int16 ourselves keeps our scale; libsndfile would use 32767 for floats.
    sf.write(buffer, _to_s16(samples), rate_hz, format=container, subtype="PCM_16")
    return buffer.getvalue()


def _encode_opus(samples: Samples, rate_hz: int) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=rate_hz)
        stream.layout = "mono"
        stream.bit_rate = OPUS_BITRATE
        clipped = np.clip(samples, -1.0, 1.0).astype(np.float32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(clipped, format="flt", layout="mono")
        frame.sample_rate = rate_hz
        frame.pts = 0
        # PyAV cuts the frame into Opus-sized frames itself; encode(None) drains it.
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def encode(samples: Samples, sample_rate_hz: int, spec: AudioSpec, field: str = "format") -> bytes:
    """Mono float32 in [-1, 1] at sample_rate_hz to bytes in spec's encoding.

    The output rate is spec.sample_rate_hz, or the input's when 0, except that Opus, MP3
    and AAC move to a rate their codec supports (see `codec_rate_hz`). Samples outside [-1, 1] are
    clipped in integer and compressed encodings and kept in PCM_F32LE. Output is mono:
    spec.channels must be 0 or 1 (errors name f"{field}.channels").
    """
    if samples.ndim != 1:
        raise ValueError(f"encode takes mono samples of shape [n], got {samples.shape}")
    if spec.channels > 1:
        raise InvalidArgument(f"{field}.channels", "output audio is mono: set channels to 0 or 1")
    rate = output_rate_hz(sample_rate_hz, spec)
    samples = resample(np.asarray(samples, dtype=np.float32), sample_rate_hz, rate)
    if spec.encoding == Encoding.PCM_S16LE:
        return _to_s16(samples).tobytes()
    if spec.encoding == Encoding.PCM_F32LE:
        return _to_f32(samples).tobytes()
    if spec.encoding == Encoding.MULAW:
        return linear_to_mulaw(_to_s16(samples)).tobytes()
    if spec.encoding == Encoding.OGG_OPUS:
        return _encode_opus(samples, rate)
    if spec.encoding in _AV_CODECS:
        return _encode_av(samples, rate, spec.encoding)
    return _encode_soundfile(samples, rate, _LABELS[spec.encoding])


# --- WAV headers for streams -----------------------------------------------------------------

_WAV_FORMAT_PCM = 1
_WAV_FORMAT_FLOAT = 3
_WAV_FORMAT_MULAW = 7
_WAV_FORMAT_EXTENSIBLE = 0xFFFE
_WAV_SIZE_UNKNOWN = (0, 0xFFFFFFFF)  # what streaming writers put before they know

_WAV_KINDS = {
    (_WAV_FORMAT_PCM, 8): "u8",
    (_WAV_FORMAT_PCM, 16): "s16",
    (_WAV_FORMAT_PCM, 24): "s24",
    (_WAV_FORMAT_PCM, 32): "s32",
    (_WAV_FORMAT_FLOAT, 32): "f32",
    (_WAV_FORMAT_MULAW, 8): "mulaw",
}


@dataclass(frozen=True)
class _WavHeader:
    layout: _RawLayout
    sample_rate_hz: int
    data_offset: int  # where the samples start
    data_size: int | None  # None: until the end of the stream


def _bad_wav(field: str, description: str) -> InvalidArgument:
    return InvalidArgument(field, f"malformed WAV header: {description}")


def _parse_wav_fmt(chunk: bytes, field: str) -> tuple[_RawLayout, int]:
    if len(chunk) < 16:
        raise _bad_wav(field, f"fmt chunk of {len(chunk)} bytes, at least 16 expected")
    tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", chunk)
    if tag == _WAV_FORMAT_EXTENSIBLE and len(chunk) >= 26:
        tag = struct.unpack_from("<H", chunk, 24)[0]  # first bytes of the SubFormat GUID
    kind = _WAV_KINDS.get((tag, bits))
    if kind is None:
        raise InvalidArgument(
            field,
            f"WAV format tag {tag} with {bits}-bit samples is not supported; streams take "
            "PCM 8/16/24/32-bit, 32-bit float or 8-bit mu-law",
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise _bad_wav(field, f"{channels} channels; 1..{MAX_CHANNELS} are allowed")
    _check_rate(rate, field)
    layout = _RawLayout(kind, channels)
    if block_align != layout.frame_bytes:
        raise _bad_wav(field, f"block align {block_align} does not match {channels} x {bits} bits")
    return layout, rate


def _parse_wav_header(buf: bytes, field: str = "audio") -> _WavHeader | None:
    """The header of a WAV stream, or None while more bytes are needed.

    Walks the chunks up to "data", skipping any it does not need (LIST, fact, bext...).
    Called again from the start on each new chunk of bytes: headers are small.
    """
    if len(buf) >= 4 and buf[:4] not in (b"RIFF", b"RF64"):
        raise _bad_wav(field, "the stream does not start with RIFF")
    if len(buf) >= 12 and buf[8:12] != b"WAVE":
        raise _bad_wav(field, "the RIFF file is not WAVE")
    fmt: tuple[_RawLayout, int] | None = None
    offset = 12
    while len(buf) >= offset + 8:
        chunk_id, size = struct.unpack_from("<4sI", buf, offset)
        body = offset + 8
        if chunk_id == b"data":
            if fmt is None:
                raise _bad_wav(field, "the data chunk comes before the fmt chunk")
            data_size = None if size in _WAV_SIZE_UNKNOWN else size
            return _WavHeader(fmt[0], fmt[1], body, data_size)
        end = body + size + (size & 1)  # chunks are padded to an even length
        if len(buf) < end:
            break
        if chunk_id == b"fmt ":
            fmt = _parse_wav_fmt(buf[body : body + size], field)
        offset = end
    if len(buf) > MAX_WAV_HEADER_BYTES:
        raise _bad_wav(field, f"no data chunk in the first {MAX_WAV_HEADER_BYTES} bytes")
    return None


# --- Streams -------------------------------------------------------------------------------


class StreamDecoder:
    """Decodes a config-first stream of audio bytes, fed in chunks of any size.

    Raw encodings and WAV (header first) only: other containers cannot be cut at
    arbitrary bytes. Each `feed` returns the mono float32 samples that became
    decodable, resampled to target_rate_hz when given; partial frames wait for the next
    chunk. The samples are the same however the bytes are chunked (bit for bit without
    resampling). Call `flush` at the end of the stream.
    """

    def __init__(self, spec: AudioSpec, target_rate_hz: int | None = None) -> None:
        if spec.encoding not in STREAMABLE_ENCODINGS:
            raise InvalidArgument(
                "config.format.encoding",
                f"{spec.encoding.name} cannot be streamed; "
                "streams accept PCM_S16LE, PCM_F32LE, MULAW or WAV",
            )
        if target_rate_hz is not None and target_rate_hz <= 0:
            raise ValueError(f"target rate must be positive, got {target_rate_hz}")
        self._spec = spec
        self._target_rate_hz = target_rate_hz
        self._pending = bytearray()
        self._layout: _RawLayout | None = None
        self._rate_hz: int | None = None
        # Bytes of a WAV data chunk still to come; None: everything until the end.
        self._data_left: int | None = None
        self._resampler: soxr.ResampleStream | None = None
        self._samples_in = 0
        self._flushed = False
        if spec.is_raw:
            self._start(_raw_layout(spec), spec.sample_rate_hz)

    @property
    def input_rate_hz(self) -> int | None:
        """The stream's own rate; None for WAV until its header has arrived."""
        return self._rate_hz

    @property
    def output_rate_hz(self) -> int | None:
        """The rate of the samples returned: target_rate_hz, or the input's."""
        return self._target_rate_hz or self._rate_hz

    @property
    def samples_in(self) -> int:
        """Samples per channel received so far, at the input rate (whole frames only)."""
        return self._samples_in

    def feed(self, data: bytes) -> Samples:
        """The samples completed by these bytes (possibly none)."""
        if self._flushed:
            raise RuntimeError("feed after flush")
        layout = self._layout
        if (
            layout is not None
            and not self._pending
            and self._data_left is None
            and len(data) % layout.frame_bytes == 0
        ):
            # A live stream's usual chunk: whole frames, nothing held back from the last
            # one. Decoded as it is, without the copies through the pending buffer.
            return self._decode(data, layout) if data else _EMPTY
        self._buffer(data)
        if self._layout is None and not self._read_wav_header():
            return _EMPTY
        return self._decode_whole_frames()

    def flush(self) -> Samples:
        """The last samples, at the end of the stream; the decoder is done after this."""
        if self._flushed:
            raise RuntimeError("flush called twice")
        self._flushed = True
        if self._layout is None:
            if self._pending:
                raise InvalidArgument(
                    "audio",
                    f"stream ended inside the WAV header ({len(self._pending)} bytes received)",
                )
            return _EMPTY
        if self._pending:
            raise InvalidArgument(
                "audio", f"stream ended inside a sample: {len(self._pending)} stray bytes"
            )
        if self._resampler is None:
            return _EMPTY
        return np.asarray(self._resampler.resample_chunk(_EMPTY, last=True), dtype=np.float32)

    def _start(self, layout: _RawLayout, rate_hz: int) -> None:
        self._layout = layout
        self._rate_hz = rate_hz
        if self._target_rate_hz is not None and self._target_rate_hz != rate_hz:
            self._resampler = soxr.ResampleStream(
                rate_hz, self._target_rate_hz, 1, dtype="float32", quality=RESAMPLE_QUALITY
            )

    def _buffer(self, data: bytes) -> None:
        if self._data_left is not None:
            # Whatever follows a sized data chunk (LIST, id3...) is not audio.
            data = data[: self._data_left]
            self._data_left -= len(data)
        self._pending += data

    def _read_wav_header(self) -> bool:
        header = _parse_wav_header(bytes(self._pending))
        if header is None:
            return False
        if self._spec.sample_rate_hz and self._spec.sample_rate_hz != header.sample_rate_hz:
            raise InvalidArgument(
                "config.format.sample_rate_hz",
                f"the WAV header says {header.sample_rate_hz} Hz but the config says "
                f"{self._spec.sample_rate_hz} Hz",
            )
        if self._spec.channels and self._spec.channels != header.layout.channels:
            raise InvalidArgument(
                "config.format.channels",
                f"the WAV header says {header.layout.channels} channel(s) but the config "
                f"says {self._spec.channels}",
            )
        del self._pending[: header.data_offset]
        if header.data_size is not None:
            del self._pending[header.data_size :]
            self._data_left = header.data_size - len(self._pending)
        self._start(header.layout, header.sample_rate_hz)
        return True

    def _decode_whole_frames(self) -> Samples:
        assert self._layout is not None
        frame_bytes = self._layout.frame_bytes
        usable = len(self._pending) // frame_bytes * frame_bytes
        if usable == 0:
            return _EMPTY
        chunk = bytes(self._pending[:usable])
        del self._pending[:usable]
        return self._decode(chunk, self._layout)

    def _decode(self, chunk: bytes, layout: _RawLayout) -> Samples:
        """Whole frames to model-rate samples, counted."""
        samples = _decode_pcm(chunk, layout)
        if layout.kind == "f32":  # integer encodings cannot hold NaN or inf
            _check_finite(samples, "audio")
        self._samples_in += len(chunk) // layout.frame_bytes
        if self._resampler is None:
            return samples
        return np.asarray(self._resampler.resample_chunk(samples), dtype=np.float32)


class _ByteSink:
    """A write-only file for PyAV: without seek, muxers write a stream they never revisit."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self._buffer)
        self._buffer.clear()
        return out


def _streamed_wav_header(rate_hz: int) -> bytes:
    """A 16-bit mono WAV header whose size fields say "unknown", as streaming writers do."""
    unknown = 0xFFFFFFFF
    fmt = struct.pack("<HHIIHH", _WAV_FORMAT_PCM, 1, rate_hz, rate_hz * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", unknown)
    )


class StreamEncoder:
    """Encodes mono float32 audio that arrives in pieces into one stream of bytes.

    Everything `encode` and `finish` return, concatenated, is one valid stream: raw
    samples; a WAV whose size fields say "unknown" (0xFFFFFFFF); a FLAC whose header
    leaves the length out; Ogg/Opus and Ogg/Vorbis with a page per packet, so bytes leave
    as soon as a packet is ready; MP3 and ADTS AAC frame by frame; WebM with a cluster
    every 100 ms. The codecs hold a frame or a few (MP3: LAME's look-ahead) back until the
    next piece or `finish`. A streamed MP3 has no LAME tag (that is written at the start
    once the end is known), so decoders keep the encoder's delay (about 1100 samples) at
    its start. The rate is fixed for the stream and must be one the codec takes
    (`codec_rate_hz`), so resample before encoding.
    """

    def __init__(self, encoding: Encoding, sample_rate_hz: int) -> None:
        if codec_rate_hz(encoding, sample_rate_hz) != sample_rate_hz:
            name = "Opus" if encoding == Encoding.OGG_OPUS else encoding.name
            raise ValueError(
                f"{name} cannot run at {sample_rate_hz} Hz; resample to "
                f"{codec_rate_hz(encoding, sample_rate_hz)} Hz (codec_rate_hz)"
            )
        self.encoding = encoding
        self.sample_rate_hz = sample_rate_hz
        self._pending_header = (
            _streamed_wav_header(sample_rate_hz) if encoding == Encoding.WAV else b""
        )
        self._samples = 0
        self._sink: _ByteSink | None = None
        self._container: Any = None
        self._stream: Any = None
        if encoding in (Encoding.FLAC, Encoding.OGG_OPUS) or encoding in _AV_CODECS:
            self._open_codec()

    def _open_codec(self) -> None:
        self._sink = _ByteSink()
        if self.encoding in _AV_CODECS:
            self._container, self._stream = _open_av_writer(
                self._sink, self.encoding, self.sample_rate_hz
            )
            return
        if self.encoding == Encoding.FLAC:
            self._container = av.open(self._sink, mode="w", format="flac")
            self._stream = self._container.add_stream("flac", rate=self.sample_rate_hz)
        else:
            # The Ogg muxer otherwise gathers a second of packets per page.
            options = {"page_duration": "20000"}
            self._container = av.open(self._sink, mode="w", format="ogg", options=options)
            self._stream = self._container.add_stream("libopus", rate=self.sample_rate_hz)
            self._stream.bit_rate = OPUS_BITRATE
        self._stream.layout = "mono"

    def encode(self, samples: Samples) -> bytes:
        """The bytes these samples complete (for WAV, the header comes with the first)."""
        if samples.ndim != 1:
            raise ValueError(f"encode takes mono samples of shape [n], got {samples.shape}")
        header, self._pending_header = self._pending_header, b""
        if self.encoding == Encoding.PCM_S16LE or self.encoding == Encoding.WAV:
            return header + _to_s16(samples).tobytes()
        if self.encoding == Encoding.PCM_F32LE:
            return _to_f32(samples).tobytes()
        if self.encoding == Encoding.MULAW:
            return linear_to_mulaw(_to_s16(samples)).tobytes()
        if len(samples) == 0:
            return b""
        return self._encode_frame(samples)

    def _encode_frame(self, samples: Samples) -> bytes:
        assert self._sink is not None
        if self.encoding in _AV_CODECS:
            frame = _av_frame(samples, self.encoding, self.sample_rate_hz, self._samples)
        elif self.encoding == Encoding.FLAC:
            # Our own 16-bit scale, as in whole-file FLAC.
            frame = av.AudioFrame.from_ndarray(
                _to_s16(samples).reshape(1, -1), format="s16", layout="mono"
            )
        else:
            clipped = np.clip(samples, -1.0, 1.0).astype(np.float32).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(clipped, format="flt", layout="mono")
        frame.sample_rate = self.sample_rate_hz
        frame.pts = self._samples
        self._samples += len(samples)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        return self._sink.take()

    def finish(self) -> bytes:
        """The last bytes of the stream; the encoder is done after this."""
        header, self._pending_header = self._pending_header, b""
        if self._container is None:
            return header
        assert self._sink is not None
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._container = None
        return self._sink.take()
