"""Tiny random HarmonySpeech V1 snapshots in the official `harmony-speech-v1` layout.

synthesizer/{config.json, synthesizer.pt = {model_state, optimizer_state}} and
vocoder/{config.json, vocoder.pt = {model: {generator, discriminator}, steps, epochs}},
the generator's weight norm saved as legacy weight_g / weight_v by torch's own
weight_norm, BatchNorm statistics randomised so a wrong load shows.
"""

from __future__ import annotations

import json
import warnings

import torch

from speechmesh.services.tts.harmonyspeech.forward_tacotron import (
    ForwardTacotron,
    ForwardTacotronConfig,
)
from speechmesh.services.tts.harmonyspeech.melgan import MelGanConfig, MelGanGenerator


def tiny_synthesizer_config(speaker_dims: int = 6) -> dict:
    return {
        "embed_dims": 8,
        "series_embed_dims": 4,
        "num_chars": 66,
        "durpred_conv_dims": 8,
        "durpred_rnn_dims": 4,
        "durpred_dropout": 0.5,
        "pitch_conv_dims": 8,
        "pitch_rnn_dims": 4,
        "pitch_dropout": 0.5,
        "pitch_strength": 1.0,
        "energy_conv_dims": 8,
        "energy_rnn_dims": 4,
        "energy_dropout": 0.5,
        "energy_strength": 1.0,
        "rnn_dims": 8,
        "prenet_dims": 8,
        "prenet_k": 3,
        "prenet_num_highways": 2,
        "prenet_dropout": 0.5,
        "postnet_dims": 8,
        "postnet_k": 3,
        "postnet_num_highways": 1,
        "postnet_dropout": 0.0,
        "n_mels": 80,
        "speaker_embed_dims": speaker_dims,
        "padding_value": -11.5129,
    }


TINY_VOCODER = {
    "in_channels": 80,
    "out_channels": 4,
    "kernel_size": 7,
    "channels": 16,
    "bias": True,
    "upsample_scales": [5, 5, 2],
    "stack_kernel_size": 3,
    "stacks": 2,
    "nonlinear_activation": "LeakyReLU",
    "nonlinear_activation_params": {"negative_slope": 0.2},
    "pad": "ReflectionPad1d",
    "pad_params": {},
    "use_final_nonlinear_activation": True,
    "use_weight_norm": True,
    "use_causal_conv": False,
}


def save_synthesizer(root, speaker_dims=6, seed=0, nested=True, drop=None, extra=None):
    """synthesizer/config.json + synthesizer.pt; returns the module saved."""
    sizes = tiny_synthesizer_config(speaker_dims)
    torch.manual_seed(seed)
    model = ForwardTacotron(ForwardTacotronConfig.from_json(sizes, "tiny"))
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)
        # Durations around 3 frames per symbol, so sequences have a readable length.
        for predictor in (model.dur_pred,):
            predictor.lin.bias.fill_(3.0)
    model.step.fill_(1234)
    state = dict(model.state_dict())
    if drop:
        del state[drop]
    if extra:
        state[extra] = torch.zeros(1)
    folder = root / "synthesizer"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model": sizes} if nested else sizes))
    checkpoint = {"model_state": state, "optimizer_state": {"state": {}, "param_groups": []}}
    torch.save(checkpoint, folder / "synthesizer.pt")
    return model.eval()


def save_vocoder(root, seed=0, nested=True, drop=None, config=None):
    """vocoder/config.json + vocoder.pt with legacy weight norm; returns the generator with
    weight norm still applied (the reference the loader's folding must match)."""
    sizes = dict(config or TINY_VOCODER)
    torch.manual_seed(seed)
    generator = MelGanGenerator(MelGanConfig.from_json(sizes, "tiny"))
    with warnings.catch_warnings():  # torch deprecates the legacy form the files use
        warnings.simplefilter("ignore")
        for module in generator.modules():
            if isinstance(module, torch.nn.Conv1d | torch.nn.ConvTranspose1d):
                torch.nn.utils.weight_norm(module)
                with torch.no_grad():
                    module.weight_g.uniform_(0.5, 1.5)
    state = dict(generator.state_dict())
    if drop:
        del state[drop]
    folder = root / "vocoder"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model": sizes} if nested else sizes))
    checkpoint = {
        "model": {"generator": state, "discriminator": {"layers.0.weight": torch.zeros(2)}},
        "steps": 1000,
        "epochs": 3,
    }
    torch.save(checkpoint, folder / "vocoder.pt")
    return generator.eval()


def save_snapshot(root, speaker_dims=6, seed=0):
    """synthesizer/ and vocoder/ under `root` (the encoder is the conversion service's)."""
    save_synthesizer(root, speaker_dims=speaker_dims, seed=seed)
    save_vocoder(root, seed=seed)
    return root
