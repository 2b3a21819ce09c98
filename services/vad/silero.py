"""The Silero VAD model family on onnxruntime, batched across streams.

The model is the ONNX export shipped in the `silero-vad` wheel (found through
importlib without importing the package, which would pull torch). It scores 512-sample
windows at 16 kHz, each with the previous 64 samples as context and a recurrent
state; windows of many streams run as one batch, each row with its own state.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from speechmesh.runtime import weights
from speechmesh.runtime.engine import ModelDescription
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.vad.segmentation.detector import VadJob, VadResult, VoiceActivityDetector

SAMPLE_RATE = 16000
WINDOW = 512
CONTEXT = 64
STATE_SHAPE = (2, 1, 128)
EMBEDDED_MODEL = "silero_vad.onnx"


def embedded_model_path() -> Path:
    """The .onnx inside the installed silero-vad wheel."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise FailedPrecondition(
            "the silero-vad wheel is not installed: pip install --no-deps silero-vad"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / EMBEDDED_MODEL
    if not path.is_file():
        raise FailedPrecondition(f"the silero-vad wheel has no {EMBEDDED_MODEL} at {path}")
    return path


class SileroVad(VoiceActivityDetector):
    family = "silero-vad"
    sample_rate_hz = SAMPLE_RATE
    window = WINDOW
    context = CONTEXT

    session: ort.InferenceSession

    # Silero repos publish the model in several formats; this family reads ONNX.
    hub_patterns = ("*.onnx",)

    def load(self) -> None:
        if self.config.source is None:
            path = embedded_model_path()
        else:
            resolved = self.hub_files(self.config.source).resolve()
            path = resolved if resolved.is_file() else resolved / EMBEDDED_MODEL
            weights.require_files(path.parent, [path.name])
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.config.threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def warmup(self) -> None:
        job = VadJob(np.zeros((2, CONTEXT + WINDOW), np.float32), np.zeros(STATE_SHAPE, np.float32))
        self.run_batch([job, job])

    def initial_state(self) -> np.ndarray:
        return np.zeros(STATE_SHAPE, np.float32)

    def describe(self) -> ModelDescription:
        return ModelDescription(native_sample_rate_hz=SAMPLE_RATE)

    def run_batch(self, items: Sequence[VadJob]) -> list[VadResult]:
        """Runs the jobs in lockstep: step t scores window t of every job that has one."""
        lengths = [len(job.windows) for job in items]
        states = np.concatenate([job.state for job in items], axis=1)
        probabilities = [np.empty(n, np.float32) for n in lengths]
        for step in range(max(lengths)):
            active = [i for i, n in enumerate(lengths) if n > step]
            batch = np.stack([items[i].windows[step] for i in active])
            output, new_state = self.session.run(
                None, {"input": batch, "state": states[:, active], "sr": self._sr}
            )
            states[:, active] = new_state
            for row, i in enumerate(active):
                probabilities[i][step] = output[row, 0]
        return [VadResult(probabilities[i], states[:, i : i + 1].copy()) for i in range(len(items))]
