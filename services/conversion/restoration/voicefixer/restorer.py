"""VoiceFixer's analysis module: noisy 44.1 kHz audio → restored (linear) mel spectrogram.

STFT (2048 / hop 441, kernels from the checkpoint) → magnitude → 128-band mel (the
checkpoint's filterbank) → a denoiser mask (sigmoid) on the linear mel → a ResUNet on
log10 mels (noisy and denoised) whose output is added to the denoised log mel.
Module names follow the official `vf.ckpt` keys. The UNet's widths come from the
checkpoint (official: 32, 64, 128, 256, 384, 384); the mel has 2⁷ bands so that six
halvings of the 127 bands the UNet sees line up with its transposed convolutions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

HOP = 441
SLOPE = 0.01
TIME_MULTIPLE = 2**6  # six encoder halvings


@dataclass(frozen=True)
class MelRestorerSizes:
    n_fft: int = 2048
    n_mel: int = 128
    widths: tuple[int, ...] = (32, 64, 128, 256, 384, 384)


class BnGru(nn.Module):
    """BatchNorm over the single channel, then a 2-layer bidirectional GRU."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(1)
        self.gru = nn.GRU(width, width // 2, num_layers=2, bidirectional=True, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.bn(x).squeeze(1))
        return out.unsqueeze(1)


def denoiser(n_mel: int) -> nn.Sequential:
    """Indices match the official `generator.denoiser.N` keys."""
    return nn.Sequential(
        nn.BatchNorm2d(1),
        nn.Linear(n_mel, n_mel * 2),
        nn.ReLU(),
        nn.BatchNorm2d(1),
        nn.Linear(n_mel * 2, n_mel * 4),
        nn.Dropout(0.5),
        nn.ReLU(),
        BnGru(n_mel * 4),
        BnGru(n_mel * 4),
        nn.BatchNorm2d(1),
        nn.ReLU(),
        nn.Linear(n_mel * 4, n_mel * 4),
        nn.Dropout(0.5),
        nn.BatchNorm2d(1),
        nn.ReLU(),
        nn.Linear(n_mel * 4, n_mel),
        nn.Sigmoid(),
    )


class ConvBlockRes(nn.Module):
    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(channels_in)
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False)
        self.shortcut = (
            nn.Conv2d(channels_in, channels_out, 1) if channels_in != channels_out else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.leaky_relu(self.bn1(x), SLOPE))
        out = self.conv2(F.leaky_relu(self.bn2(out), SLOPE))
        return (self.shortcut(x) if self.shortcut is not None else x) + out


class EncoderBlockRes(nn.Module):
    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.conv_block1 = ConvBlockRes(channels_in, channels_out)
        self.conv_block2 = ConvBlockRes(channels_out, channels_out)
        self.conv_block3 = ConvBlockRes(channels_out, channels_out)
        self.conv_block4 = ConvBlockRes(channels_out, channels_out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv_block4(self.conv_block3(self.conv_block2(self.conv_block1(x))))
        return F.avg_pool2d(x, 2), x


class DecoderBlockRes(nn.Module):
    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(channels_in)
        self.conv1 = nn.ConvTranspose2d(channels_in, channels_out, 3, stride=2, bias=False)
        self.conv_block2 = ConvBlockRes(channels_out * 2, channels_out)
        self.conv_block3 = ConvBlockRes(channels_out, channels_out)
        self.conv_block4 = ConvBlockRes(channels_out, channels_out)
        self.conv_block5 = ConvBlockRes(channels_out, channels_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # The transposed conv gives 2n + 1 on both axes; only time drops its extra step.
        x = self.conv1(F.relu(self.bn1(x)))[:, :, :-1, :]
        x = self.conv_block2(torch.cat([x, skip], dim=1))
        return self.conv_block5(self.conv_block4(self.conv_block3(x)))


class ResUNet(nn.Module):
    """[batch, 2, frames, n_mel] log mels → [batch, 1, frames, n_mel] log-mel correction."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        ins = (2, *widths[:-1])
        for i, (channels_in, channels_out) in enumerate(zip(ins, widths, strict=True), 1):
            self.add_module(f"encoder_block{i}", EncoderBlockRes(channels_in, channels_out))
        self.conv_block7 = ConvBlockRes(widths[-1], widths[-1])
        outs = tuple(reversed(widths))
        for i, (channels_in, channels_out) in enumerate(
            zip((widths[-1], *outs[:-1]), outs, strict=True), 1
        ):
            self.add_module(f"decoder_block{i}", DecoderBlockRes(channels_in, channels_out))
        self.after_conv_block1 = ConvBlockRes(widths[0], widths[0])
        self.after_conv2 = nn.Conv2d(widths[0], 1, 1)
        self.depth = len(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.size(2)
        x = F.pad(x, (0, 0, 0, -frames % TIME_MULTIPLE))[..., :-1]  # the top band sits out
        skips = []
        for i in range(1, self.depth + 1):
            x, skip = getattr(self, f"encoder_block{i}")(x)
            skips.append(skip)
        x = self.conv_block7(x)
        for i in range(1, self.depth + 1):
            x = getattr(self, f"decoder_block{i}")(x, skips[-i])
        x = self.after_conv2(self.after_conv_block1(x))
        return F.pad(x, (0, 1))[:, :, :frames]


class Generator(nn.Module):
    def __init__(self, sizes: MelRestorerSizes) -> None:
        super().__init__()
        self.denoiser = denoiser(sizes.n_mel)
        self.unet = ResUNet(sizes.widths)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Linear mel [batch, 1, frames, n_mel] → restored log10 mel, same shape."""
        clean = self.denoiser(mel) * mel
        clean_log = torch.log10(clean.clamp_min(1e-8))
        unet_in = torch.cat([torch.log10(mel.clamp_min(1e-8)), clean_log], dim=1)
        return self.unet(unet_in) + clean_log


class Stft(nn.Module):
    """The checkpoint's STFT as two convolutions (window folded into the kernels)."""

    def __init__(self, n_fft: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.conv_real = nn.Conv1d(1, n_fft // 2 + 1, n_fft, stride=HOP, bias=False)
        self.conv_imag = nn.Conv1d(1, n_fft // 2 + 1, n_fft, stride=HOP, bias=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """[batch, samples] → magnitude [batch, 1, frames, bins], centred, reflect-padded."""
        half = self.n_fft // 2
        padded = F.pad(wav[:, None, :], (half, half), mode="reflect")
        real, imag = self.conv_real(padded), self.conv_imag(padded)
        return (real.square() + imag.square()).clamp_min(1e-8).sqrt().transpose(1, 2)[:, None]


class FDomainHelper(nn.Module):
    def __init__(self, n_fft: int) -> None:
        super().__init__()
        self.stft = Stft(n_fft)


class MelScale(nn.Module):
    def __init__(self, bins: int, n_mel: int) -> None:
        super().__init__()
        self.register_buffer("fb", torch.zeros(bins, n_mel))

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        return magnitude @ self.fb


class MelRestorer(nn.Module):
    """The modules of `vf.ckpt` that inference uses: generator, f_helper.stft, mel."""

    def __init__(self, sizes: MelRestorerSizes) -> None:
        super().__init__()
        self.generator = Generator(sizes)
        self.f_helper = FDomainHelper(sizes.n_fft)
        self.mel = MelScale(sizes.n_fft // 2 + 1, sizes.n_mel)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """[batch, samples] at 44.1 kHz → restored linear mel [batch, 1, frames, n_mel]."""
        mel = self.mel(self.f_helper.stft(wav))
        return torch.pow(10.0, self.generator(mel).clamp(max=5.0))
