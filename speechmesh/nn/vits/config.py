"""What every family built on these networks reads the same way, without torch: its
config.json (`data` and `model` sections; each key that is missing or wrong is a
FailedPrecondition naming the file and the key) and the scales of one inference."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechmesh.runtime import weights
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.runtime.numbers import number_option


class ConfigJson:
    """A parsed config.json being read."""

    @classmethod
    def read(cls, folder: Path) -> ConfigJson:
        """The config.json in `folder`."""
        (path,) = weights.require_files(folder, ["config.json"])
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise FailedPrecondition(f"{path} is not readable JSON: {error}") from error
        return cls(document, str(path))

    def __init__(self, document: Any, origin: str) -> None:
        if not isinstance(document, dict):
            raise FailedPrecondition(f"{origin} is not a JSON object")
        self.document = document
        self.origin = origin
        self.data = self._section("data")
        self.model = self._section("model")

    def _section(self, name: str) -> dict[str, Any]:
        section = self.document.get(name)
        if not isinstance(section, dict):
            raise FailedPrecondition(f"{self.origin} has no {name!r} object")
        return section

    def required(self, section: str, name: str) -> Any:
        """`section.name` ("config" for a top-level key)."""
        values = self.document if section == "config" else getattr(self, section)
        if name not in values:
            raise FailedPrecondition(f"{self.origin}: {section}.{name} is missing")
        return values[name]

    def generator_sizes(self) -> dict[str, Any]:
        """The widths of the posterior/flow and the HiFi-GAN decoder's sizes, which every
        VITS config spells the same way."""
        model = "model"
        return {
            "inter_channels": int(self.required(model, "inter_channels")),
            "hidden_channels": int(self.required(model, "hidden_channels")),
            "resblock": str(self.required(model, "resblock")),
            "resblock_kernel_sizes": tuple(self.required(model, "resblock_kernel_sizes")),
            "resblock_dilation_sizes": tuple(
                tuple(d) for d in self.required(model, "resblock_dilation_sizes")
            ),
            "upsample_rates": tuple(self.required(model, "upsample_rates")),
            "upsample_initial_channel": int(self.required(model, "upsample_initial_channel")),
            "upsample_kernel_sizes": tuple(self.required(model, "upsample_kernel_sizes")),
        }

    def check_generator(
        self, upsample_rates: tuple[int, ...], hop_length: int, resblock: str
    ) -> None:
        """The decoder must upsample one frame to exactly one hop of samples."""
        if math.prod(upsample_rates) != hop_length:
            raise FailedPrecondition(
                f"{self.origin}: the upsample rates {list(upsample_rates)} multiply to "
                f"{math.prod(upsample_rates)}, not data.hop_length {hop_length}"
            )
        if resblock not in ("1", "2"):
            raise FailedPrecondition(f"{self.origin}: model.resblock must be '1' or '2'")

    def check_heads(self, hidden_channels: int, n_heads: int) -> None:
        if hidden_channels % n_heads:
            raise FailedPrecondition(
                f"{self.origin}: model.hidden_channels {hidden_channels} is not a multiple of "
                f"model.n_heads {n_heads}"
            )


@dataclass(frozen=True)
class Scales:
    """The knobs of one inference: noise in the prior and in the SDP, the SDP's share of
    the log durations, and the length multiplier (1 / speed)."""

    noise_scale: float
    noise_scale_w: float
    sdp_ratio: float
    length_scale: float

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], defaults: Mapping[str, float], field: str, speed: float
    ) -> Scales:
        """From a request's family options (`field`.name in errors), each absent one at
        the family's default."""

        def option(name: str, **bounds: float) -> float:
            if name not in options:
                return defaults[name]
            return number_option(options[name], f"{field}.{name}", **bounds)

        return cls(
            noise_scale=option("noise_scale", at_least=0),
            noise_scale_w=option("noise_scale_w", at_least=0),
            sdp_ratio=option("sdp_ratio", at_least=0, at_most=1),
            length_scale=1.0 / speed,
        )
