"""S3Gen's sizes: the official ones (fixed in the reference's code) by default.

Nothing in the official layout records them (s3gen.safetensors holds tensors only),
so the defaults here are the published network; tests build smaller ones to keep
random-weight checkpoints small. Turbo (s3gen_meanflow.safetensors) differs only in
`meanflow` (a time mixer in the estimator, two Euler steps, no guidance).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from speechmesh.nn.campplus import CampplusConfig
from speechmesh.nn.chatterbox.s3tokenizer import S3TokenizerConfig

SAMPLE_RATE = 24000
MEL_BINS = 80
TOKEN_MEL_RATIO = 2  # 25 Hz tokens → 50 Hz mel frames
SPEECH_VOCAB = 6561
SILENCE_TOKEN = 4299  # S3GEN_SIL: turbo appends three after T3's tokens


@dataclass(frozen=True)
class EncoderConfig:
    """The upsampling conformer (rel-pos self-attention, SiLU FFN, pre-norm)."""

    input_size: int = 512
    size: int = 512
    heads: int = 8
    linear_units: int = 2048
    blocks: int = 6
    up_blocks: int = 4
    pre_lookahead: int = 3
    up_stride: int = 2


@dataclass(frozen=True)
class EstimatorConfig:
    """The CFM estimator: a causal 1-D U-Net with transformer blocks."""

    in_channels: int = 320  # x, mu, speaker, prompt mel: 4 × 80
    out_channels: int = MEL_BINS
    channels: tuple[int, ...] = (256,)
    attention_head_dim: int = 64
    n_blocks: int = 4
    num_mid_blocks: int = 12
    num_heads: int = 8


@dataclass(frozen=True)
class HiFTConfig:
    """HiFT: neural source filter + iSTFTNet at 24 kHz."""

    in_channels: int = MEL_BINS
    base_channels: int = 512
    nb_harmonics: int = 8
    nsf_alpha: float = 0.1
    nsf_sigma: float = 0.003
    nsf_voiced_threshold: float = 10.0
    upsample_rates: tuple[int, ...] = (8, 5, 3)
    upsample_kernel_sizes: tuple[int, ...] = (16, 11, 7)
    n_fft: int = 16
    hop: int = 4
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilations: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    source_resblock_kernel_sizes: tuple[int, ...] = (7, 7, 11)
    source_resblock_dilations: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    lrelu_slope: float = 0.1
    audio_limit: float = 0.99
    f0_channels: int = 512


@dataclass(frozen=True)
class S3GenConfig:
    tokenizer: S3TokenizerConfig = field(default_factory=S3TokenizerConfig)
    campplus: CampplusConfig = field(default_factory=CampplusConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    estimator: EstimatorConfig = field(default_factory=EstimatorConfig)
    hift: HiFTConfig = field(default_factory=HiFTConfig)
    vocab_size: int = SPEECH_VOCAB
    meanflow: bool = False
    cfg_rate: float = 0.7  # classifier-free guidance of the standard (non-meanflow) decoder

    @property
    def cfm_steps(self) -> int:
        """The reference's default Euler steps: 10 (cosine schedule), 2 for meanflow."""
        return 2 if self.meanflow else 10
