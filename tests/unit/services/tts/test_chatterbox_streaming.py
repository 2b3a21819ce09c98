"""The Chatterbox engine streaming within a sentence (stream_chunk_tokens), in process on
the tiny standard checkpoint (tests/chatterbox_checkpoint.py): T3 stops when its caller
goes, and chunked and whole pieces in one batch each get what they get alone."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from chatterbox_checkpoint import write

from speechmesh.runtime.config import ModelConfig
from speechmesh.services.tts.chatterbox.engine import Chatterbox
from speechmesh.services.tts.engine import SynthesisJob, SynthesisParams

pytestmark = pytest.mark.timeout(900)
TOKENS = 60
TEXT = "Hello there, this is a test."


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chatterbox")
    options = write("chatterbox", folder)
    config = ModelConfig(
        id="cb",
        family="chatterbox",
        source=str(folder),
        threads=1,
        options={**options, "max_new_tokens": TOKENS},
    )
    model = Chatterbox(config)
    model.load()
    return model


def settings(engine, seed: int, chunk: int = 0):  # type: ignore[no-untyped-def]
    options = {"stream_chunk_tokens": chunk} if chunk else {}
    params = SynthesisParams(
        seed=seed, family_options_case="chatterbox", family_options=options, stream=True
    )
    return engine.prepare(params)


class Parts:
    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    def __call__(self, part: np.ndarray) -> None:
        self.parts.append(part)


def run(engine, jobs):  # type: ignore[no-untyped-def]
    """Each job's audio: its parts, then the rest the batch returned."""
    results = engine.run_batch(jobs)
    return [
        np.concatenate([*(job.sink.parts if job.sink else []), rest])
        for job, rest in zip(jobs, results, strict=True)
    ]


def test_chunked_and_whole_pieces_in_one_batch_get_what_they_get_alone(engine):
    def jobs():  # type: ignore[no-untyped-def]
        return [
            SynthesisJob(TEXT, settings(engine, 3, chunk=8), sink=Parts()),
            SynthesisJob("How are you?", settings(engine, 4)),
            SynthesisJob("Fine, thanks.", settings(engine, 5, chunk=12), sink=Parts()),
        ]

    alone = [run(engine, [job])[0] for job in jobs()]
    batch = jobs()
    together = run(engine, batch)
    assert len(batch[0].sink.parts) >= 3  # audio came while T3 was still going
    for a, b in zip(alone, together, strict=True):
        assert a.shape == b.shape and len(a) > 0
        assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()


def test_a_chunked_piece_is_as_long_as_the_whole_one_and_t3_draws_alike(engine):
    chunked = run(engine, [SynthesisJob(TEXT, settings(engine, 3, chunk=8), sink=Parts())])[0]
    whole = run(engine, [SynthesisJob(TEXT, settings(engine, 3))])[0]
    assert chunked.shape == whole.shape
    assert not np.array_equal(chunked, whole)  # S3Gen draws from its own generator


def test_a_cancelled_piece_stops_t3_at_once(engine):
    steps = {"count": 0}

    def counted(*_):  # type: ignore[no-untyped-def]
        steps["count"] += 1  # one backbone step of every row in the batch

    cancelled = threading.Event()
    at_cancel: dict[str, int] = {}

    def sink(part: np.ndarray) -> None:
        if not cancelled.is_set():
            at_cancel.update(steps)
            cancelled.set()

    hook = engine.t3.speech_head.register_forward_hook(counted)
    try:
        job = SynthesisJob(TEXT, settings(engine, 3, chunk=8), sink=sink, cancelled=cancelled)
        engine.run_batch([job])
    finally:
        hook.remove()
    assert at_cancel["count"] < TOKENS  # stopped, not finished
    assert steps["count"] - at_cancel["count"] <= 1  # at most the step in flight
