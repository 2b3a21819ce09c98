"""ForwardTacotron conditioned on a speaker embedding: text symbols to a mel spectrogram.

Character embedding → CBHG prenet; three series predictors (duration, pitch, energy),
each reading the symbols with the speaker embedding concatenated; the pitch and energy
contours, projected by a 3-tap convolution and scaled by `pitch_strength` /
`energy_strength`, are added to the prenet's output; the length regulator repeats each
symbol for its duration; the speaker embedding is concatenated to every frame; a
bidirectional LSTM, a linear layer to the mel bands and a CBHG postnet follow.

Module and parameter names match the `model_state` of the official checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from speechmesh.runtime.errors import FailedPrecondition


@dataclass(frozen=True)
class ForwardTacotronConfig:
    """The synthesizer's constructor arguments, as `synthesizer/config.json` gives them."""

    embed_dims: int
    series_embed_dims: int
    num_chars: int
    durpred_conv_dims: int
    durpred_rnn_dims: int
    durpred_dropout: float
    pitch_conv_dims: int
    pitch_rnn_dims: int
    pitch_dropout: float
    pitch_strength: float
    energy_conv_dims: int
    energy_rnn_dims: int
    energy_dropout: float
    energy_strength: float
    rnn_dims: int
    prenet_dims: int
    prenet_k: int
    prenet_num_highways: int
    prenet_dropout: float
    postnet_dims: int
    postnet_k: int
    postnet_num_highways: int
    postnet_dropout: float
    n_mels: int
    speaker_embed_dims: int
    padding_value: float

    @classmethod
    def from_json(cls, data: Any, origin: str) -> ForwardTacotronConfig:
        """From a parsed config.json: the arguments under "model", or at the top level."""
        section = data.get("model", data) if isinstance(data, dict) else None
        if not isinstance(section, dict):
            raise FailedPrecondition(f"{origin} is not a JSON object")
        names = [f.name for f in fields(cls)]
        missing = [name for name in names if name not in section]
        if missing:
            raise FailedPrecondition(f"{origin} lacks {', '.join(missing)}")
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = section[f.name]
            integer = f.type == "int"
            if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
                kind = "an integer" if integer else "a number"
                raise FailedPrecondition(f"{origin}: {f.name} must be {kind}, got {value!r}")
            if integer and value < 1:
                raise FailedPrecondition(f"{origin}: {f.name} must be positive, got {value}")
            values[f.name] = value if integer else float(value)
        return cls(**values)


class BatchNormConv(nn.Module):
    """Conv1d (no bias, same padding) → optional ReLU → BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False)
        self.bnorm = nn.BatchNorm1d(out_channels)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.bnorm(F.relu(x) if self.relu else x)


class Highway(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.W1 = nn.Linear(size, size)
        self.W2 = nn.Linear(size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.W2(x))
        return gate * F.relu(self.W1(x)) + (1.0 - gate) * x


class CBHG(nn.Module):
    """Convolution bank, max pool, two projections with a residual, highways, bi-GRU.
    [B, in_channels, T] → [B, T, 2 · channels]. Dropout is a training-time op only."""

    def __init__(
        self, k: int, in_channels: int, channels: int, proj_channels: tuple[int, int], highways: int
    ):
        super().__init__()
        self.conv1d_bank = nn.ModuleList(
            BatchNormConv(in_channels, channels, width) for width in range(1, k + 1)
        )
        self.maxpool = nn.MaxPool1d(kernel_size=2, stride=1, padding=1)
        self.conv_project1 = BatchNormConv(k * channels, proj_channels[0], 3)
        self.conv_project2 = BatchNormConv(proj_channels[0], proj_channels[1], 3, relu=False)
        self.pre_highway = nn.Linear(proj_channels[1], channels, bias=False)
        self.highways = nn.ModuleList(Highway(channels) for _ in range(highways))
        self.rnn = nn.GRU(channels, channels, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.size(-1)
        # Even kernels pad one frame too many: each bank output is cut back to the input.
        bank = torch.cat([conv(x)[:, :, :length] for conv in self.conv1d_bank], dim=1)
        y = self.maxpool(bank)[:, :, :length]
        y = self.conv_project2(self.conv_project1(y)) + x
        y = self.pre_highway(y.transpose(1, 2))
        for highway in self.highways:
            y = highway(y)
        out, _ = self.rnn(y)
        return out


class SeriesPredictor(nn.Module):
    """One value per symbol (duration, pitch or energy) from the symbols and the speaker."""

    def __init__(self, num_chars: int, embed_dims: int, speaker_dims: int, conv: int, rnn: int):
        super().__init__()
        self.embedding = nn.Embedding(num_chars, embed_dims)
        self.convs = nn.ModuleList(
            [
                BatchNormConv(embed_dims + speaker_dims, conv, 5),
                BatchNormConv(conv, conv, 5),
                BatchNormConv(conv, conv, 5),
            ]
        )
        self.rnn = nn.GRU(conv, rnn, batch_first=True, bidirectional=True)
        self.lin = nn.Linear(2 * rnn, 1)

    def forward(self, symbols: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
        """[B, T] symbols, [B, S] speaker → [B, T] values."""
        x = self.embedding(symbols)
        x = torch.cat([x, speaker[:, None, :].expand(-1, x.size(1), -1)], dim=2).transpose(1, 2)
        for conv in self.convs:
            x = conv(x)
        out, _ = self.rnn(x.transpose(1, 2))
        return self.lin(out).squeeze(-1)


@dataclass(frozen=True)
class Prosody:
    """The predicted series of one sequence, after the request's scaling."""

    durations: torch.Tensor
    """[T] frames per symbol, before rounding (÷ speed)."""
    pitch: torch.Tensor
    energy: torch.Tensor


class ForwardTacotron(nn.Module):
    def __init__(self, config: ForwardTacotronConfig):
        super().__init__()
        c = config
        self.config = config
        self.embedding = nn.Embedding(c.num_chars, c.embed_dims)
        self.dur_pred = SeriesPredictor(
            c.num_chars, c.series_embed_dims, c.speaker_embed_dims, c.durpred_conv_dims,
            c.durpred_rnn_dims,
        )  # fmt: skip
        self.pitch_pred = SeriesPredictor(
            c.num_chars, c.series_embed_dims, c.speaker_embed_dims, c.pitch_conv_dims,
            c.pitch_rnn_dims,
        )  # fmt: skip
        self.energy_pred = SeriesPredictor(
            c.num_chars, c.series_embed_dims, c.speaker_embed_dims, c.energy_conv_dims,
            c.energy_rnn_dims,
        )  # fmt: skip
        self.prenet = CBHG(
            c.prenet_k, c.embed_dims, c.prenet_dims, (c.prenet_dims, c.embed_dims),
            c.prenet_num_highways,
        )  # fmt: skip
        self.lstm = nn.LSTM(
            2 * c.prenet_dims + c.speaker_embed_dims, c.rnn_dims, batch_first=True,
            bidirectional=True,
        )  # fmt: skip
        self.lin = nn.Linear(2 * c.rnn_dims, c.n_mels)
        # A training counter the checkpoint carries; inference never reads it.
        self.register_buffer("step", torch.zeros(1, dtype=torch.long))
        self.postnet = CBHG(
            c.postnet_k, c.n_mels, c.postnet_dims, (c.postnet_dims, c.n_mels),
            c.postnet_num_highways,
        )  # fmt: skip
        self.post_proj = nn.Linear(2 * c.postnet_dims, c.n_mels, bias=False)
        self.pitch_proj = nn.Conv1d(1, 2 * c.prenet_dims, kernel_size=3, padding=1)
        self.energy_proj = nn.Conv1d(1, 2 * c.prenet_dims, kernel_size=3, padding=1)

    def prosody(
        self,
        symbols: torch.Tensor,
        speaker: torch.Tensor,
        speed: float = 1.0,
        pitch: float = 1.0,
        energy: float = 1.0,
    ) -> Prosody:
        """Durations ÷ speed, pitch and energy contours × their factors, for [1, T] symbols."""
        durations = self.dur_pred(symbols, speaker)[0] / speed
        # A sequence predicted to last no frame at all would give no audio: 2 each, as
        # the reference inference does.
        if int(durations.long().sum()) <= 0:
            durations = torch.full_like(durations, 2.0)
        return Prosody(
            durations,
            self.pitch_pred(symbols, speaker)[0] * pitch,
            self.energy_pred(symbols, speaker)[0] * energy,
        )

    def generate(
        self, symbols: torch.Tensor, speaker: torch.Tensor, prosody: Prosody
    ) -> torch.Tensor:
        """[1, T] symbols, [1, S] speaker → the postnet's mel [n_mels, frames], frames =
        Σ round(max(durations, 0))."""
        c = self.config
        x = self.prenet(self.embedding(symbols).transpose(1, 2))
        x = x + self.pitch_proj(prosody.pitch[None, None, :]).transpose(1, 2) * c.pitch_strength
        x = x + self.energy_proj(prosody.energy[None, None, :]).transpose(1, 2) * c.energy_strength
        x = x[0].repeat_interleave(frame_counts(prosody.durations), dim=0)[None]
        x = torch.cat([x, speaker[:, None, :].expand(-1, x.size(1), -1)], dim=2)
        x, _ = self.lstm(x)
        mel = self.lin(x).transpose(1, 2)
        post = self.post_proj(self.postnet(mel))
        return post[0].transpose(0, 1)


def frame_counts(durations: torch.Tensor) -> torch.Tensor:
    """Frames per symbol: negative durations count 0, the rest round half up."""
    return (durations.clamp_min(0.0) + 0.5).long()
