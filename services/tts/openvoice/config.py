"""A base speaker's config.json (`data`, `model`, `speakers`, `symbols`), validated."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from speechmesh.runtime.errors import FailedPrecondition

CLEANERS = ("cjke_cleaners2",)
"""The text cleaners this front-end implements (what the V1 base speakers use)."""


@dataclass(frozen=True)
class BaseSpeakerConfig:
    sampling_rate: int
    filter_length: int
    hop_length: int
    add_blank: bool
    text_cleaners: tuple[str, ...]
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
    n_speakers: int
    speakers: dict[str, int]
    """Style name → speaker id (the row of emb_g)."""
    symbols: tuple[str, ...]
    """Phoneme symbols; a symbol's id is its position."""

    @property
    def spec_channels(self) -> int:
        return self.filter_length // 2 + 1

    @classmethod
    def from_json(cls, document: Any, origin: str) -> BaseSpeakerConfig:
        """From a parsed config.json; FailedPrecondition naming what is missing or wrong."""
        data, model = _section(document, "data", origin), _section(document, "model", origin)

        def get(section: dict[str, Any], name: str, where: str) -> Any:
            if name not in section:
                raise FailedPrecondition(f"{origin}: {where}.{name} is missing")
            return section[name]

        speakers, symbols = document.get("speakers"), document.get("symbols")
        if not isinstance(speakers, dict) or not speakers:
            raise FailedPrecondition(f"{origin}: speakers (style name → id) is missing")
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise FailedPrecondition(f"{origin}: symbols (a list of strings) is missing")
        config = cls(
            sampling_rate=int(get(data, "sampling_rate", "data")),
            filter_length=int(get(data, "filter_length", "data")),
            hop_length=int(get(data, "hop_length", "data")),
            add_blank=bool(get(data, "add_blank", "data")),
            text_cleaners=tuple(get(data, "text_cleaners", "data")),
            n_speakers=int(get(data, "n_speakers", "data")),
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
            gin_channels=int(get(model, "gin_channels", "model")),
            speakers={str(name): int(sid) for name, sid in speakers.items()},
            symbols=tuple(symbols),
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
        if self.text_cleaners != CLEANERS:
            raise FailedPrecondition(
                f"{origin}: data.text_cleaners is {list(self.text_cleaners)}; this family "
                f"reads {list(CLEANERS)} only"
            )
        if self.n_speakers < 1 or self.gin_channels < 1:
            raise FailedPrecondition(
                f"{origin}: a base speaker needs data.n_speakers and model.gin_channels > 0 "
                "(a config without speakers is a converter's)"
            )
        outside = {n: i for n, i in self.speakers.items() if not 0 <= i < self.n_speakers}
        if outside:
            raise FailedPrecondition(
                f"{origin}: speaker ids {outside} are outside 0..{self.n_speakers - 1}"
            )
        if self.hidden_channels % self.n_heads:
            raise FailedPrecondition(
                f"{origin}: model.hidden_channels {self.hidden_channels} is not a multiple of "
                f"model.n_heads {self.n_heads}"
            )


def _section(document: Any, name: str, origin: str) -> dict[str, Any]:
    section = document.get(name) if isinstance(document, dict) else None
    if not isinstance(section, dict):
        raise FailedPrecondition(f"{origin} has no {name!r} object")
    return section
