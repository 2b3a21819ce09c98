"""Reads parity fixtures (reference outputs) and compares the served output with them.

Fixtures live in tests/parity/fixtures/<family>/, written by scripts/parity/<family>.py.
SPEECHMESH_PARITY_FIXTURES points the suite at another root, e.g. an independent
reference run with other seeds, texts and clips.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from speechmesh.audio.v1 import audio_pb2
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

FIXTURES = Path(__file__).parent / "fixtures"
# Floats: the worst absolute difference, relative to the reference's peak.
RELATIVE_TOLERANCE = 1e-5
F32 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE)


class ReferenceRun:
    """One family's fixture folder: its manifest, cases, arrays and documents."""

    def __init__(self, family: str) -> None:
        root = Path(os.environ.get("SPEECHMESH_PARITY_FIXTURES", FIXTURES))
        self.folder = root / family
        if not (self.folder / "manifest.json").is_file():
            raise FileNotFoundError(
                f"no parity fixtures for {family} in {root}: run scripts/parity/ to make them"
            )

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.folder / "manifest.json").read_text())

    @property
    def cases(self) -> list[dict[str, Any]]:
        return list(self.manifest["cases"])

    def array(self, name: str) -> np.ndarray:
        path = self.folder / (name if name.endswith(".npy") else f"{name}.npy")
        return np.load(path, allow_pickle=False)

    def document(self, name: str) -> Any:
        path = self.folder / (name if name.endswith(".json") else f"{name}.json")
        return json.loads(path.read_text())

    def file(self, name: str) -> Path:
        return self.folder / name


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Worst |actual - expected| over the reference's peak (shapes must agree)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != reference {expected.shape}"
    peak = float(np.max(np.abs(expected))) if expected.size else 0.0
    worst = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    return worst / peak if peak > 0 else worst


def assert_close(actual: Any, expected: Any, what: str, tolerance: float = RELATIVE_TOLERANCE):
    error = relative_error(np.asarray(actual), np.asarray(expected))
    assert error <= tolerance, f"{what}: worst error {error:.3g} of the peak > {tolerance:g}"
    return error


def assert_exact(actual: Any, expected: Any, what: str) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    mismatch = np.flatnonzero(actual.ravel() != expected.ravel())
    assert mismatch.size == 0, (
        f"{what}: {mismatch.size} of {actual.size} differ, first at {int(mismatch[0])}: "
        f"{actual.ravel()[mismatch[0]]!r} != {expected.ravel()[mismatch[0]]!r}"
    )


def assert_quantized(actual: Any, expected: Any, what: str, max_share: float = 1e-3) -> None:
    """int16 audio whose float stages are held to 1e-5 elsewhere: equal length, samples
    at most one step apart, and few of those. A float difference far below 1e-5 (another
    CPU's BLAS kernels sum in another order) still flips the rounding of a sample that
    lies on a half step; anything more is a real difference."""
    actual, expected = np.asarray(actual, np.int32), np.asarray(expected, np.int32)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    steps = np.abs(actual - expected)
    off = int(np.count_nonzero(steps))
    assert steps.max(initial=0) <= 1 and off <= max_share * actual.size, (
        f"{what}: {off} of {actual.size} samples differ, by up to {int(steps.max())} steps"
    )


def streamed_f32(responses: list[Any]) -> np.ndarray:
    """The float32 samples of a StreamingSynthesize reply's audio chunks, joined."""
    data = b"".join(r.chunk.audio.data for r in responses if r.HasField("chunk"))
    return np.frombuffer(data, "<f4")


def assert_synthesize_is_the_reference(
    server: Any, model: str, run: ReferenceRun, case: dict, options: Any, what: str, config: str
) -> None:
    """A TTS case's Synthesize reply (float32) against the reference run's audio: the rate
    of the run's config document, the samples within tolerance, one span a piece."""
    request = tts_pb2.SynthesizeRequest(
        model=model, text=case["text"], options=options, output_format=F32
    )
    with server.channel() as channel:
        reply = tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(request, timeout=120)
    expected = run.array(case["audio"])
    assert reply.audio.format.sample_rate_hz == run.document(config)["data"]["sampling_rate"]
    audio = np.frombuffer(reply.audio.data, "<f4")
    error = assert_close(audio, expected, f"{what}: Synthesize")
    print(f"synthesize {what}: {len(audio)} samples, worst error {error:.3g} of the peak")
    assert reply.summary.num_spans == len(case["pieces"])


def assert_streaming_is_the_reference(
    server: Any, model: str, run: ReferenceRun, case: dict, options: Any, what: str
) -> None:
    """A TTS case's StreamingSynthesize chunks (float32), joined, against the run's audio."""
    request = tts_pb2.StreamingSynthesizeRequest(
        model=model, text=case["text"], options=options, output_format=F32
    )
    with server.channel() as channel:
        responses = list(
            tts_pb2_grpc.TextToSpeechStub(channel).StreamingSynthesize(request, timeout=120)
        )
    audio = streamed_f32(responses)
    error = assert_close(audio, run.array(case["audio"]), f"{what}: stream")
    print(f"stream {what}: worst error {error:.3g} of the peak")
