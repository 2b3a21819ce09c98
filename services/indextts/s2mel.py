"""S2MEL: semantic tokens + GPT latents → 80-band mel, by flow matching on a DiT.

Modules and key names of `s2mel.pth` (`net.{cfm, length_regulator, gpt_layer}`):
- length_regulator: content_in_proj (1024→512), nearest interpolation to the target
  frame count, 4 × (Conv1d 3, GroupNorm(1), Mish) + Conv1d 1, masked;
- cfm.estimator (DiT): inputs [x, prompt mel, content, style] merged by a Linear,
  13 transformer blocks with AdaLN RMSNorm conditioned on the time embedding,
  interleaved RoPE, U-ViT skips (blocks 0–5 emit, 7–12 receive, last in first out),
  a long skip (Linear over [transformer out, x]), then a WaveNet (reflect-padded
  weight-normed convs, conditioned on a second time embedding) + residual, an
  AdaLN final layer and a 1×1 conv to 80 bands;
- gpt_layer: Linear 1280→256→128→1024 (no activations).
Checkpoint entries never used at inference (x_embedder, cond_embedder,
content_mask_embedder, the regulator's embedding and mask_token, input_pos, the
time embedders' freqs) are loaded and left unused.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from speechmesh.services.indextts.checkpoint import mark_weight_norm
from speechmesh.services.indextts.config import S2MelConfig

POSITIONS = 16384


class LengthRegulator(nn.Module):
    def __init__(self, config: S2MelConfig) -> None:
        super().__init__()
        lr = config.length_regulator
        if lr.is_discrete or lr.vector_quantize or lr.f0_condition or lr.n_codebooks != 1:
            raise ValueError(
                "length_regulator: only the continuous, single-codebook form is supported"
            )
        layers: list[nn.Module] = []
        for _ in lr.sampling_ratios:
            layers += [
                nn.Conv1d(lr.channels, lr.channels, 3, 1, 1),
                nn.GroupNorm(1, lr.channels),
                nn.Mish(),
            ]
        layers.append(nn.Conv1d(lr.channels, lr.channels, 1, 1))
        self.model = nn.Sequential(*layers)
        self.embedding = nn.Embedding(lr.content_codebook_size, lr.channels)
        self.mask_token = nn.Parameter(torch.zeros(1, lr.channels))
        self.content_in_proj = nn.Linear(lr.in_channels, lr.channels)

    def forward(self, content: torch.Tensor, frames: int) -> torch.Tensor:
        """(B, T, 1024) → (B, frames, 512)."""
        x = self.content_in_proj(content).transpose(1, 2)
        x = F.interpolate(x, size=frames, mode="nearest")
        return self.model(x).transpose(1, 2)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden: int, frequencies: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(frequencies, hidden), nn.SiLU(), nn.Linear(hidden, hidden)
        )
        half = frequencies // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = 1000 * t[:, None].float() * self.freqs[None]
        embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        return self.mlp(embedding.to(self.mlp[0].weight.dtype))


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


class AdaptiveNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.project_layer = nn.Linear(dim, 2 * dim)
        self.norm = RMSNorm(dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        weight, bias = self.project_layer(c).chunk(2, dim=-1)
        return weight * self.norm(x) + bias


def rope_table(length: int, head_dim: int, base: float = 10000.0) -> torch.Tensor:
    freqs = 1.0 / (base ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    angles = torch.outer(torch.arange(length), freqs)
    turns = torch.polar(torch.ones_like(angles), angles)  # as the reference: cos, sin via polar
    return torch.stack([turns.real, turns.imag], dim=-1)  # (T, hd/2, 2)


def apply_rope(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotates consecutive pairs (x0, x1), (x2, x3)… of (B, T, H, hd)."""
    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    cos, sin = table[None, : x.shape[1], None, :, 0], table[None, : x.shape[1], None, :, 1]
    rotated = torch.stack(
        [pairs[..., 0] * cos - pairs[..., 1] * sin, pairs[..., 1] * cos + pairs[..., 0] * sin],
        dim=-1,
    )
    return rotated.flatten(3).type_as(x)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.wqkv = nn.Linear(dim, 3 * dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, table: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, time, dim = x.shape
        q, k, v = self.wqkv(x).view(batch, time, 3, self.heads, -1).unbind(2)
        q, k = apply_rope(q, table), apply_rope(k, table)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask
        )
        return self.wo(out.transpose(1, 2).reshape(batch, time, dim))


class SwiGLU(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        hidden = int(2 * 4 * dim / 3)
        hidden = hidden if hidden % 256 == 0 else hidden + 256 - hidden % 256
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, skip_in: bool) -> None:
        super().__init__()
        self.attention = SelfAttention(dim, heads)
        self.feed_forward = SwiGLU(dim)
        self.ffn_norm = AdaptiveNorm(dim)
        self.attention_norm = AdaptiveNorm(dim)
        if skip_in:
            self.skip_in_linear = nn.Linear(dim * 2, dim)

    def forward(self, x, c, table, mask, skip=None):  # type: ignore[no-untyped-def]
        if skip is not None:
            x = self.skip_in_linear(torch.cat([x, skip], dim=-1))
        h = x + self.attention(self.attention_norm(x, c), table, mask)
        return h + self.feed_forward(self.ffn_norm(h, c))


class Transformer(nn.Module):
    def __init__(self, dim: int, heads: int, depth: int, uvit: bool) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TransformerBlock(dim, heads, uvit) for _ in range(depth))
        self.norm = AdaptiveNorm(dim)
        self.emit = {i for i in range(depth) if uvit and i < depth // 2}
        self.receive = {i for i in range(depth) if uvit and i > depth // 2}
        self.head_dim = dim // heads

    def forward(self, x: torch.Tensor, c: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        table = rope_table(x.shape[1], self.head_dim).to(x.device)
        skips: list[torch.Tensor] = []
        for index, layer in enumerate(self.layers):
            skip = skips.pop() if index in self.receive else None
            x = layer(x, c, table, mask, skip)
            if index in self.emit:
                skips.append(x)
        return self.norm(x, c)


class WaveNet(nn.Module):
    """Gated dilated convs with reflect padding (the reference's SConv1d), keyed `conv.conv`."""

    def __init__(self, hidden: int, kernel: int, dilation_rate: int, layers: int, gin: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.cond_layer = _wrapped_conv(gin, 2 * hidden * layers, 1, 1)
        self.in_layers = nn.ModuleList(
            _wrapped_conv(hidden, 2 * hidden, kernel, dilation_rate**i) for i in range(layers)
        )
        self.res_skip_layers = nn.ModuleList(
            _wrapped_conv(hidden, 2 * hidden if i < layers - 1 else hidden, 1, 1)
            for i in range(layers)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        output = torch.zeros_like(x)
        g = self.cond_layer(g)
        last = len(self.in_layers) - 1
        for i, (conv_in, conv_out) in enumerate(
            zip(self.in_layers, self.res_skip_layers, strict=True)
        ):
            both = conv_in(x) + g[:, i * 2 * self.hidden : (i + 1) * 2 * self.hidden]
            acts = torch.tanh(both[:, : self.hidden]) * torch.sigmoid(both[:, self.hidden :])
            res_skip = conv_out(acts)
            if i < last:
                x = (x + res_skip[:, : self.hidden]) * mask
                output = output + res_skip[:, self.hidden :]
            else:
                output = output + res_skip
        return output * mask


class _ReflectConv(nn.Module):
    def __init__(self, n_in: int, n_out: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.conv = mark_weight_norm(nn.Conv1d(n_in, n_out, kernel, dilation=dilation))
        total = (kernel - 1) * dilation
        self.pad = (total - total // 2, total // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad != (0, 0):
            x = F.pad(x, self.pad, mode="reflect")
        return self.conv(x)


class _WrappedConv(nn.Module):
    """The reference's SConv1d → NormConv1d → Conv1d nesting, for the key names."""

    def __init__(self, n_in: int, n_out: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.conv = _ReflectConv(n_in, n_out, kernel, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _wrapped_conv(n_in: int, n_out: int, kernel: int, dilation: int) -> nn.Module:
    return _WrappedConv(n_in, n_out, kernel, dilation)


class FinalLayer(nn.Module):
    def __init__(self, hidden: int, out: int) -> None:
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.linear = mark_weight_norm(nn.Linear(hidden, out))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(self.norm_final(x) * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1))


class DiT(nn.Module):
    def __init__(self, config: S2MelConfig) -> None:
        super().__init__()
        d, w = config.DiT, config.wavenet
        if d.final_layer_type != "wavenet" or d.time_as_token or d.style_as_token or d.is_causal:
            raise ValueError(
                "DiT: only the published form (wavenet head, no token conditioning) is supported"
            )
        self.transformer = Transformer(d.hidden_dim, d.num_heads, d.depth, d.uvit_skip_connection)
        self.x_embedder = mark_weight_norm(nn.Linear(d.in_channels, d.hidden_dim))
        self.cond_embedder = nn.Embedding(d.content_codebook_size, d.hidden_dim)
        self.cond_projection = nn.Linear(d.content_dim, d.hidden_dim)
        self.t_embedder = TimestepEmbedder(d.hidden_dim)
        self.register_buffer("input_pos", torch.arange(POSITIONS))
        self.t_embedder2 = TimestepEmbedder(w.hidden_dim)
        self.conv1 = nn.Linear(d.hidden_dim, w.hidden_dim)
        self.conv2 = nn.Conv1d(w.hidden_dim, d.in_channels, 1)
        self.wavenet = WaveNet(
            w.hidden_dim, w.kernel_size, w.dilation_rate, w.num_layers, w.hidden_dim
        )
        self.final_layer = FinalLayer(w.hidden_dim, w.hidden_dim)
        self.res_projection = nn.Linear(d.hidden_dim, w.hidden_dim)
        self.content_mask_embedder = nn.Embedding(1, d.hidden_dim)
        self.long_skip = d.long_skip_connection
        self.skip_linear = nn.Linear(d.hidden_dim + d.in_channels, d.hidden_dim)
        style = config.style_dim if d.style_condition else 0
        self.cond_x_merge_linear = nn.Linear(d.hidden_dim + 2 * d.in_channels + style, d.hidden_dim)
        self.style_condition = d.style_condition

    def forward(self, x, prompt_x, lengths, t, style, cond):  # type: ignore[no-untyped-def]
        """x, prompt_x (B, 80, T); t (B,); style (B, 192); cond (B, T, 512) → (B, 80, T)."""
        time = x.shape[2]
        t1 = self.t_embedder(t)
        x = x.transpose(1, 2)
        parts = [x, prompt_x.transpose(1, 2), self.cond_projection(cond)]
        if self.style_condition:
            parts.append(style[:, None, :].expand(-1, time, -1))
        merged = self.cond_x_merge_linear(torch.cat(parts, dim=-1))
        valid = torch.arange(time, device=x.device)[None, :] < lengths[:, None]
        # The full (B, 1, T, T) mask, as the reference builds it: a broadcast (B, 1, 1, T)
        # one takes another attention kernel, which sums in another order.
        attn_mask = valid[:, None, None, :].expand(-1, 1, time, -1)
        out = self.transformer(merged, t1.unsqueeze(1), attn_mask)
        if self.long_skip:
            out = self.skip_linear(torch.cat([out, x], dim=-1))
        h = self.conv1(out).transpose(1, 2)
        t2 = self.t_embedder2(t)
        mask = valid[:, None, :].to(h.dtype)
        h = self.wavenet(h, mask, t2.unsqueeze(2)).transpose(1, 2) + self.res_projection(out)
        return self.conv2(self.final_layer(h, t1).transpose(1, 2))


class CFM(nn.Module):
    """Euler flow matching with classifier-free guidance and a reference-mel prompt."""

    def __init__(self, config: S2MelConfig) -> None:
        super().__init__()
        self.estimator = DiT(config)
        self.in_channels = config.DiT.in_channels
        self.zero_prompt_speech_token = config.DiT.zero_prompt_speech_token

    @torch.inference_mode()
    def inference(
        self,
        mu: torch.Tensor,
        prompt: torch.Tensor,
        style: torch.Tensor,
        steps: int,
        cfg_rate: float,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """mu (B, T, 512) for prompt + target; prompt (B, 80, P) → mel (B, 80, T)."""
        batch, time = mu.shape[0], mu.shape[1]
        if noise is None:
            noise = torch.randn(
                batch, self.in_channels, time, generator=generator, device=mu.device
            )
        x = noise.to(mu.dtype).clone()
        prompt_len = prompt.shape[-1]
        prompt_x = torch.zeros_like(x)
        prompt_x[..., :prompt_len] = prompt
        x[..., :prompt_len] = 0
        if self.zero_prompt_speech_token:
            mu = mu.clone()
            mu[..., :prompt_len] = 0  # the reference zeroes channels here, not frames
        lengths = torch.full((batch,), time, device=mu.device)
        t_span = torch.linspace(0, 1, steps + 1, device=mu.device)
        t = t_span[0]
        for step in range(1, steps + 1):
            # The reference's Euler solver: dt from the span, t accumulated (t + dt drifts
            # from t_span by an ulp, and the time embedding follows it).
            dt = t_span[step] - t_span[step - 1]
            if cfg_rate > 0:
                both = self.estimator(
                    torch.cat([x, x]),
                    torch.cat([prompt_x, torch.zeros_like(prompt_x)]),
                    torch.cat([lengths, lengths]),
                    t.repeat(2 * batch),
                    torch.cat([style, torch.zeros_like(style)]),
                    torch.cat([mu, torch.zeros_like(mu)]),
                )
                cond, uncond = both.chunk(2)
                velocity = (1.0 + cfg_rate) * cond - cfg_rate * uncond
            else:
                velocity = self.estimator(x, prompt_x, lengths, t.repeat(batch), style, mu)
            x = x + dt * velocity
            t = t + dt
            x[:, :, :prompt_len] = 0
        return x


class S2Mel(nn.Module):
    """The `net` of s2mel.pth: cfm, length_regulator, gpt_layer."""

    def __init__(self, config: S2MelConfig) -> None:
        super().__init__()
        self.config = config
        dims = config.gpt_latent_dims
        self.cfm = CFM(config)
        self.length_regulator = LengthRegulator(config)
        self.gpt_layer = nn.Sequential(*(nn.Linear(a, b) for a, b in itertools.pairwise(dims)))


def mel_frames(codes: int) -> int:
    """Target mel frames for a number of semantic codes: int(codes × 1.72) (50 Hz → 86.13 Hz)."""
    return int(codes * 1.72)
