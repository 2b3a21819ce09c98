"""Silero's batched run: jobs of different lengths in one call score as each would alone."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the vad extra is not installed")

from speechmesh.runtime.config import ModelConfig
from speechmesh.services.vad.segmentation import VadJob
from speechmesh.services.vad.silero import CONTEXT, WINDOW, SileroVad


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    engine = SileroVad(ModelConfig(id="silero-vad", family="silero-vad"))
    engine.load()
    return engine


def job(rng: np.random.Generator, windows: int, state: np.ndarray) -> VadJob:
    # A tone in noise, so that probabilities and states move away from their start.
    t = np.arange(windows * WINDOW + CONTEXT) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(len(t))).astype(
        np.float32
    )
    rows = np.lib.stride_tricks.sliding_window_view(audio, CONTEXT + WINDOW)[::WINDOW]
    return VadJob(np.ascontiguousarray(rows[:windows]), state)


def test_a_batch_of_uneven_jobs_matches_each_job_alone(vad):
    rng = np.random.default_rng(3)
    # Each job starts from its own state: a stream's state after earlier windows.
    warm = vad.run_batch([job(rng, 5, vad.initial_state())])[0].state
    jobs = [job(rng, n, warm if n % 2 else vad.initial_state()) for n in (3, 1, 4, 3, 2)]
    together = vad.run_batch(jobs)
    alone = [vad.run_batch([j])[0] for j in jobs]
    assert [len(r.probabilities) for r in together] == [3, 1, 4, 3, 2]
    for batched, single in zip(together, alone, strict=True):
        np.testing.assert_allclose(batched.probabilities, single.probabilities, atol=1e-5)
        np.testing.assert_allclose(batched.state, single.state, atol=1e-5)
        assert batched.state.shape == vad.initial_state().shape
    assert max(r.probabilities.max() for r in together) > 0.1  # the windows were scored
