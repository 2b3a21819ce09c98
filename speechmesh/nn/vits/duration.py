"""VITS's duration predictors and the alignment they expand: the stochastic one (`sdp`,
a flow of rational-quadratic splines run backwards from noise) and the deterministic one
(`dp`, two convolutions), both conditioned on the speaker; `expand` turns durations into
the monotonic path that spreads phoneme statistics over frames.

Sizes the VITS design fixes: the SDP's convolutions are as wide as its input (the
config's filter size is ignored upstream), kernel 3, three dilated depth-separable
layers, four spline flows of 10 bins with linear tails at ±5; the DP's filter is 256
with kernel 3. Only inference is here: the SDP's posterior flows (`post_*`) are in the
checkpoint and loaded, never run.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from speechmesh.nn.vits.flow import Flip, sequence_mask
from speechmesh.nn.vits.text_encoder import LayerNorm
from speechmesh.runtime.errors import LimitExceeded

MAX_PIECE_FRAMES = 16384
"""Most spectrogram frames one piece may expand to (about 190 s at 22 050 Hz with a hop
of 256; a sentence is seconds). Durations past it come from degenerate weights or
extreme noise on the durations, and would ask for gigabytes before failing."""

SDP_KERNEL, SDP_LAYERS, SDP_FLOWS = 3, 3, 4
DP_FILTER, DP_KERNEL = 256, 3
BINS, TAIL_BOUND = 10, 5.0
MIN_BIN, MIN_DERIVATIVE = 1e-3, 1e-3


class DDSConv(nn.Module):
    """Dilated depth-separable convolutions with GELUs and residuals."""

    def __init__(self, channels: int, kernel: int, layers: int) -> None:
        super().__init__()
        dilations = [kernel**i for i in range(layers)]
        self.convs_sep = nn.ModuleList(
            nn.Conv1d(
                channels,
                channels,
                kernel,
                groups=channels,
                dilation=d,
                padding=d * (kernel - 1) // 2,
            )
            for d in dilations
        )
        self.convs_1x1 = nn.ModuleList(nn.Conv1d(channels, channels, 1) for _ in dilations)
        self.norms_1 = nn.ModuleList(LayerNorm(channels) for _ in dilations)
        self.norms_2 = nn.ModuleList(LayerNorm(channels) for _ in dilations)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        if g is not None:
            x = x + g
        for sep, pointwise, norm_1, norm_2 in zip(
            self.convs_sep, self.convs_1x1, self.norms_1, self.norms_2, strict=True
        ):
            y = F.gelu(norm_1(sep(x * mask)))
            x = x + F.gelu(norm_2(pointwise(y)))
        return x * mask


class ElementwiseAffine(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.m = nn.Parameter(torch.zeros(channels, 1))
        self.logs = nn.Parameter(torch.zeros(channels, 1))

    def inverse(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (x - self.m) * torch.exp(-self.logs) * mask


class ConvFlow(nn.Module):
    """A rational-quadratic spline coupling: the second channel bent by the first's."""

    def __init__(self, filter_channels: int, kernel: int, layers: int) -> None:
        super().__init__()
        self.filter_channels = filter_channels
        self.pre = nn.Conv1d(1, filter_channels, 1)
        self.convs = DDSConv(filter_channels, kernel, layers)
        self.proj = nn.Conv1d(filter_channels, 3 * BINS - 1, 1)

    def inverse(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x0, x1 = x.split(1, dim=1)
        h = self.proj(self.convs(self.pre(x0), mask, g)) * mask
        batch, _, frames = x0.shape
        h = h.reshape(batch, 1, -1, frames).permute(0, 1, 3, 2)  # [b, 1, t, 3·bins − 1]
        scale = math.sqrt(self.filter_channels)
        widths, heights = h[..., :BINS] / scale, h[..., BINS : 2 * BINS] / scale
        x1 = _inverse_spline(x1, widths, heights, h[..., 2 * BINS :])
        return torch.cat([x0, x1], 1) * mask


def _inverse_spline(
    y: torch.Tensor, widths: torch.Tensor, heights: torch.Tensor, derivatives: torch.Tensor
) -> torch.Tensor:
    """The inverse of a monotonic rational-quadratic spline on [−B, B] (identity outside),
    its end derivatives pinned to one (linear tails)."""
    inside = (y >= -TAIL_BOUND) & (y <= TAIL_BOUND)
    out = y.clone()
    constant = float(np.log(np.exp(1 - MIN_DERIVATIVE) - 1))
    derivatives = F.pad(derivatives, (1, 1))
    derivatives[..., 0] = constant
    derivatives[..., -1] = constant
    if inside.any():
        out[inside] = _spline_inside(
            y[inside], widths[inside], heights[inside], derivatives[inside]
        )
    return out


def _knots(unnormalized: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cumulative knot positions on [−B, B] (ends exact) and the bin sizes between them."""
    sizes = MIN_BIN + (1 - MIN_BIN * BINS) * F.softmax(unnormalized, dim=-1)
    cumulative = F.pad(torch.cumsum(sizes, dim=-1), (1, 0), value=0.0)
    cumulative = 2 * TAIL_BOUND * cumulative - TAIL_BOUND
    cumulative[..., 0] = -TAIL_BOUND
    cumulative[..., -1] = TAIL_BOUND
    return cumulative, cumulative[..., 1:] - cumulative[..., :-1]


def _spline_inside(
    y: torch.Tensor, widths: torch.Tensor, heights: torch.Tensor, derivatives: torch.Tensor
) -> torch.Tensor:
    cumwidths, widths = _knots(widths)
    cumheights, heights = _knots(heights)
    derivatives = MIN_DERIVATIVE + F.softplus(derivatives)
    # The bin holding y; the last knot nudged up so y == B falls in the last bin.
    edges = cumheights.clone()
    edges[..., -1] += 1e-6
    index = (torch.sum(y[..., None] >= edges, dim=-1) - 1)[..., None]

    def at(t: torch.Tensor) -> torch.Tensor:
        return t.gather(-1, index)[..., 0]

    delta = heights / widths
    d0, d1 = at(derivatives), derivatives[..., 1:].gather(-1, index)[..., 0]
    bin_delta, bin_height, bin_y = at(delta), at(heights), at(cumheights)
    shifted = y - bin_y
    curvature = d0 + d1 - 2 * bin_delta
    a = shifted * curvature + bin_height * (bin_delta - d0)
    b = bin_height * d0 - shifted * curvature
    c = -bin_delta * shifted
    root = (2 * c) / (-b - torch.sqrt(b.pow(2) - 4 * a * c))
    return root * at(widths) + at(cumwidths)


class StochasticDurationPredictor(nn.Module):
    """Log durations drawn by running the flow backwards from scaled noise."""

    def __init__(self, channels: int, gin: int) -> None:
        super().__init__()
        self.flows = nn.ModuleList([ElementwiseAffine(2)])
        self.post_flows = nn.ModuleList([ElementwiseAffine(2)])
        for _ in range(SDP_FLOWS):
            self.flows.extend([ConvFlow(channels, SDP_KERNEL, SDP_LAYERS), Flip()])
            self.post_flows.extend([ConvFlow(channels, SDP_KERNEL, SDP_LAYERS), Flip()])
        self.post_pre = nn.Conv1d(1, channels, 1)
        self.post_proj = nn.Conv1d(channels, channels, 1)
        self.post_convs = DDSConv(channels, SDP_KERNEL, SDP_LAYERS)
        self.pre = nn.Conv1d(channels, channels, 1)
        self.proj = nn.Conv1d(channels, channels, 1)
        self.convs = DDSConv(channels, SDP_KERNEL, SDP_LAYERS)
        self.cond = nn.Conv1d(gin, channels, 1)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        """[b, 1, t] log durations; `noise` is [b, 2, t], already scaled."""
        x = self.convs(self.pre(x) + self.cond(g), mask)
        x = self.proj(x) * mask
        # Backwards through the flows, less the first spline (unused upstream: the
        # reverse pass drops it, so its weights never matter).
        reverse = list(reversed(self.flows))
        z = noise
        for flow in [*reverse[:-2], reverse[-1]]:
            if isinstance(flow, Flip):
                z = flow(z)
            else:
                z = (
                    flow.inverse(z, mask, x)
                    if isinstance(flow, ConvFlow)
                    else flow.inverse(z, mask)
                )
        return z[:, :1]


class DurationPredictor(nn.Module):
    """Deterministic log durations: two ReLU convolutions with layer norms."""

    def __init__(self, channels: int, gin: int) -> None:
        super().__init__()
        self.conv_1 = nn.Conv1d(channels, DP_FILTER, DP_KERNEL, padding=DP_KERNEL // 2)
        self.norm_1 = LayerNorm(DP_FILTER)
        self.conv_2 = nn.Conv1d(DP_FILTER, DP_FILTER, DP_KERNEL, padding=DP_KERNEL // 2)
        self.norm_2 = LayerNorm(DP_FILTER)
        self.proj = nn.Conv1d(DP_FILTER, 1, 1)
        self.cond = nn.Conv1d(gin, channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x = x + self.cond(g)
        x = self.norm_1(torch.relu(self.conv_1(x * mask)))
        x = self.norm_2(torch.relu(self.conv_2(x * mask)))
        return self.proj(x * mask) * mask


def expand(durations: torch.Tensor, x_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole-frame durations [b, 1, t_x] → (path [b, t_y, t_x], frame mask [b, 1, t_y]):
    frame j belongs to phoneme i when the durations before i sum to at most j.
    LimitExceeded (RESOURCE_EXHAUSTED) past MAX_PIECE_FRAMES, before anything is made."""
    total = torch.sum(durations, [1, 2])
    if not bool(torch.all(total <= MAX_PIECE_FRAMES)):  # NaN fails it too
        raise LimitExceeded(
            "frames per piece",
            MAX_PIECE_FRAMES,
            float(torch.max(torch.nan_to_num(total, nan=math.inf))),
            hint="the predicted durations are out of bounds: send a shorter sentence, a "
            "higher speed or less duration noise (noise_scale_w)",
        )
    frames = torch.clamp_min(total, 1).long()
    y_mask = sequence_mask(frames, int(frames.max())).to(x_mask.dtype)
    batch, _, t_x = durations.shape
    ends = torch.cumsum(durations, -1).view(batch * t_x)
    path = sequence_mask(ends, y_mask.size(2)).view(batch, t_x, -1)
    path = path - F.pad(path, (0, 0, 1, 0))[:, :-1]
    path = path.transpose(1, 2) * (x_mask * y_mask.transpose(1, 2))
    return path, y_mask
