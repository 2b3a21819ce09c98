"""A base speaker's config.json (`data`, `model`, `speakers`, `symbols`), validated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from speechmesh.nn.vits.config import ConfigJson
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
        read = ConfigJson(document, origin)

        speakers, symbols = document.get("speakers"), document.get("symbols")
        if not isinstance(speakers, dict) or not speakers:
            raise FailedPrecondition(f"{origin}: speakers (style name → id) is missing")
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise FailedPrecondition(f"{origin}: symbols (a list of strings) is missing")
        config = cls(
            sampling_rate=int(read.required("data", "sampling_rate")),
            filter_length=int(read.required("data", "filter_length")),
            hop_length=int(read.required("data", "hop_length")),
            add_blank=bool(read.required("data", "add_blank")),
            text_cleaners=tuple(read.required("data", "text_cleaners")),
            n_speakers=int(read.required("data", "n_speakers")),
            **read.generator_sizes(),
            filter_channels=int(read.required("model", "filter_channels")),
            n_heads=int(read.required("model", "n_heads")),
            n_layers=int(read.required("model", "n_layers")),
            kernel_size=int(read.required("model", "kernel_size")),
            gin_channels=int(read.required("model", "gin_channels")),
            speakers={str(name): int(sid) for name, sid in speakers.items()},
            symbols=tuple(symbols),
        )
        config._check(read)
        return config

    def _check(self, read: ConfigJson) -> None:
        origin = read.origin
        read.check_generator(self.upsample_rates, self.hop_length, self.resblock)
        read.check_heads(self.hidden_channels, self.n_heads)
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
