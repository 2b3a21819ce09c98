"""MaskGCT semantic codec (RepCodec): w2v-BERT features → semantic codes and their embeddings.

Published as `semantic_codec/model.safetensors` with keys `encoder.0.*` (Vocos
ConvNeXt backbone), `encoder.1.*` (Linear back to 1024), `quantizer.quantizers.0.*`
(factorized VQ: weight-normed 1×1 in/out projections around an L2-normalised
8-dim codebook) and a `decoder.*` that inference never uses (ignored at load).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from speechmesh.services.indextts.checkpoint import mark_weight_norm
from speechmesh.services.indextts.config import SemanticCodecConfig


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, intermediate: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate)
        self.pwconv2 = nn.Linear(intermediate, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x).transpose(1, 2))
        y = self.gamma * self.pwconv2(F.gelu(self.pwconv1(y)))
        return x + y.transpose(1, 2)


class VocosBackbone(nn.Module):
    def __init__(self, in_dim: int, dim: int, intermediate: int, layers: int) -> None:
        super().__init__()
        self.embed = nn.Conv1d(in_dim, dim, 7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.convnext = nn.ModuleList(ConvNeXtBlock(dim, intermediate) for _ in range(layers))
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) → (B, T, dim)."""
        x = self.norm(self.embed(x).transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))


class FactorizedVQ(nn.Module):
    def __init__(self, dim: int, codebook_size: int, codebook_dim: int) -> None:
        super().__init__()
        self.in_project = mark_weight_norm(nn.Conv1d(dim, codebook_dim, 1))
        self.out_project = mark_weight_norm(nn.Conv1d(codebook_dim, dim, 1))
        self.codebook = nn.Embedding(codebook_size, codebook_dim)

    def quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, dim, T) → codes (B, T) and their embeddings (B, dim, T), as the reference
        makes them: the nearest codebook row by the expanded L2 distance of normalised
        vectors, and the straight-through sum z_e + (z_q − z_e) (not z_q itself in float
        arithmetic: it differs by an ulp here and there) through out_project."""
        z_e = self.in_project(x)
        latents = F.normalize(z_e.transpose(1, 2).reshape(-1, z_e.shape[1]))
        book = F.normalize(self.codebook.weight)
        dist = (
            latents.pow(2).sum(1, keepdim=True)
            - 2 * latents @ book.t()
            + book.pow(2).sum(1, keepdim=True).t()
        )
        codes = (-dist).max(1)[1].view(x.shape[0], -1)
        z_q = self.codebook(codes).transpose(1, 2)
        return codes, self.out_project(z_e + (z_q - z_e))

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T) → (B, dim, T)."""
        return self.out_project(self.codebook(codes).transpose(1, 2))


class Quantizer(nn.Module):
    def __init__(self, config: SemanticCodecConfig) -> None:
        super().__init__()
        self.quantizers = nn.ModuleList(
            [FactorizedVQ(config.hidden_size, config.codebook_size, config.codebook_dim)]
        )


class SemanticCodec(nn.Module):
    def __init__(self, config: SemanticCodecConfig) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            VocosBackbone(
                config.hidden_size,
                config.vocos_dim,
                config.vocos_intermediate_dim,
                config.vocos_num_layers,
            ),
            nn.Linear(config.vocos_dim, config.hidden_size),
        )
        self.quantizer = Quantizer(config)

    @property
    def vq(self) -> FactorizedVQ:
        return self.quantizer.quantizers[0]  # type: ignore[return-value]

    def quantize(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, 1024) normalised w2v-BERT features → codes (B, T), embeddings (B, T, 1024)."""
        encoded = self.encoder(features.transpose(1, 2)).transpose(1, 2)
        codes, embeddings = self.vq.quantize(encoded)
        return codes, embeddings.transpose(1, 2)

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T) codes → (B, T, 1024)."""
        return self.vq.embed(codes).transpose(1, 2)
