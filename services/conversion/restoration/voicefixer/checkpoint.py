"""Loads VoiceFixer as published: `vf.ckpt` (restorer) and `model.ckpt-1490000_trimed.pt`
(vocoder), strictly, with sizes read from the tensors.

`vf.ckpt` is a flat state dict; besides the restorer it holds a weight-norm-folded copy
of the vocoder (`vocoder.model.*`) and four inverse-STFT tensors (`f_helper.istft.*`)
that inference does not use: those two groups, and only they, are ignored by name.
The vocoder file is `{"generator": state_dict}` with legacy weight norm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from speechmesh.runtime import weights
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.conversion.restoration.voicefixer.restorer import (
    MelRestorer,
    MelRestorerSizes,
)
from speechmesh.services.conversion.restoration.voicefixer.vocoder import (
    MelVocoder,
    MelVocoderSizes,
)

RESTORER_FILE = "vf.ckpt"
VOCODER_FILE = "model.ckpt-1490000_trimed.pt"
UNUSED_RESTORER_KEYS = ("vocoder.model.*", "f_helper.istft.*")


def find_file(root: Path, name: str) -> Path:
    """`name` at `root` or anywhere below it (snapshots keep the original folders)."""
    if root.is_file() and root.name == name:
        return root
    found = sorted(root.rglob(name)) if root.is_dir() else []
    if not found:
        raise FailedPrecondition(
            f"no {name} under {root} (VoiceFixer needs {RESTORER_FILE} and {VOCODER_FILE})"
        )
    return found[0]


def _shape(state: dict[str, Any], key: str, origin: Path) -> tuple[int, ...]:
    if key not in state:
        raise FailedPrecondition(f"{origin} has no key {key!r}")
    return tuple(state[key].shape)


def load_restorer(path: Path, device: str = "cpu") -> MelRestorer:
    state = weights.load_state_dict(path)
    n_fft = _shape(state, "f_helper.stft.conv_real.weight", path)[-1]
    n_mel = _shape(state, "mel.fb", path)[1]
    widths = []
    while (
        key := f"generator.unet.encoder_block{len(widths) + 1}.conv_block1.conv1.weight"
    ) in state:
        widths.append(state[key].shape[0])
    if not widths:
        raise FailedPrecondition(f"{path} has no generator.unet.encoder_block1 weights")
    model = MelRestorer(MelRestorerSizes(n_fft=n_fft, n_mel=n_mel, widths=tuple(widths)))
    weights.load_strict(model, state, ignore=UNUSED_RESTORER_KEYS)
    return model.to(device).eval()


def load_vocoder(path: Path, device: str = "cpu") -> MelVocoder:
    state = weights.fold_weight_norm(weights.unwrap(weights.load_state_dict(path), "generator"))
    condition, n_mel, _ = _shape(state, "condnet.0.weight", path)
    channels = _shape(state, "generator.1.weight", path)[0]
    depth = 0
    while f"generator.4.layers.{depth}.1.weight" in state:
        depth += 1
    model = MelVocoder(
        MelVocoderSizes(n_mel=n_mel, condition=condition, channels=channels, depth=depth)
    )
    weights.load_strict(model, state)
    return model.to(device).eval()
