"""Reference outputs of the OpenVoice V1/V2 tone-colour converter (myshell-ai/OpenVoice).

Builds a tiny V1 and a tiny V2 converter with the reference's own SynthesizerTrn (as
ToneColorConverter builds it from config.json), fills its state dict with seeded random
values (tests/parity/openvoice_weights.py, so the test can rebuild the same checkpoint),
and records what the reference's ToneColorConverter.extract_se and .convert give on
synthetic clips written as float WAV files at the model's rate:

- embeddings of one and of two reference clips (extract_se: one spectrogram per clip,
  the reference encoder on each, the mean);
- conversions of a short and a long source at tau 0 and tau > 0, the noise each draws
  (torch.manual_seed(seed) right before the call; the draws are recorded as made);
- the windows a streamed conversion cuts (the service's window and overlap, recorded),
  each converted by the reference in turn after one manual_seed, as a stream's windows
  draw from one seeded generator in turn.

    python scripts/parity/openvoice.py --upstream /path/to/OpenVoice [--seed N --out DIR]
"""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import soundfile
import torch
from common import REPOSITORY, Fixture, parser, upstream_commit

sys.path.insert(0, str(REPOSITORY / "tests"))
from parity.openvoice_weights import digest, random_state, save_checkpoint

PINNED = "74a1d14"
FAMILY = "openvoice"
# The service's streaming windows (services/conversion/conversion/run.py); the test
# checks it still cuts streams this way.
WINDOW_S, OVERLAP_S = 2.0, 0.25

RATE = 4000  # a low rate keeps the recorded audio small; nothing in the model depends on it
V1_CONFIG = {
    "data": {
        "sampling_rate": RATE,
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
# V2 as its release marks it (_version_, zero_g); a shorter window and the other
# residual block type cover the rest of the config.
V2_CONFIG = {
    "_version_": "v2",
    "data": {**V1_CONFIG["data"], "win_length": 48},
    "model": {
        **V1_CONFIG["model"],
        "zero_g": True,
        "resblock": "2",
        "resblock_dilation_sizes": [[1, 3], [1, 3]],
    },
}
LAYOUT = {
    "v1": (
        "checkpoints/converter",
        "checkpoints/base_speakers/EN/en_default_se.pth",
        "EN/en_default",
    ),
    "v2": ("converter", "base_speakers/ses/en-default.pth", "en-default"),
}


def install_stubs(fixture: Fixture) -> None:
    """librosa and the text front end: imported by the reference, off the converter's path."""
    librosa = types.ModuleType("librosa")

    def load(path, sr=22050, **_):
        samples, native = soundfile.read(path, dtype="float32", always_2d=False)
        if native != sr or samples.ndim != 1:
            raise ValueError("the stub reads mono files at the requested rate only")
        return samples, native

    def mel(*_, **__):
        raise NotImplementedError("mel filters are not on the converter's path")

    librosa.load = load
    librosa.filters = types.SimpleNamespace(mel=mel)
    librosa.util = types.SimpleNamespace()
    sys.modules["librosa"] = librosa
    sys.modules["librosa.filters"] = librosa.filters
    fixture.stub(
        "librosa: load() reads the clip with soundfile as float32 (what librosa.load does "
        "for a mono file already at the requested rate; every clip here is written at the "
        "model's rate as float WAV, so no resampling is involved); librosa.filters.mel, "
        "imported by mel_processing, is used only by the mel functions, not the converter"
    )
    text = types.ModuleType("openvoice.text")

    def text_to_sequence(*_, **__):
        raise NotImplementedError("text is the base TTS's, not the converter's")

    text.text_to_sequence = text_to_sequence
    sys.modules["openvoice.text"] = text
    wavmark = types.ModuleType("wavmark")
    wavmark.load_model = lambda: types.SimpleNamespace(to=lambda device: None)
    sys.modules["wavmark"] = wavmark
    fixture.stub(
        "wavmark: load_model() gives no model, so add_watermark returns the converted audio "
        "unchanged. At this commit ToneColorConverter cannot be built without it (its "
        "enable_watermark option reaches a base class that refuses the keyword); the "
        "watermark is a separate network run after the converter, which the service does "
        "not run"
    )
    fixture.stub(
        "openvoice.text: text_to_sequence is used by BaseSpeakerTTS only; its cleaners "
        "import eng_to_ipa, pypinyin, jieba and cn2an"
    )


def speech_like(rng: np.random.Generator, samples: int) -> np.ndarray:
    """Harmonics of a gliding pitch under a syllable envelope, with a little noise."""
    t = np.arange(samples) / RATE
    f0 = rng.uniform(90, 220) * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voiced = sum(rng.uniform(0.2, 1.0) / k * np.sin(k * phase) for k in range(1, 9))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, 6.3))
    audio = voiced * envelope + 0.05 * rng.standard_normal(samples)
    return (0.8 * audio / np.max(np.abs(audio))).astype(np.float32)


def stream_windows(samples: int, hop: int) -> list[tuple[int, int]]:
    """The [start, end) windows a stream of `samples` is converted in (whole hops)."""
    window, overlap = int(WINDOW_S * RATE) // hop * hop, int(OVERLAP_S * RATE) // hop * hop
    windows, start = [], 0
    while start + window <= samples:
        windows.append((start, start + window))
        start += window - overlap
    if samples - start > (overlap if windows else 0):
        windows.append((start, samples))
    return windows


def main() -> None:
    args = parser(FAMILY, __doc__.splitlines()[0]).parse_args()
    upstream = args.upstream.resolve()
    commit = upstream_commit(upstream, PINNED)
    fixture = Fixture(
        args.out, FAMILY, {"repository": "myshell-ai/OpenVoice", "commit": commit}, args.seed
    )
    install_stubs(fixture)
    sys.path.insert(0, str(upstream))
    from openvoice import api

    torch.set_num_threads(1)
    draws: list[torch.Tensor] = []
    real_randn_like = torch.randn_like

    def recorded_randn_like(*a, **k):
        value = real_randn_like(*a, **k)
        draws.append(value.clone())
        return value

    torch.randn_like = recorded_randn_like
    fixture.patch(
        "torch.randn_like (drawn once per conversion, for the posterior's noise) records "
        "each draw and returns it unchanged"
    )
    fixture.manifest["notes"] = [
        f"streaming windows: {WINDOW_S} s overlapping by {OVERLAP_S} s",
    ]

    rng = np.random.default_rng(args.seed)
    clips = {
        "short": speech_like(rng, int(0.1 * RATE) + 3 + int(rng.integers(0, 13))),
        "long": speech_like(rng, int(3.9 * RATE) + 3 + int(rng.integers(0, 13))),
        "target_a": speech_like(rng, int(1.6 * RATE) + 11),
        "target_b": speech_like(rng, int(0.7 * RATE) + 5),
        "base": speech_like(rng, int(1.2 * RATE)),
        # shorter than the filter, longer than the reflect padding: 2 frames
        "tiny": speech_like(rng, 41),
    }
    work = args.out / "_work"
    work.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, samples in clips.items():
        fixture.array(f"clips/{name}", samples)
        paths[name] = str(work / f"{name}.wav")
        soundfile.write(paths[name], samples, RATE, subtype="FLOAT")
    fixture.manifest["stream"] = {"window_s": WINDOW_S, "overlap_s": OVERLAP_S}

    for index, (version, config) in enumerate((("v1", V1_CONFIG), ("v2", V2_CONFIG))):
        folder, base_path, base_name = LAYOUT[version]
        config_path = work / version / folder / "config.json"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(json.dumps(config))
        fixture.document(f"{version}/config", config)
        skeleton = api.ToneColorConverter(str(config_path), device="cpu")
        keys = [(k, list(v.shape)) for k, v in skeleton.model.state_dict().items()]
        weight_seed = args.seed * 1000 + index
        state = random_state(keys, weight_seed)
        save_checkpoint(state, config_path.parent / "checkpoint.pth")
        fixture.document(
            f"{version}/weights", {"seed": weight_seed, "keys": keys, "sha256": digest(state)}
        )
        converter = api.ToneColorConverter(str(config_path), device="cpu")
        missing, unexpected = converter.model.load_state_dict(state, strict=False)
        assert not missing and not unexpected, (missing, unexpected)
        converter.load_ckpt(str(config_path.parent / "checkpoint.pth"))

        def se(names: list[str], version=version, converter=converter) -> torch.Tensor:
            return converter.extract_se([paths[n] for n in names])

        base = se(["base"])
        fixture.array(f"{version}/base_speaker", base)
        fixture.manifest.setdefault("layout", {})[version] = {
            "converter": folder,
            "base_speaker": base_path,
            "voice": base_name,
        }
        embeddings = {"two": se(["target_a", "target_b"]), "long": se(["long"])}
        embeddings["target_a"] = se(["target_a"])
        embeddings["with_tiny"] = se(["target_a", "tiny"])
        for name, clip_names in (
            ("two", ["target_a", "target_b"]),
            ("long", ["long"]),
            ("with_tiny", ["target_a", "tiny"]),
        ):
            fixture.case(
                kind="embed",
                name=f"{version}-embed-{name}",
                version=version,
                clips=clip_names,
                embedding=fixture.array(f"{version}/embed_{name}", embeddings[name]),
            )

        def convert(
            samples: np.ndarray, source, target, tau: float, seed: int, converter=converter
        ):
            path = str(work / "source.wav")
            soundfile.write(path, samples, RATE, subtype="FLOAT")
            draws.clear()
            torch.manual_seed(seed)
            out = converter.convert(path, source, target, tau=tau)
            (noise,) = draws
            return out, noise

        # (name, source clip, source given as, target given as, tau, seed)
        plans = [
            ("long-tau0", "long", "voice", "audio", 0.0, 0),
            ("long-tau", "long", "audio", "embedding_two", 0.35, 21 + args.seed),
            ("short-tau0", "short", "embedding_long", "embedding_two", 0.0, 0),
            ("short-tau", "short", "voice", "audio", 0.6, 4 + args.seed),
        ]
        for name, clip, source_as, target_as, tau, seed in plans:
            source = {
                "voice": base,
                "audio": se([clip]),
                "embedding_long": embeddings["long"],
            }[source_as]
            target = embeddings["target_a"] if target_as == "audio" else embeddings["two"]
            out, noise = convert(clips[clip], source, target, tau, seed)
            fixture.case(
                kind="convert",
                name=f"{version}-{name}",
                version=version,
                clip=clip,
                source=source_as,
                target=target_as,
                tau=tau,
                seed=seed,
                output=fixture.array(f"{version}/convert_{name}", out),
                # at tau 0 the draw is made but scaled to nothing
                noise=fixture.array(f"{version}/noise_{name}", noise) if tau else None,
            )

        # V1 from the base speaker at tau 0 (and against the whole-source conversion);
        # V2 seeded at tau > 0, its source voice embedded from the stream's first window.
        tau, seed = (0.0, 0) if version == "v1" else (0.5, 8 + args.seed)
        windows = stream_windows(len(clips["long"]), config["data"]["hop_length"])
        paths["first_window"] = str(work / "first_window.wav")
        start, end = windows[0]
        soundfile.write(paths["first_window"], clips["long"][start:end], RATE, subtype="FLOAT")
        stream_source = base if version == "v1" else se(["first_window"])
        torch.manual_seed(seed)
        outputs = []
        for start, end in windows:
            path = str(work / "window.wav")
            soundfile.write(path, clips["long"][start:end], RATE, subtype="FLOAT")
            outputs.append(converter.convert(path, stream_source, embeddings["target_a"], tau=tau))
        fixture.case(
            kind="stream",
            name=f"{version}-stream",
            version=version,
            clip="long",
            source="voice" if version == "v1" else "first_window",
            target="audio",
            tau=tau,
            seed=seed,
            windows=windows,
            outputs=[fixture.array(f"{version}/stream_{i}", o) for i, o in enumerate(outputs)],
            unary=f"{version}/convert_long-tau0.npy" if tau == 0 else None,
        )

    for leftover in sorted(work.rglob("*"), reverse=True):
        leftover.unlink() if leftover.is_file() else leftover.rmdir()
    work.rmdir()
    fixture.finish("torch", "numpy", "soundfile")


if __name__ == "__main__":
    main()
