"""Tiny random checkpoints saved exactly as the official releases lay them out.

Real weights of these families cannot be downloaded here, so the production loaders
are tested on files with the official names, wrappers and keys, and random values.
"""

from __future__ import annotations

import json
import re

import torch

from speechmesh.services.conversion.encoder.ge2e import modules as ge2e

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


# ------------------------------------------------------------------------- OpenVoice

# A tiny converter: 33 spectrogram bins, 16-sample hop, 8-wide embeddings.
TINY_OPENVOICE = {
    "data": {
        "sampling_rate": 16000,
        "filter_length": 64,
        "hop_length": 16,
        "win_length": 64,
        "n_speakers": 0,
    },
    "model": {
        "inter_channels": 6,
        "hidden_channels": 8,
        "filter_channels": 16,
        "n_heads": 2,
        "n_layers": 2,
        "kernel_size": 3,
        "p_dropout": 0.1,
        "resblock": "1",
        "resblock_kernel_sizes": [3, 5],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]],
        "upsample_rates": [4, 4],
        "upsample_initial_channel": 16,
        "upsample_kernel_sizes": [8, 8],
        "gin_channels": 8,
    },
}
OPENVOICE_WEIGHT_NORM = re.compile(
    r"(enc_q\.enc|flow\.flows\.\d+\.enc)\.(in_layers\.\d+|res_skip_layers\.\d+|cond_layer)"
    r"\.weight|dec\.ups\.\d+\.weight|dec\.resblocks\.\d+\.convs[12]?\.\d+\.weight"
    r"|ref_enc\.convs\.\d+\.weight"
)


def legacy_weight_norm(state: dict, pattern: re.Pattern, generator: torch.Generator) -> dict:
    """`X.weight` → `X.weight_g` (random gains, shape [dim0, 1, ...]) and `X.weight_v`."""
    out = {}
    for key, value in state.items():
        if pattern.fullmatch(key):
            gain_shape = (value.shape[0],) + (1,) * (value.dim() - 1)
            out[key + "_g"] = torch.rand(gain_shape, generator=generator) + 0.5
            out[key + "_v"] = value.clone()
        else:
            out[key] = value.clone()
    return out


def save_openvoice(root, version="v2", seed=0, drop=None, extra=None) -> dict:
    """An OpenVoice V1 or V2 snapshot: converter config + checkpoint and base speakers.

    Returns the saved state dict (with weight_g/weight_v) for comparison.
    """
    from speechmesh.services.conversion.conversion.openvoice.config import ConverterConfig
    from speechmesh.services.conversion.conversion.openvoice.modules import ToneColorConverter

    document = json.loads(json.dumps(TINY_OPENVOICE))
    if version == "v2":
        document["_version_"] = "v2"
        document["model"]["zero_g"] = True
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = ToneColorConverter(ConverterConfig.from_json(document, "tiny"))
    for parameter in model.parameters():
        # Random weights that make every layer matter (the reference zero-inits flow posts).
        parameter.data = torch.randn(parameter.shape, generator=generator) * 0.3
    state = legacy_weight_norm(model.state_dict(), OPENVOICE_WEIGHT_NORM, generator)
    if drop:
        del state[drop]
    state.update(extra or {})
    prefix = "converter" if version == "v2" else "checkpoints/converter"
    folder = root / prefix
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(document))
    torch.save({"model": state, "iteration": 1, "learning_rate": 0.0002}, folder / "checkpoint.pth")
    gin = document["model"]["gin_channels"]
    speakers = (
        {"base_speakers/ses/en-default.pth": 1, "base_speakers/ses/es.pth": 2}
        if version == "v2"
        else {"checkpoints/base_speakers/EN/en_default_se.pth": 1}
    )
    for relative, value in speakers.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        torch.save(torch.full((1, gin, 1), float(value)), root / relative)
    return state


# The V1 base speakers' symbols (cjke_cleaners2), as their config.json lists them.
OPENVOICE_SYMBOLS = [
    "_",
    *",.!?-~…",
    *"NQabdefghijklmnopstuvwxyzɑæʃʑçɯɪɔɛɹðəɫɥɸʊɾʒθβŋɦ⁼ʰ`^#*=ˈˌ→↓↑ ",
]
OPENVOICE_STYLES = {
    "EN": [
        "default",
        "whispering",
        "shouting",
        "excited",
        "cheerful",
        "terrified",
        "angry",
        "sad",
        "friendly",
    ],
    "ZH": ["default"],
}


def tiny_base_speaker(language: str = "EN", rate: int = 16000) -> dict:
    """A tiny base speaker's config.json: the official sections, speaker table (EN ids
    from 1, as released) and symbols, with small sizes."""
    styles = OPENVOICE_STYLES[language]
    first = 1 if language == "EN" else 0
    return {
        "data": {
            "text_cleaners": ["cjke_cleaners2"],
            "sampling_rate": rate,
            "filter_length": 64,
            "hop_length": 16,
            "win_length": 64,
            "n_mel_channels": 80,
            "add_blank": True,
            "cleaned_text": True,
            "n_speakers": len(styles) + first,
        },
        "model": {**TINY_OPENVOICE["model"], "hidden_channels": 8, "filter_channels": 12},
        "speakers": {style: first + i for i, style in enumerate(styles)},
        "symbols": OPENVOICE_SYMBOLS,
    }


BASE_SPEAKER_WEIGHT_NORM = re.compile(
    r"(enc_q\.enc|flow\.flows\.\d+\.enc)\.(in_layers\.\d+|res_skip_layers\.\d+|cond_layer)"
    r"\.weight|dec\.ups\.\d+\.weight|dec\.resblocks\.\d+\.convs[12]?\.\d+\.weight"
)


def save_openvoice_base(root, languages=("EN", "ZH"), seed=0, drop=None, extra=None) -> dict:
    """checkpoints/base_speakers/{EN,ZH}/{config.json, checkpoint.pth} as myshell-ai/OpenVoice
    publishes them (legacy weight norm). Returns each language's saved state dict."""
    from speechmesh.services.tts.openvoice.config import BaseSpeakerConfig
    from speechmesh.services.tts.openvoice.modules import SynthesizerTrn

    states = {}
    for index, language in enumerate(languages):
        document = tiny_base_speaker(language)
        generator = torch.Generator().manual_seed(seed * 10 + index)
        model = SynthesizerTrn(BaseSpeakerConfig.from_json(document, "tiny"))
        for parameter in model.parameters():
            parameter.data = torch.randn(parameter.shape, generator=generator) * 0.3
        state = legacy_weight_norm(model.state_dict(), BASE_SPEAKER_WEIGHT_NORM, generator)
        if drop:
            del state[drop]
        state.update(extra or {})
        folder = root / "checkpoints" / "base_speakers" / language
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps(document, ensure_ascii=False))
        torch.save({"model": state, "iteration": 1, "optimizer": None}, folder / "checkpoint.pth")
        states[language] = state
    return states


# ------------------------------------------------------------------------- VoiceFixer

# The mel keeps its 128 bands (the UNet's shape depends on it); everything else shrinks.
TINY_RESTORER = dict(n_fft=256, n_mel=128, widths=(2, 2, 3, 3, 4, 4))
TINY_VOCODER = dict(n_mel=128, condition=8, channels=32, depth=2)
VOCODER_WEIGHT_NORM = re.compile(
    r"condnet\.\d+\.weight|generator\.(1|16)\.weight|generator\.\d+\.layer\.weight"
    r"|generator\.\d+\.layers\.\d+\.[13]\.weight"
)


def save_voicefixer(
    root, seed=0, drop=None, extra=None, restorer_sizes=None, output_gain=1.0
) -> tuple[dict, dict]:
    """vf.ckpt and model.ckpt-1490000_trimed.pt in the folders the original caches them in.

    `restorer_sizes` replaces TINY_RESTORER (the parity suite keeps the official
    n_fft = 2048, the only one the original builds at 44.1 kHz); `output_gain` scales the
    vocoder's last convolution, so that its tanh need not saturate.
    Returns (restorer state, vocoder state as saved, with weight_g / weight_v).
    """
    from speechmesh.services.conversion.restoration.voicefixer.restorer import (
        MelRestorer,
        MelRestorerSizes,
    )
    from speechmesh.services.conversion.restoration.voicefixer.vocoder import (
        MelVocoder,
        MelVocoderSizes,
    )

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    restorer = MelRestorer(MelRestorerSizes(**(restorer_sizes or TINY_RESTORER)))
    state = {k: v.clone() for k, v in restorer.state_dict().items()}
    for key, value in state.items():
        if value.is_floating_point() and "running_var" not in key:
            state[key] = torch.randn(value.shape, generator=generator) * 0.2
    state["mel.fb"] = torch.rand(state["mel.fb"].shape, generator=generator) * 0.1
    vocoder = MelVocoder(MelVocoderSizes(**TINY_VOCODER))
    vocoder_state = {
        k: torch.randn(v.shape, generator=generator) * 0.2 for k, v in vocoder.state_dict().items()
    }
    # vf.ckpt also carries a folded copy of the vocoder and unused inverse-STFT tensors.
    state.update({f"vocoder.model.{k}": v for k, v in vocoder_state.items()})
    for name in ("conv_real.weight", "conv_imag.weight", "ola_window", "reverse.weight"):
        state[f"f_helper.istft.{name}"] = torch.zeros(3)
    if drop:
        del state[drop]
    state.update(extra or {})
    analysis = root / "analysis_module" / "checkpoints"
    analysis.mkdir(parents=True)
    torch.save(state, analysis / "vf.ckpt")
    legacy = legacy_weight_norm(vocoder_state, VOCODER_WEIGHT_NORM, generator)
    legacy["generator.16.weight_g"] = legacy["generator.16.weight_g"] * output_gain
    synthesis = root / "synthesis_module" / "44100"
    synthesis.mkdir(parents=True)
    torch.save({"generator": legacy}, synthesis / "model.ckpt-1490000_trimed.pt")
    return state, legacy
