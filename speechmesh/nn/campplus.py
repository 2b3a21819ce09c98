"""CAM++ speaker encoder (3D-Speaker / FunASR): mean-normalised Kaldi fbank → embedding.

The same network serves IndexTTS-2 (funasr/campplus, campplus_cn_common.bin, its
192-d style) and Chatterbox's S3Gen (the `speaker_encoder.*` x-vector inside
s3gen.safetensors); both use the official sizes, CampplusConfig's defaults.
Key names `head.*` (2-D conv front end with residual blocks) and `xvector.*`
(TDNN, three CAM dense blocks with context-aware masking, transit layers, stats
pooling, dense + affine-free batch norm).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class CampplusConfig:
    """CAM++ sizes (fixed in both references; tests shrink them)."""

    feat_dim: int = 80
    embedding_size: int = 192
    growth_rate: int = 32
    bn_size: int = 4
    init_channels: int = 128
    m_channels: int = 32
    block_layers: tuple[int, ...] = (12, 24, 16)
    block_dilations: tuple[int, ...] = (1, 2, 2)


def _bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(batchnorm=nn.BatchNorm1d(channels), relu=nn.ReLU()))


class BasicResBlock(nn.Module):
    def __init__(self, n_in: int, n_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(n_in, n_out, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(n_out)
        self.conv2 = nn.Conv2d(n_out, n_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(n_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or n_in != n_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(n_in, n_out, 1, stride=(stride, 1), bias=False), nn.BatchNorm2d(n_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.shortcut(x))


class FCM(nn.Module):
    def __init__(self, channels: int, feat_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.layer1 = nn.Sequential(
            BasicResBlock(channels, channels, 2), BasicResBlock(channels, channels, 1)
        )
        self.layer2 = nn.Sequential(
            BasicResBlock(channels, channels, 2), BasicResBlock(channels, channels, 1)
        )
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.out_channels = channels * (feat_dim // 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x.unsqueeze(1))))
        out = F.relu(self.bn2(self.conv2(self.layer2(self.layer1(out)))))
        return out.reshape(out.shape[0], out.shape[1] * out.shape[2], out.shape[3])


class CAMLayer(nn.Module):
    def __init__(self, bn_channels: int, out: int, kernel: int, dilation: int) -> None:
        super().__init__()
        padding = (kernel - 1) // 2 * dilation
        self.linear_local = nn.Conv1d(
            bn_channels, out, kernel, padding=padding, dilation=dilation, bias=False
        )
        self.linear1 = nn.Conv1d(bn_channels, bn_channels // 2, 1)
        self.linear2 = nn.Conv1d(bn_channels // 2, out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local = self.linear_local(x)
        segments = F.avg_pool1d(x, kernel_size=100, stride=100, ceil_mode=True)
        segments = segments.repeat_interleave(100, dim=-1)[..., : x.shape[-1]]
        context = x.mean(-1, keepdim=True) + segments
        return local * torch.sigmoid(self.linear2(F.relu(self.linear1(context))))


class DenseTDNNLayer(nn.Module):
    def __init__(self, n_in: int, out: int, bn_channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.nonlinear1 = _bn_relu(n_in)
        self.linear1 = nn.Conv1d(n_in, bn_channels, 1, bias=False)
        self.nonlinear2 = _bn_relu(bn_channels)
        self.cam_layer = CAMLayer(bn_channels, out, kernel, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))


class DenseBlock(nn.ModuleDict):
    def __init__(
        self, layers: int, n_in: int, growth: int, bn_channels: int, dilation: int
    ) -> None:
        super().__init__(
            {
                f"tdnnd{i + 1}": DenseTDNNLayer(n_in + i * growth, growth, bn_channels, 3, dilation)
                for i in range(layers)
            }
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.values():
            x = torch.cat([x, layer(x)], dim=1)
        return x


class Transit(nn.Module):
    def __init__(self, n_in: int, out: int) -> None:
        super().__init__()
        self.nonlinear = _bn_relu(n_in)
        self.linear = nn.Conv1d(n_in, out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.nonlinear(x))


class TDNN(nn.Module):
    def __init__(self, n_in: int, out: int) -> None:
        super().__init__()
        self.linear = nn.Conv1d(n_in, out, 5, stride=2, padding=2, bias=False)
        self.nonlinear = _bn_relu(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x))


class StatsPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=-1), x.std(dim=-1, unbiased=True)], dim=-1)


class Dense(nn.Module):
    def __init__(self, n_in: int, out: int) -> None:
        super().__init__()
        self.linear = nn.Conv1d(n_in, out, 1, bias=False)
        self.nonlinear = nn.Sequential(OrderedDict(batchnorm=nn.BatchNorm1d(out, affine=False)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.nonlinear(self.linear(x.unsqueeze(-1)).squeeze(-1))


class CAMPPlus(nn.Module):
    def __init__(self, config: CampplusConfig) -> None:
        super().__init__()
        self.head = FCM(config.m_channels, config.feat_dim)
        channels = self.head.out_channels
        modules: OrderedDict[str, nn.Module] = OrderedDict(
            tdnn=TDNN(channels, config.init_channels)
        )
        channels = config.init_channels
        bn_channels = config.bn_size * config.growth_rate
        for i, (layers, dilation) in enumerate(
            zip(config.block_layers, config.block_dilations, strict=True)
        ):
            modules[f"block{i + 1}"] = DenseBlock(
                layers, channels, config.growth_rate, bn_channels, dilation
            )
            channels += layers * config.growth_rate
            modules[f"transit{i + 1}"] = Transit(channels, channels // 2)
            channels //= 2
        modules["out_nonlinear"] = _bn_relu(channels)
        modules["stats"] = StatsPool()
        modules["dense"] = Dense(channels * 2, config.embedding_size)
        self.xvector = nn.Sequential(modules)

    def forward(self, fbank: torch.Tensor) -> torch.Tensor:
        """(B, frames, 80) mean-normalised fbank → (B, 192)."""
        return self.xvector(self.head(fbank.transpose(1, 2)))
