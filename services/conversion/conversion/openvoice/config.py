"""The converter's config.json (`data` and `model` sections), validated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from speechmesh.nn.vits.config import ConfigJson


@dataclass(frozen=True)
class ConverterConfig:
    sampling_rate: int
    filter_length: int
    hop_length: int
    win_length: int
    inter_channels: int
    hidden_channels: int
    resblock: str
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    upsample_rates: tuple[int, ...]
    upsample_initial_channel: int
    upsample_kernel_sizes: tuple[int, ...]
    gin_channels: int
    zero_g: bool
    version: str

    @property
    def spec_channels(self) -> int:
        return self.filter_length // 2 + 1

    @classmethod
    def from_json(cls, document: Any, origin: str) -> ConverterConfig:
        """From a parsed config.json; FailedPrecondition naming what is missing or wrong."""
        read = ConfigJson(document, origin)
        model = read.model

        config = cls(
            sampling_rate=int(read.required("data", "sampling_rate")),
            filter_length=int(read.required("data", "filter_length")),
            hop_length=int(read.required("data", "hop_length")),
            win_length=int(read.required("data", "win_length")),
            **read.generator_sizes(),
            gin_channels=int(read.required("model", "gin_channels")),
            zero_g=bool(model.get("zero_g", False)),
            version=str(document.get("_version_", "v1")),
        )
        read.check_generator(config.upsample_rates, config.hop_length, config.resblock)
        return config
