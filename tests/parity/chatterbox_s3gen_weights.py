"""Tiny random S3Gen checkpoints in the official layout (s3gen.safetensors and turbo's
s3gen_meanflow.safetensors), rebuilt bit for bit from a seed.

Shared by the parity generator (scripts/parity/chatterbox_s3gen.py, which loads them
into the reference) and the suite (which checks the digest and serves them). The
official file stores HiFT's weight-normed convolutions as torch parametrizations,
`X.parametrizations.weight.original0` (g) and `original1` (v); v is saved at a random
per-channel scale so that folding is exercised.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors.torch import save_file

from speechmesh.nn.campplus import CampplusConfig
from speechmesh.nn.chatterbox.s3gen import S3Gen, S3GenConfig
from speechmesh.nn.chatterbox.s3gen.config import (
    EncoderConfig,
    EstimatorConfig,
    HiFTConfig,
)
from speechmesh.nn.chatterbox.s3tokenizer import S3TokenizerConfig

TINY_TOKENIZER = S3TokenizerConfig(n_state=128, n_head=2, n_layer=2)
TINY_CAMPPLUS = CampplusConfig(growth_rate=8, bn_size=2, init_channels=16)
TINY_ENCODER = EncoderConfig(input_size=64, size=64, heads=2, linear_units=128, blocks=2)
# Heads stay 64-wide (fixed upstream; the loader reads sizes from shapes).
TINY_ESTIMATOR = EstimatorConfig(
    channels=(32,), attention_head_dim=64, n_blocks=1, num_mid_blocks=2, num_heads=1
)
TINY_HIFT = HiFTConfig(base_channels=32, f0_channels=32)
GENTLE = {"mel2wav.f0_predictor.classifier.weight": 0.02, "mel2wav.conv_post.weight": 0.15}


def tiny_config(meanflow: bool = False) -> S3GenConfig:
    return S3GenConfig(
        tokenizer=TINY_TOKENIZER,
        campplus=TINY_CAMPPLUS,
        encoder=TINY_ENCODER,
        estimator=TINY_ESTIMATOR,
        hift=TINY_HIFT,
        meanflow=meanflow,
    )


def weight_normed(model: S3Gen) -> list[str]:
    """HiFT's convolutions that the reference wraps in weight_norm."""
    names = []
    for name, module in model.mel2wav.named_modules():
        if not isinstance(module, torch.nn.Conv1d | torch.nn.ConvTranspose1d):
            continue
        if name.startswith("source_downs."):
            continue  # plain convolutions in the reference
        names.append(f"mel2wav.{name}")
    return names


def randomize(model: S3Gen, seed: int) -> dict[str, torch.Tensor]:
    """Every tensor random at a scale that keeps activations in range."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, value in model.state_dict().items():
        if name.endswith("num_batches_tracked") or name in (
            "tokenizer._mel_filters",
            "tokenizer.window",
        ):
            state[name] = value.clone()
            continue
        shape = value.shape
        if name.endswith("running_var"):
            new = torch.rand(shape, generator=g) + 0.5
        elif name == "mel2wav.f0_predictor.classifier.bias":
            new = 120 + 20 * torch.randn(shape, generator=g)  # voiced: f0 well above 10 Hz
        elif name.endswith("running_mean") or name.endswith(".bias"):
            new = torch.randn(shape, generator=g) * 0.05
        elif value.dim() == 1:  # norm scales, Snake alphas
            new = 1 + 0.1 * torch.randn(shape, generator=g)
        elif name.endswith("pos_bias_u") or name.endswith("pos_bias_v"):
            new = torch.randn(shape, generator=g) * 0.1
        elif name in GENTLE:
            # HiFT integrates f0 into phase over every sample, so its sensitivity to
            # the mel grows with length; small weights here keep a 1e-7 difference in
            # the mel from growing past 1e-5 in the audio (and the output unclipped).
            new = torch.randn(shape, generator=g) * GENTLE[name] / value[0].numel() ** 0.5
        elif "input_embedding" in name:
            new = torch.randn(shape, generator=g)
        else:
            new = torch.randn(shape, generator=g) / value[0].numel() ** 0.5
        state[name] = new.to(value.dtype)
    return state


def official_layout(
    model: S3Gen, state: dict[str, torch.Tensor], seed: int
) -> dict[str, torch.Tensor]:
    """`state` as the official file stores it (weight-normed pairs for HiFT)."""
    g = torch.Generator().manual_seed(seed + 1)
    out = dict(state)
    for name in weight_normed(model):
        weight = out.pop(f"{name}.weight")
        dims = tuple(range(1, weight.dim()))
        scale = torch.rand((weight.shape[0],) + (1,) * (weight.dim() - 1), generator=g) + 0.5
        out[f"{name}.parametrizations.weight.original0"] = (
            weight.square().sum(dims, keepdim=True).sqrt()
        )
        out[f"{name}.parametrizations.weight.original1"] = weight * scale
    return {k: v.contiguous() for k, v in out.items()}


def digest(state: dict[str, torch.Tensor]) -> str:
    hashed = hashlib.sha256()
    for key in sorted(state):
        hashed.update(key.encode())
        hashed.update(state[key].contiguous().numpy().tobytes())
    return hashed.hexdigest()


def save_s3gen(folder: Path, seed: int, meanflow: bool = False) -> tuple[Path, str]:
    """Writes s3gen.safetensors (or s3gen_meanflow.safetensors); returns it and its digest."""
    folder.mkdir(parents=True, exist_ok=True)
    model = S3Gen(tiny_config(meanflow))
    files = official_layout(model, randomize(model, seed), seed)
    path = folder / ("s3gen_meanflow.safetensors" if meanflow else "s3gen.safetensors")
    save_file(files, str(path))
    return path, digest(files)
