"""Loads an OpenVoice converter as published: config.json, checkpoint.pth, base speakers.

V1 (myshell-ai/OpenVoice): `checkpoints/converter/{config.json, checkpoint.pth}` and
`checkpoints/base_speakers/{EN,ZH}/*_se.pth`. V2 (myshell-ai/OpenVoiceV2):
`converter/{config.json, checkpoint.pth}` and `base_speakers/ses/<name>.pth`.
`checkpoint.pth` is `{"model": state_dict, "iteration", ...}` with legacy weight norm;
an embedding file is one tensor [1, gin, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from speechmesh.nn.vits.config import ConfigJson
from speechmesh.runtime import weights
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.conversion.conversion.openvoice.config import ConverterConfig
from speechmesh.services.conversion.conversion.openvoice.modules import ToneColorConverter

CONVERTER_DIRS = ("converter", "checkpoints/converter")
BASE_SPEAKER_GLOBS = ("base_speakers/ses/*.pth", "checkpoints/base_speakers/*/*_se.pth")


@dataclass
class LoadedConverter:
    model: ToneColorConverter
    base_speakers: dict[str, np.ndarray]
    """Base-speaker embeddings by name (e.g. "en-default", "EN/en_style"), each [gin]."""


def converter_dir(root: Path) -> Path:
    """The folder holding config.json and checkpoint.pth under a V1/V2 snapshot (or itself)."""
    for relative in ("", *CONVERTER_DIRS):
        folder = root / relative if relative else root
        if (folder / "checkpoint.pth").exists() or (folder / "config.json").exists():
            return folder
    raise FailedPrecondition(
        f"{root} holds no OpenVoice converter: expected config.json and checkpoint.pth in "
        f"{root} or its {' or '.join(CONVERTER_DIRS)} folder"
    )


def read_config(folder: Path) -> ConverterConfig:
    read = ConfigJson.read(folder)
    return ConverterConfig.from_json(read.document, read.origin)


def load_converter(root: Path, device: str = "cpu") -> LoadedConverter:
    folder = converter_dir(root)
    config = read_config(folder)
    (checkpoint,) = weights.require_files(folder, ["checkpoint.pth"])
    state = weights.unwrap(weights.load_state_dict(checkpoint), "model")
    model = ToneColorConverter(config)
    weights.load_strict(model, weights.fold_weight_norm(state))
    speakers = {
        _speaker_name(root, path): _embedding(path, config.gin_channels)
        for pattern in BASE_SPEAKER_GLOBS
        for path in sorted(root.glob(pattern))
    }
    return LoadedConverter(model.to(device).eval(), speakers)


def _speaker_name(root: Path, path: Path) -> str:
    relative = path.relative_to(root).with_suffix("").as_posix()
    name = relative.removeprefix("base_speakers/ses/").removeprefix("checkpoints/base_speakers/")
    return name.removesuffix("_se")


def _embedding(path: Path, gin: int) -> np.ndarray:
    tensor = weights.load_tensor(path)
    if tuple(tensor.shape) != (1, gin, 1):
        raise FailedPrecondition(
            f"base speaker embedding {path} has shape {list(tensor.shape)}, expected [1, {gin}, 1]"
        )
    vector: np.ndarray = tensor.reshape(-1).to(torch.float32).numpy()
    return vector
