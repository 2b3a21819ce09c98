"""A MeloTTS config.json (`data`, `model`, `symbols`, `num_tones`, `num_languages`),
validated; the speakers are data.spk2id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from speechmesh.nn.vits.config import ConfigJson
from speechmesh.runtime.errors import FailedPrecondition


@dataclass(frozen=True)
class MeloConfig:
    sampling_rate: int
    filter_length: int
    hop_length: int
    add_blank: bool
    disable_bert: bool
    """data.disable_bert: zeros stand for the BERT features (no BERT is loaded)."""
    n_speakers: int
    speakers: dict[str, int]
    """data.spk2id: speaker name → row of emb_g."""
    inter_channels: int
    hidden_channels: int
    filter_channels: int
    n_heads: int
    n_layers: int
    kernel_size: int
    resblock: str
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    upsample_rates: tuple[int, ...]
    upsample_initial_channel: int
    upsample_kernel_sizes: tuple[int, ...]
    gin_channels: int
    use_transformer_flow: bool
    n_layers_trans_flow: int
    n_flow_layer: int
    speaker_conditioned_encoder: bool
    symbols: tuple[str, ...]
    num_tones: int
    num_languages: int

    @property
    def spec_channels(self) -> int:
        return self.filter_length // 2 + 1

    @classmethod
    def from_json(cls, document: Any, origin: str) -> MeloConfig:
        """From a parsed config.json; FailedPrecondition naming what is missing or wrong.
        Defaults are the reference SynthesizerTrn's where a config may leave a key out."""
        if not isinstance(document, dict):
            raise FailedPrecondition(f"{origin} is not a JSON object")
        read = ConfigJson(document, origin)
        data, model = read.data, read.model

        speakers, symbols = data.get("spk2id"), document.get("symbols")
        if not isinstance(speakers, dict) or not speakers:
            raise FailedPrecondition(f"{origin}: data.spk2id (speaker name → id) is missing")
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise FailedPrecondition(f"{origin}: symbols (a list of strings) is missing")
        for name in ("flow_share_parameter", "use_vc"):
            if model.get(name, False):
                raise FailedPrecondition(f"{origin}: model.{name} true is not supported")
        config = cls(
            sampling_rate=int(read.required("data", "sampling_rate")),
            filter_length=int(read.required("data", "filter_length")),
            hop_length=int(read.required("data", "hop_length")),
            add_blank=bool(read.required("data", "add_blank")),
            disable_bert=bool(data.get("disable_bert", False)),
            n_speakers=int(read.required("data", "n_speakers")),
            speakers={str(name): int(sid) for name, sid in speakers.items()},
            **read.generator_sizes(),
            filter_channels=int(read.required("model", "filter_channels")),
            n_heads=int(read.required("model", "n_heads")),
            n_layers=int(read.required("model", "n_layers")),
            kernel_size=int(read.required("model", "kernel_size")),
            gin_channels=int(model.get("gin_channels", 256)),
            use_transformer_flow=bool(model.get("use_transformer_flow", True)),
            n_layers_trans_flow=int(model.get("n_layers_trans_flow", 6)),
            n_flow_layer=int(model.get("n_flow_layer", 4)),
            speaker_conditioned_encoder=bool(model.get("use_spk_conditioned_encoder", True)),
            symbols=tuple(symbols),
            num_tones=int(read.required("config", "num_tones")),
            num_languages=int(read.required("config", "num_languages")),
        )
        config._check(read)
        return config

    def _check(self, read: ConfigJson) -> None:
        origin = read.origin
        read.check_generator(self.upsample_rates, self.hop_length, self.resblock)
        read.check_heads(self.hidden_channels, self.n_heads)
        if self.n_speakers < 1 or self.gin_channels < 1:
            raise FailedPrecondition(
                f"{origin}: MeloTTS needs data.n_speakers and model.gin_channels > 0 (a "
                "reference-encoder model without a speaker table is not supported)"
            )
        outside = {n: i for n, i in self.speakers.items() if not 0 <= i < self.n_speakers}
        if outside:
            raise FailedPrecondition(
                f"{origin}: spk2id ids {outside} are outside 0..{self.n_speakers - 1}"
            )
        if self.speaker_conditioned_encoder and self.n_layers <= 2:
            raise FailedPrecondition(
                f"{origin}: the speaker condition enters the text encoder's third layer; "
                f"model.n_layers {self.n_layers} has none"
            )
        if self.use_transformer_flow and self.n_layers_trans_flow != 3:
            raise FailedPrecondition(
                f"{origin}: model.n_layers_trans_flow must be 3 (the reference asserts it)"
            )
        if self.symbols[:1] != ("_",):
            raise FailedPrecondition(f"{origin}: symbols must start with the pad '_'")
