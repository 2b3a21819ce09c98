"""HarmonySpeech V1 reference outputs: harmony-speech-engine's own model code and request
handling on tiny random weights in the official `harmony-speech-v1` layout.

The reference runs as its engine does for one request:
- text to speech (unary): `prepare_harmonyspeech_synthesizer_inputs` (the whole text,
  stripped, cleaned by `english_cleaners`, one sequence), `ForwardTacotron.generate`,
  then `prepare_harmonyspeech_vocoder_inputs` on the synthesizer's JSON output (mel / 4,
  one break) and the vocoder step (MelGAN + PQMF, 0.15 s of zeros after the break, peak
  normalised to 0.97, written by soundfile as 16-bit WAV);
- vocoding a bare mel: the same vocoder step without breaks;
- embedding: `preprocess_wav` on the WAV file's bytes (librosa load and soxr_hq resampling,
  peak 0.9, -30 dBFS, VAD trimming), `get_input_frames`, the encoder step.

The engine's numerics live in harmonyspeech/task_handler/{inputs,model_runner_base}.py;
both modules import every other model family at the top, which are stubbed (recorded
in the manifest) since nothing of theirs runs here. librosa, scipy and numba come from
--deps (`pip install --target`), never from the project's environment.

    .venv/bin/python scripts/parity/harmonyspeech.py --upstream /tmp/harmony-speech-engine
"""

from __future__ import annotations

import base64
import io
import json
import sys
import types
from pathlib import Path

import numpy as np
import soundfile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Fixture, parser, upstream_commit

FAMILY = "harmonyspeech"
PINNED = "aca1b5e"
SAMPLE_RATE = 16000

SYNTHESIZER = {
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
    "n_mels": 20,
    "speaker_embed_dims": 6,
    "padding_value": -11.5129,
}
# The reference asserts channels >= Π upsample_scales (50) and divisibility by 2^3.
VOCODER = {
    "in_channels": 20,
    "out_channels": 4,
    "kernel_size": 7,
    "channels": 56,
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
ENCODER = {
    "mel_n_channels": 40,
    "model_hidden_size": 8,
    "model_num_layers": 2,
    "model_embedding_size": 6,
}

TEXTS = {
    "normal": "Hello there. How are you today?",
    "numbers": (
        "On Jan. 5th, 2024, Dr. Smith paid $3.50 to Acme Co. Ltd. for 1,000 items "
        "(about 12.5 each); Mr. and Mrs. Jones said: 'No!'"
    ),
    "long": (
        "The old lighthouse stood at the edge of the cliff, its lamp dark for many years. "
        "Every evening the keeper's daughter climbed the spiral stairs anyway, counting "
        "each of the ninety-nine steps, and looked out over the grey water, where the "
        "fishing boats had once come home in long lines, their lanterns swinging, their "
        "nets heavy with silver, their crews singing old songs about storms and luck and "
        "the girls waiting on the quay. Ships rarely passed now; still, she waited."
    ),
}
INDEPENDENT_TEXTS = {
    "normal": "Good morning! Is the kettle on? I would love a cup of tea.",
    "numbers": (
        "Capt. Reed sailed on Feb. 14, 1999 with 250 men, $12 each, and Lt. Gray, "
        "from St. Ives to Ft. Worth: 3rd time lucky?"
    ),
    "long": (
        "Rain fell softly on the tin roof of the little station while the last train "
        "of the night waited, engine humming, doors open to nobody, lamps flickering in "
        "the wind that came down from the hills with the smell of wet pine and smoke from "
        "the farmhouses scattered along the valley road. The conductor checked his watch "
        "twice, sighed, and finally waved his lantern; the carriages creaked forward into "
        "the dark, leaving only wet footprints on the platform."
    ),
}
# What each text case keeps of the chain's output (fixtures stay small): the float
# samples handed to soundfile, and/or the 16-bit samples of the WAV file it wrote.
KEEP = {"normal": ("audio", "wav"), "numbers": (), "long": ("wav",)}
# (text case, speed, pitch, energy)
PROSODY = [("normal", 1.5, 1.2, 0.8), ("normal", 0.7, None, None)]
CLIPS = {
    # name: (piper text, rate, seconds kept, shaping)
    "short": ("Hi there.", 16000, 0.9, None),
    "long": ("The quick brown fox jumps over the lazy dog, twice.", 22050, 3.0, None),
    "spiky": ("Numbers and letters, spoken slowly.", 16000, 2.6, "spike"),
}
INDEPENDENT_CLIPS = {
    "short": ("Okay, thanks.", 16000, 1.0, None),
    "long": ("Please call Stella, and ask her to bring these things.", 22050, 3.2, None),
    "spiky": ("Seven silver spoons sat on the shelf.", 16000, 2.4, "spike"),
}


class _Stub(types.ModuleType):
    """A module whose every attribute is a do-nothing class (for imports never used)."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {"__init__": lambda self, *a, **k: None})


def install_stubs(upstream: Path, fixture: Fixture) -> None:
    root = upstream / "harmonyspeech"
    # Packages whose __init__ imports the whole engine: their folders, without running it.
    for name, folder in {
        "harmonyspeech": root,
        "harmonyspeech.modeling": root / "modeling",
        "harmonyspeech.modeling.models": root / "modeling" / "models",
        "harmonyspeech.task_handler": root / "task_handler",
        "harmonyspeech.common": root / "common",
    }.items():
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]
        sys.modules[name] = package
    fixture.stub(
        "harmonyspeech, .modeling, .modeling.models, .task_handler, .common: package "
        "__init__ files not run (they import the whole engine); their folders are used"
    )
    unused = {
        "h5py": "parallel_wavegan utils import it for statistics files, unused",
        "loguru": "logging only",
        "chatterbox": "another model family (task_handler imports)",
        "chatterbox.tts": "another model family",
        "pydub": "audio conversion of other families",
        "faster_whisper": "another model family",
        "silero_vad": "another model family",
        "harmonyspeech.common.config": "engine configuration classes, only type names used",
        "harmonyspeech.common.inputs": "request classes, only type names used",
        "harmonyspeech.common.outputs": "result classes, passed to a replaced _build_result",
        "harmonyspeech.common.request": "request classes, only type names used",
        "harmonyspeech.modeling.loader": "model download and registry, weights loaded here",
        "harmonyspeech.modeling.models.melo.inputs": "another model family",
        "harmonyspeech.modeling.models.openvoice.inputs": "another model family",
        "harmonyspeech.modeling.models.openvoice.mel_processing": "another model family",
    }
    for name, why in unused.items():
        sys.modules[name] = _Stub(name)
        fixture.stub(f"{name}: {why}")
    sys.modules["loguru"].logger = types.SimpleNamespace(  # type: ignore[attr-defined]
        info=print, warning=print, error=print, debug=lambda *a, **k: None
    )


class Runner:
    """Stands in for the engine's model runner: the reference's _execute_* methods on a
    loaded model, each result returned as the inference produced it."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self.device = torch.device("cpu")

    def _build_result(self, request, inference_result, result_cls):
        return inference_result

    def _build_error_result(self, request, exception):
        raise exception


def randomise_batchnorm(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_mean"):
                buffer.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 1.5)


def legacy_weight_norm(state: dict) -> dict:
    """parametrizations.weight.original0/1 → weight_g / weight_v, as the published
    vocoder.pt (trained with torch's old weight_norm) stores them."""
    out = {}
    for key, value in state.items():
        key = key.replace("parametrizations.weight.original0", "weight_g")
        key = key.replace("parametrizations.weight.original1", "weight_v")
        out[key] = value
    return out


def piper_clip(text: str, rate: int, seconds: float, shaping: str | None) -> np.ndarray:
    tests = Path(__file__).resolve().parents[2] / "tests"
    sys.path.insert(0, str(tests))
    from support import piper_untrimmed  # the real Piper voice of the test suite

    audio, native = piper_untrimmed(text)
    if native != rate:
        from speechmesh.runtime.audio import resample

        audio = resample(audio, native, rate)
    audio = audio[: int(seconds * rate)]
    if shaping == "spike":
        # Quiet speech and one loud click: after the peak step the speech sits far below
        # -30 dBFS, the loudness step lifts the click past full scale (16-bit wrap in VAD).
        audio = audio * 0.25
        audio[len(audio) // 3] = 0.99
    return audio.astype(np.float32)


def clip_file(audio: np.ndarray, rate: int, container: str) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, audio, rate, format=container, subtype="PCM_16")
    return buffer.getvalue()


def main() -> None:
    args = parser(FAMILY, __doc__.splitlines()[0])
    args.add_argument(
        "--deps",
        type=Path,
        default=Path("/work/scratch/harmonyspeech-deps"),
        help="pip --target folder holding librosa 0.11, scipy, numba (reference-only)",
    )
    args.add_argument(
        "--independent", action="store_true", help="use the second set of texts and clips"
    )
    options = args.parse_args()
    commit = upstream_commit(options.upstream, PINNED)
    upstream = {
        "repository": "https://github.com/harmony-ai-solutions/harmony-speech-engine",
        "commit": commit,
    }
    fixture = Fixture(options.out, FAMILY, upstream, options.seed)
    sys.path.insert(0, str(options.upstream))
    sys.path.append(str(options.deps))
    install_stubs(options.upstream, fixture)

    from harmonyspeech.modeling.models.harmonyspeech.harmonyspeech import (
        ForwardTacotron,
        MelGANGenerator,
        SpeakerEncoder,
    )
    from harmonyspeech.modeling.models.harmonyspeech.synthesizer.text import text_to_sequence
    from harmonyspeech.task_handler import inputs as hs_inputs
    from harmonyspeech.task_handler.model_runner_base import ModelRunnerBase

    texts = INDEPENDENT_TEXTS if options.independent else TEXTS
    clips = INDEPENDENT_CLIPS if options.independent else CLIPS
    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)

    embedding = rng.normal(size=SYNTHESIZER["speaker_embed_dims"]).astype(np.float32)
    embedding /= np.linalg.norm(embedding)
    fixture.array("speaker", embedding)

    # ---- weights, official layout ------------------------------------------------------
    snapshot = fixture.path("snapshot")
    snapshot.mkdir(exist_ok=True)
    synthesizer = ForwardTacotron(**SYNTHESIZER)
    randomise_batchnorm(synthesizer)
    with torch.no_grad():
        # Durations near one frame per symbol, some negative (clamped to 0).
        # The bias puts the mean raw duration of the first text near 1.1 frames, for
        # any seed: some symbols round to 0 or 2 frames, speed 1.5 truncates every one
        # to 0 (the reference's fallback to 2 frames each), speed 0.7 stretches.
        symbols = torch.tensor([text_to_sequence(next(iter(texts.values())), ["english_cleaners"])])
        synthesizer.dur_pred.lin.bias.zero_()
        raw = synthesizer.eval().dur_pred(symbols, torch.from_numpy(embedding)[None])
        synthesizer.dur_pred.lin.bias.fill_(1.1 - float(raw.mean()))
        synthesizer.train()
    synthesizer.step.fill_(4321)
    (snapshot / "synthesizer").mkdir(exist_ok=True)
    (snapshot / "synthesizer" / "config.json").write_text(json.dumps({"model": SYNTHESIZER}))
    torch.save(
        {"model_state": synthesizer.state_dict(), "optimizer_state": {}},
        snapshot / "synthesizer" / "synthesizer.pt",
    )

    vocoder = MelGANGenerator(**VOCODER)
    with torch.no_grad():
        for name, parameter in vocoder.named_parameters():
            if name.endswith("original0"):  # weight norm's magnitude
                parameter.uniform_(0.5, 1.5)
            elif name.endswith("bias"):
                parameter.normal_(0, 0.05)
    (snapshot / "vocoder").mkdir(exist_ok=True)
    (snapshot / "vocoder" / "config.json").write_text(json.dumps({"model": VOCODER}))
    torch.save(
        {
            "model": {
                "generator": legacy_weight_norm(vocoder.state_dict()),
                "discriminator": {},
            },
            "steps": 1000,
            "epochs": 3,
        },
        snapshot / "vocoder" / "vocoder.pt",
    )

    encoder = SpeakerEncoder(**ENCODER)
    (snapshot / "encoder").mkdir(exist_ok=True)
    (snapshot / "encoder" / "config.json").write_text(json.dumps({"model": ENCODER}))
    torch.save(
        {"step": 1, "model_state": encoder.state_dict(), "optimizer_state": {}},
        snapshot / "encoder" / "encoder.pt",
    )

    # ---- load as the engine does (model.load_weights on torch.load of the files) --------
    def load(path: Path):
        return torch.load(path, map_location="cpu", weights_only=False)

    synthesizer = ForwardTacotron(**SYNTHESIZER)
    synthesizer.load_weights(load(snapshot / "synthesizer" / "synthesizer.pt"))
    vocoder = MelGANGenerator(**VOCODER)
    vocoder.load_weights(load(snapshot / "vocoder" / "vocoder.pt"), {"model": VOCODER})
    encoder = SpeakerEncoder(**ENCODER)
    encoder.load_weights(load(snapshot / "encoder" / "encoder.pt"))
    fixture.patch(
        "none: the models are built from the config.json sizes and loaded with their own "
        "load_weights, as harmonyspeech/modeling/loader.py does; the runner's "
        "_build_result returns the inference result itself"
    )
    synthesize = Runner(synthesizer)
    vocode = Runner(vocoder)
    embed = Runner(encoder)

    def run_synthesizer(text, embedding, speed=None, pitch=None, energy=None):
        generation = None
        if speed or pitch or energy:
            generation = types.SimpleNamespace(speed=speed, pitch=pitch, energy=energy)
        request = types.SimpleNamespace(
            input_text=text,
            input_embedding=base64.b64encode(embedding.tobytes()).decode(),
            generation_options=generation,
        )
        prepared = hs_inputs.prepare_harmonyspeech_synthesizer_inputs([request])
        return ModelRunnerBase._execute_harmonyspeech_synthesizer(synthesize, prepared, [request])[
            0
        ]

    def run_vocoder(input_audio: str) -> bytes:
        request = types.SimpleNamespace(input_audio=input_audio)
        prepared = hs_inputs.prepare_harmonyspeech_vocoder_inputs([request])
        encoded = ModelRunnerBase._execute_harmonyspeech_vocoder(vocode, prepared, [request])[0]
        return base64.b64decode(encoded)

    def wav_samples(data: bytes) -> np.ndarray:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="int16")
        assert rate == SAMPLE_RATE
        return samples

    def mel_of(synthesis_json: str) -> tuple[np.ndarray, list[int]]:
        payload = json.loads(synthesis_json)
        mel = np.array(json.loads(base64.b64decode(payload["mel"])), dtype=np.float32)
        breaks = json.loads(base64.b64decode(payload["breaks"]))
        return mel, breaks

    # The float samples the vocoder step writes, before soundfile's 16-bit conversion.
    written: list[np.ndarray] = []
    real_write = soundfile.write

    def recording_write(handle, data, *args, **kwargs):
        written.append(np.array(data, copy=True))
        return real_write(handle, data, *args, **kwargs)

    hs_runner_module = sys.modules["harmonyspeech.task_handler.model_runner_base"]
    hs_runner_module.sf = types.SimpleNamespace(write=recording_write)
    fixture.patch(
        "model_runner_base.sf: soundfile itself, wrapped to keep a copy of the float samples "
        "handed to sf.write (the WAV bytes are what the reference returns)"
    )

    # ---- text to speech ----------------------------------------------------------------
    cases = [(name, text, None, None, None) for name, text in texts.items()]
    cases += [
        (f"{name}-speed{speed}", texts[name], speed, pitch, energy)
        for name, speed, pitch, energy in PROSODY
    ]
    for name, text, speed, pitch, energy in cases:
        ids = text_to_sequence(text.strip(), ["english_cleaners"])
        result = run_synthesizer(text, embedding, speed, pitch, energy)
        mel, breaks = mel_of(result)
        written.clear()
        wav = wav_samples(run_vocoder(result))
        (floats,) = written
        assert breaks == [mel.shape[1]] and len(wav) == mel.shape[1] * 200 + 2400
        keep = KEEP.get(name, ("wav",))
        fixture.case(
            kind="synthesize",
            name=name,
            text=text,
            speed=speed,
            pitch=pitch,
            energy=energy,
            ids=fixture.document(f"{name}.ids", ids),
            mel=fixture.array(f"{name}.mel", mel),
            audio=fixture.array(f"{name}.audio", floats.astype(np.float32))
            if "audio" in keep
            else None,
            wav=fixture.array(f"{name}.wav", wav) if "wav" in keep else None,
            frames=int(mel.shape[1]),
            samples=len(wav),
        )
        print(f"{name}: {len(ids)} symbols, {mel.shape[1]} frames")

    # ---- vocoding a bare mel (no breaks) -----------------------------------------------
    mel = rng.normal(0, 1.5, size=(SYNTHESIZER["n_mels"], 37)).astype(np.float32)
    mel_json = json.dumps(mel.tolist())
    written.clear()
    wav = wav_samples(
        run_vocoder(json.dumps({"mel": base64.b64encode(mel_json.encode()).decode()}))
    )
    (floats,) = written
    fixture.case(
        kind="vocode",
        name="vocode",
        mel=fixture.array("vocode.mel", mel),
        audio=fixture.array("vocode.audio", floats.astype(np.float32)),
        wav=fixture.array("vocode.wav", wav),
    )

    # ---- speaker embeddings ------------------------------------------------------------
    for name, (text, rate, seconds, shaping) in clips.items():
        audio = piper_clip(text, rate, seconds, shaping)
        # Stored as FLAC (small); the reference reads the same 16-bit samples from WAV.
        flac = clip_file(audio, rate, "FLAC")
        (fixture.out / f"{name}.clip.flac").write_bytes(flac)
        samples, _ = soundfile.read(io.BytesIO(flac), dtype="int16")
        data = clip_file(samples, rate, "WAV")
        request = types.SimpleNamespace(input_audio=base64.b64encode(data))
        prepared = hs_inputs.prepare_harmonyspeech_encoder_inputs([request])
        encoded = ModelRunnerBase._execute_harmonyspeech_encoder(embed, prepared, [request])[0]
        vector = np.frombuffer(base64.b64decode(encoded), dtype=np.float32)
        frames = None
        if name == "short":  # the encoder's input too (one window, kept small)
            frames = fixture.array(f"{name}.frames", prepared[0])
        fixture.case(
            kind="embed",
            name=name,
            frames=frames,
            clip=f"{name}.clip.flac",
            rate=rate,
            seconds=len(audio) / rate,
            windows=int(prepared[0].shape[0]),
            embedding=fixture.array(f"{name}.embedding", vector),
        )
        print(f"{name}: {len(audio) / rate:.2f} s, {prepared[0].shape[0]} windows")

    fixture.finish("numpy", "torch", "librosa", "scipy", "soxr", "soundfile", "webrtcvad-wheels",
                   "inflect", "unidecode", "numba")  # fmt: skip


if __name__ == "__main__":
    main()
