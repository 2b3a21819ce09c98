"""IndexTTS-2 configuration: one dataclass per stage, defaults = the official config.yaml.

`IndexTTSConfig.from_yaml` reads a checkpoint's config.yaml; a key of the wrong type
is a FailedPrecondition naming it, and keys the pipeline never reads (training
settings) are accepted and ignored, as the reference does.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from speechmesh.runtime.errors import FailedPrecondition

EMOTIONS = ("happy", "angry", "sad", "afraid", "disgusted", "melancholic", "surprised", "calm")


@dataclass(frozen=True)
class ConformerConfig:
    """A WeNet-style conformer encoder in front of a perceiver (speaker or emotion)."""

    output_size: int = 512
    linear_units: int = 2048
    attention_heads: int = 8
    num_blocks: int = 6
    input_layer: str = "conv2d2"
    perceiver_mult: int = 2


def _emotion_conformer() -> ConformerConfig:
    return ConformerConfig(linear_units=1024, attention_heads=4, num_blocks=4)


@dataclass(frozen=True)
class GptConfig:
    """UnifiedVoice v2 (the `gpt` section)."""

    model_dim: int = 1280
    max_mel_tokens: int = 1815
    max_text_tokens: int = 600
    heads: int = 20
    use_mel_codes_as_input: bool = True
    mel_length_compression: int = 1024
    layers: int = 24
    number_text_tokens: int = 12000
    number_mel_codes: int = 8194
    start_mel_token: int = 8192
    stop_mel_token: int = 8193
    start_text_token: int = 0
    stop_text_token: int = 1
    train_solo_embeddings: bool = False
    condition_type: str = "conformer_perceiver"
    condition_num_latent: int = 32
    max_conditioning_inputs: int = 1
    types: int = 1
    condition_module: ConformerConfig = field(default_factory=ConformerConfig)
    emo_condition_module: ConformerConfig = field(default_factory=_emotion_conformer)
    semantic_dim: int = 1024
    """Width of the w2v-BERT features both conformers read (fixed in the reference)."""


@dataclass(frozen=True)
class SemanticCodecConfig:
    """MaskGCT RepCodec (the `semantic_codec` section)."""

    codebook_size: int = 8192
    hidden_size: int = 1024
    codebook_dim: int = 8
    vocos_dim: int = 384
    vocos_intermediate_dim: int = 2048
    vocos_num_layers: int = 12


@dataclass(frozen=True)
class SpectConfig:
    """The 22.05 kHz reference mel (s2mel.preprocess_params)."""

    sr: int = 22050
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = None


@dataclass(frozen=True)
class LengthRegulatorConfig:
    channels: int = 512
    is_discrete: bool = False
    in_channels: int = 1024
    content_codebook_size: int = 2048
    sampling_ratios: tuple[int, ...] = (1, 1, 1, 1)
    vector_quantize: bool = False
    n_codebooks: int = 1
    quantizer_dropout: float = 0.0
    f0_condition: bool = False
    n_f0_bins: int = 512


@dataclass(frozen=True)
class DiTConfig:
    hidden_dim: int = 512
    num_heads: int = 8
    depth: int = 13
    class_dropout_prob: float = 0.1
    block_size: int = 8192
    in_channels: int = 80
    style_condition: bool = True
    final_layer_type: str = "wavenet"
    target: str = "mel"
    content_dim: int = 512
    content_codebook_size: int = 1024
    content_type: str = "discrete"
    f0_condition: bool = False
    n_f0_bins: int = 512
    content_codebooks: int = 1
    is_causal: bool = False
    long_skip_connection: bool = True
    zero_prompt_speech_token: bool = False
    time_as_token: bool = False
    style_as_token: bool = False
    uvit_skip_connection: bool = True
    add_resblock_in_transformer: bool = False


@dataclass(frozen=True)
class WavenetConfig:
    hidden_dim: int = 512
    num_layers: int = 8
    kernel_size: int = 5
    dilation_rate: int = 1
    p_dropout: float = 0.2
    style_condition: bool = True


@dataclass(frozen=True)
class S2MelConfig:
    preprocess_params: SpectConfig = field(default_factory=SpectConfig)
    dit_type: str = "DiT"
    reg_loss_type: str = "l1"
    style_dim: int = 192
    length_regulator: LengthRegulatorConfig = field(default_factory=LengthRegulatorConfig)
    DiT: DiTConfig = field(default_factory=DiTConfig)
    wavenet: WavenetConfig = field(default_factory=WavenetConfig)
    gpt_latent_dims: tuple[int, ...] = (1280, 256, 128, 1024)
    """gpt_layer: Linear chain from the GPT width to the semantic width (fixed in the reference)."""


@dataclass(frozen=True)
class BigVGANConfig:
    """nvidia/bigvgan_v2_22khz_80band_256x config.json (the fields inference reads)."""

    num_mels: int = 80
    upsample_rates: tuple[int, ...] = (4, 4, 2, 2, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (8, 8, 4, 4, 4, 4)
    upsample_initial_channel: int = 1536
    resblock: str = "1"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    activation: str = "snakebeta"
    snake_logscale: bool = True
    use_tanh_at_final: bool = False
    use_bias_at_final: bool = False
    sampling_rate: int = 22050
    hop_size: int = 256

    @property
    def upsample_factor(self) -> int:
        factor = 1
        for rate in self.upsample_rates:
            factor *= rate
        return factor


@dataclass(frozen=True)
class IndexTTSConfig:
    """The whole checkpoint config.yaml."""

    gpt: GptConfig = field(default_factory=GptConfig)
    semantic_codec: SemanticCodecConfig = field(default_factory=SemanticCodecConfig)
    s2mel: S2MelConfig = field(default_factory=S2MelConfig)
    bpe_model: str = "bpe.model"
    gpt_checkpoint: str = "gpt.pth"
    w2v_stat: str = "wav2vec2bert_stats.pt"
    s2mel_checkpoint: str = "s2mel.pth"
    emo_matrix: str = "feat2.pt"
    spk_matrix: str = "feat1.pt"
    emo_num: tuple[int, ...] = (3, 17, 2, 8, 4, 5, 10, 24)
    qwen_emo_path: str = "qwen0.6bemo4-merge/"
    vocoder_name: str = "nvidia/bigvgan_v2_22khz_80band_256x"
    version: str = "2.0"
    w2v_layer: int = 17
    """Hidden state of w2v-BERT 2.0 the pipeline reads (fixed in the reference)."""

    @classmethod
    def from_yaml(cls, path: Path) -> IndexTTSConfig:
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise FailedPrecondition(f"{path} is not a readable YAML file: {error}") from error
        if not isinstance(raw, dict):
            raise FailedPrecondition(f"{path} does not hold a mapping")
        return cls.from_dict(raw, source=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> IndexTTSConfig:
        flat = dict(raw)
        s2mel = dict(flat.pop("s2mel", {}) or {})
        style = s2mel.pop("style_encoder", {}) or {}
        if "dim" in style:
            s2mel["style_dim"] = style["dim"]
        preprocess = dict(s2mel.get("preprocess_params", {}) or {})
        spect = preprocess.pop("spect_params", None)
        if isinstance(spect, dict):  # the published layout nests the STFT settings
            preprocess.update(spect)
        if preprocess:
            s2mel["preprocess_params"] = preprocess
        flat["s2mel"] = s2mel
        dataset = flat.pop("dataset", {}) or {}
        if "bpe_model" in dataset:
            flat["bpe_model"] = dataset["bpe_model"]
        vocoder = flat.pop("vocoder", {}) or {}
        if "name" in vocoder:
            flat["vocoder_name"] = vocoder["name"]
        if "version" in flat:
            flat["version"] = str(flat["version"])
        config: IndexTTSConfig = _build(cls, flat, source)
        if len(config.emo_num) != len(EMOTIONS):
            raise FailedPrecondition(
                f"{source}: emo_num has {len(config.emo_num)} entries; one per emotion "
                f"({len(EMOTIONS)}) is needed"
            )
        return config

    def to_dict(self) -> dict[str, Any]:
        """The config.yaml layout of this config (what `from_dict` reads back)."""
        body = dataclasses.asdict(self)
        s2mel = body.pop("s2mel")
        s2mel["style_encoder"] = {"dim": s2mel.pop("style_dim")}
        spect = s2mel.pop("preprocess_params")
        sr = spect.pop("sr")
        spect["fmax"] = "None" if spect["fmax"] is None else spect["fmax"]
        s2mel = {"preprocess_params": {"sr": sr, "spect_params": spect}, **s2mel}
        body["s2mel"] = s2mel
        body["dataset"] = {"bpe_model": body.pop("bpe_model")}
        body["vocoder"] = {"type": "bigvgan", "name": body.pop("vocoder_name")}
        return _plain(body)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _build(kind: type, raw: dict[str, Any], where: str) -> Any:
    """A dataclass from a mapping; unknown keys are ignored, wrong types are named."""
    hints = typing.get_type_hints(kind)
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(kind):
        if spec.name not in raw:
            continue
        values[spec.name] = _convert(hints[spec.name], raw[spec.name], f"{where}: {spec.name}")
    return kind(**values)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise FailedPrecondition(f"{where} must be a mapping, got {value!r}")
        return _build(hint, value, where)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        if value is None or value == "None":
            return None
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _convert(options[0], value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise FailedPrecondition(f"{where} must be a list, got {value!r}")
        inner = typing.get_args(hint)[0]
        return tuple(_convert(inner, item, where) for item in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise FailedPrecondition(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FailedPrecondition(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FailedPrecondition(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str | int | float):
            raise FailedPrecondition(f"{where} must be a string, got {value!r}")
        return str(value)
    return value
