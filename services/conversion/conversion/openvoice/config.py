"""The converter's config.json (`data` and `model` sections), validated."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from speechmesh.runtime.errors import FailedPrecondition


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
        data, model = _section(document, "data", origin), _section(document, "model", origin)

        def get(section: dict[str, Any], name: str, where: str) -> Any:
            if name not in section:
                raise FailedPrecondition(f"{origin}: {where}.{name} is missing")
            return section[name]

        config = cls(
            sampling_rate=int(get(data, "sampling_rate", "data")),
            filter_length=int(get(data, "filter_length", "data")),
            hop_length=int(get(data, "hop_length", "data")),
            win_length=int(get(data, "win_length", "data")),
            inter_channels=int(get(model, "inter_channels", "model")),
            hidden_channels=int(get(model, "hidden_channels", "model")),
            resblock=str(get(model, "resblock", "model")),
            resblock_kernel_sizes=tuple(get(model, "resblock_kernel_sizes", "model")),
            resblock_dilation_sizes=tuple(
                tuple(d) for d in get(model, "resblock_dilation_sizes", "model")
            ),
            upsample_rates=tuple(get(model, "upsample_rates", "model")),
            upsample_initial_channel=int(get(model, "upsample_initial_channel", "model")),
            upsample_kernel_sizes=tuple(get(model, "upsample_kernel_sizes", "model")),
            gin_channels=int(get(model, "gin_channels", "model")),
            zero_g=bool(model.get("zero_g", False)),
            version=str(document.get("_version_", "v1")),
        )
        if math.prod(config.upsample_rates) != config.hop_length:
            raise FailedPrecondition(
                f"{origin}: the upsample rates {list(config.upsample_rates)} multiply to "
                f"{math.prod(config.upsample_rates)}, not hop_length {config.hop_length}"
            )
        if config.resblock not in ("1", "2"):
            raise FailedPrecondition(f"{origin}: model.resblock must be '1' or '2'")
        return config


def _section(document: Any, name: str, origin: str) -> dict[str, Any]:
    section = document.get(name) if isinstance(document, dict) else None
    if not isinstance(section, dict):
        raise FailedPrecondition(f"{origin} has no {name!r} object")
    return section
