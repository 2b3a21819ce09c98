"""Cuts a stream of mel frames into windows a vocoder can run one at a time, so that
streamed audio equals the audio of the whole spectrogram.

A frame's audio depends on at most `context` frames either side (the vocoder's
receptive field). Once `context` frames beyond a frame have arrived its audio is
final: each window covers the frames made final since the last one plus `context`
frames of context on both sides, and only the final frames' samples are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    mel: np.ndarray
    """[n_mels, frames] to vocode."""
    keep_from: int
    keep_to: int
    """The samples of the vocoded window to send."""


class MelStream:
    def __init__(self, n_mels: int, context: int, samples_per_frame: int) -> None:
        self._context = context
        self._hop = samples_per_frame
        self._frames = np.zeros((n_mels, 0), np.float32)
        self._first = 0  # index, in the stream, of _frames[:, 0]
        self._done = 0  # frames whose audio has been sent
        self.received = 0

    def push(self, mel: np.ndarray) -> Window | None:
        """The window made final by these frames, if any."""
        self._frames = np.concatenate([self._frames, mel], axis=1)
        self.received += mel.shape[1]
        return self._window(self.received - self._context)

    def finish(self) -> Window | None:
        """The window of the last frames, at the end of the stream."""
        return self._window(self.received)

    def _window(self, final: int) -> Window | None:
        if final <= self._done:
            return None
        low = max(0, self._done - self._context)
        high = min(self.received, final + self._context)
        mel = self._frames[:, low - self._first : high - self._first]
        window = Window(mel, (self._done - low) * self._hop, (final - low) * self._hop)
        self._done = final
        # Keep only what later windows still need as context.
        keep = max(self._first, self._done - self._context)
        self._frames = self._frames[:, keep - self._first :]
        self._first = keep
        return window
