"""Tiny random checkpoints saved exactly as the official releases lay them out.

Real weights of these families cannot be downloaded here, so the production loaders
are tested on files with the official names, wrappers and keys, and random values.
"""

from __future__ import annotations

import json

import torch

from speechmesh.services.conversion import ge2e

TINY_GE2E = ge2e.Ge2eConfig(
    mel_n_channels=40, model_hidden_size=8, model_num_layers=2, model_embedding_size=6
)


def save_harmonyspeech_encoder(root, config=TINY_GE2E, nested=True, drop=None, seed=0):
    """encoder/config.json + encoder/encoder.pt as harmony-speech-v1 publishes them."""
    torch.manual_seed(seed)
    module = ge2e.Ge2eEncoder(config)
    state = dict(module.state_dict())
    state["similarity_weight"] = torch.tensor([10.0])
    state["similarity_bias"] = torch.tensor([-5.0])
    if drop:
        del state[drop]
    folder = root / "encoder"
    folder.mkdir(parents=True)
    sizes = {key: getattr(config, key) for key in ge2e.CONFIG_KEYS}
    (folder / "config.json").write_text(json.dumps({"model": sizes} if nested else sizes))
    torch.save({"step": 1, "model_state": state, "optimizer_state": {}}, folder / "encoder.pt")
    return module
