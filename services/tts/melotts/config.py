"""A MeloTTS config.json (`data`, `model`, `symbols`, `num_tones`, `num_languages`),
validated; the speakers are data.spk2id."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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
        data, model = _section(document, "data", origin), _section(document, "model", origin)

        def get(section: dict[str, Any], name: str, where: str) -> Any:
            if name not in section:
                raise FailedPrecondition(f"{origin}: {where}.{name} is missing")
            return section[name]

        speakers, symbols = data.get("spk2id"), document.get("symbols")
        if not isinstance(speakers, dict) or not speakers:
            raise FailedPrecondition(f"{origin}: data.spk2id (speaker name → id) is missing")
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise FailedPrecondition(f"{origin}: symbols (a list of strings) is missing")
        for name in ("flow_share_parameter", "use_vc"):
            if model.get(name, False):
                raise FailedPrecondition(f"{origin}: model.{name} true is not supported")
        config = cls(
            sampling_rate=int(get(data, "sampling_rate", "data")),
            filter_length=int(get(data, "filter_length", "data")),
            hop_length=int(get(data, "hop_length", "data")),
            add_blank=bool(get(data, "add_blank", "data")),
            disable_bert=bool(data.get("disable_bert", False)),
            n_speakers=int(get(data, "n_speakers", "data")),
            speakers={str(name): int(sid) for name, sid in speakers.items()},
            inter_channels=int(get(model, "inter_channels", "model")),
            hidden_channels=int(get(model, "hidden_channels", "model")),
            filter_channels=int(get(model, "filter_channels", "model")),
            n_heads=int(get(model, "n_heads", "model")),
            n_layers=int(get(model, "n_layers", "model")),
            kernel_size=int(get(model, "kernel_size", "model")),
            resblock=str(get(model, "resblock", "model")),
            resblock_kernel_sizes=tuple(get(model, "resblock_kernel_sizes", "model")),
            resblock_dilation_sizes=tuple(
                tuple(d) for d in get(model, "resblock_dilation_sizes", "model")
            ),
            upsample_rates=tuple(get(model, "upsample_rates", "model")),
            upsample_initial_channel=int(get(model, "upsample_initial_channel", "model")),
            upsample_kernel_sizes=tuple(get(model, "upsample_kernel_sizes", "model")),
            gin_channels=int(model.get("gin_channels", 256)),
            use_transformer_flow=bool(model.get("use_transformer_flow", True)),
            n_layers_trans_flow=int(model.get("n_layers_trans_flow", 6)),
            n_flow_layer=int(model.get("n_flow_layer", 4)),
            speaker_conditioned_encoder=bool(model.get("use_spk_conditioned_encoder", True)),
            symbols=tuple(symbols),
            num_tones=int(get(document, "num_tones", "config")),
            num_languages=int(get(document, "num_languages", "config")),
        )
        config._check(origin)
        return config

    def _check(self, origin: str) -> None:
        if math.prod(self.upsample_rates) != self.hop_length:
            raise FailedPrecondition(
                f"{origin}: the upsample rates {list(self.upsample_rates)} multiply to "
                f"{math.prod(self.upsample_rates)}, not data.hop_length {self.hop_length}"
            )
        if self.resblock not in ("1", "2"):
            raise FailedPrecondition(f"{origin}: model.resblock must be '1' or '2'")
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
        if self.hidden_channels % self.n_heads:
            raise FailedPrecondition(
                f"{origin}: model.hidden_channels {self.hidden_channels} is not a multiple of "
                f"model.n_heads {self.n_heads}"
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


def _section(document: dict[str, Any], name: str, origin: str) -> dict[str, Any]:
    section = document.get(name)
    if not isinstance(section, dict):
        raise FailedPrecondition(f"{origin} has no {name!r} object")
    return section
