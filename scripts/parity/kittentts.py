"""KittenTTS 0.8 parity fixtures: the reference runtime (KittenML/KittenTTS) on a tiny model.

The model is the tests' tiny ONNX graph in the published layout (config.json naming the
.onnx and voices.npz; inputs input_ids, style, speed; outputs waveform, duration), its
table and style vectors drawn from --seed. The reference's own class runs it with
onnxruntime, its phonemizer being phonemizer + espeakng-loader (espeak-ng 1.52.0), as
its requirements name them. Those are installed outside the repository:

    pip install --target /tmp/kittentts-deps --no-deps phonemizer==3.3.0 \
        espeakng-loader==0.2.4 joblib cloudpickle dlinfo
    python scripts/parity/kittentts.py --upstream /tmp/KittenTTS --deps /tmp/kittentts-deps

For every case it records: the cleaned text, the reference's chunks, each chunk's
phonemes, input ids, style row and speed as fed to the model and its trimmed sample
count, and the audio of `generate` (its SHA-256, and the samples themselves when the
clip is short; a strided excerpt otherwise). The weights are not kept: the test redraws
them from the seed and checks them against the hashes in the manifest, then replays the
recorded model inputs to get the reference's audio back bit for bit (checked by hash).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from common import Fixture, parser, upstream_commit
from tts_support import write_tiny_kittentts

PINNED = "395171a"
FAMILY = "kittentts"
SPEED_PRIORS = {"expr-voice-2-f": 0.8}
FULL_AUDIO_SAMPLES = 24000  # clips up to a second are kept whole
EXCERPT_STRIDE = 97

LONG_SENTENCE = (
    "This sentence keeps going without a single full stop, because it wants to be longer "
    "than four hundred characters, and so the runtime has to pack its words into chunks "
    "of whole words, each at most four hundred characters long, with a comma put at the "
    "end of every chunk that does not already end in punctuation, which is what happens "
    "to long paragraphs of prose and to lists of things that go on and on and on, legal text, and "
    "transcripts of people who never stop talking once they have started telling a story"
)
LONG_NUMBERS = (
    "Between 1990 and 2024 the company grew from 12 to 3,400 employees, opened 57 offices "
    "in 23 countries, raised $2.5M, then $85K more, and spent 3.5% of its 1,200,000 dollar "
    "budget on 7B parameter models trained for 100 epochs at 1e-4, while the 80s band "
    "played at 9:05 AM on the 21st of May, 2/3 of the staff drove 42km at 25°C and called "
    "555-1234 or 1-800-555-0199 about GPT-4 and Python-3.10 on pages 10-20, which took "
    "from 14:00 to 3:30pm and cost about $1,200.50 in total"
)
MAIN = [
    ("normal", "Hello world, this is KittenTTS speaking to you today.", {}),
    (
        "punctuation",
        "He said — «yes»: of the people; “ok” (really) [sure] {fine}! Wait... what? "
        "Dr. Smith met Mr. Jones… then they left.\n\nA new paragraph starts here",
        {},
    ),
    ("raw_numbers", "In 2024, 3.5% of 1,200 people paid $4.99 at 9:30.", {}),
    (
        "contractions",
        "I don't know, won't you help? They've left, it's late, and we'd go.",
        {"clean_text": True},
    ),
    (
        "currency_percent",
        "It costs $1,200.50 or €85K, a $1 fee and £9.99; inflation is 3.5% and -2%.",
        {"clean_text": True},
    ),
    (
        "science_time_ordinals",
        "Learning rate 1e-4, decay 2.5e10, at 3:30pm or 14:00 or 9:05 AM, on the 21st, "
        "the 20th and the 100th day.",
        {"clean_text": True},
    ),
    (
        "units_scales",
        "It weighs 50kg at 25°C, runs at 3.6GHz with 12ms latency, holds 5GB, and the 7B "
        "model beat the 340M one.",
        {"clean_text": True},
    ),
    (
        "fractions_decades_phones",
        "Add 3/4 cup and 1/2 or 2/3; the 80s and the 1990s; call 555-1234 or "
        "1-800-555-0199 about pages 10-20.",
        {"clean_text": True},
    ),
    (
        "models_ips_decimals_web",
        "GPT-4 and Python-3.10 run on 192.168.1.1; add .5 and -.25; see "
        "https://example.com or mail hello@example.com <b>now</b>.",
        {"clean_text": True},
    ),
    ("trailing_commas", "I have 5, 6 and 7 apples, and 10,000, more.", {"clean_text": True}),
    ("long_paragraph", f"Short opener. {LONG_SENTENCE}. And a short close!", {}),
    ("long_numbers", f"{LONG_NUMBERS}. Done.", {"clean_text": True}),
    ("speed_fast", "Speed changes the pace of the speech.", {"speed": 1.5}),
    ("speed_slow", "Speed changes the pace of the speech.", {"speed": 0.75}),
    ("voice_bella", "Bella speaks with her own prior speed.", {"voice": "Bella"}),
    ("voice_3m", "Another voice reads this line.", {"voice": "expr-voice-3-m"}),
    ("voice_kiki", "Kiki reads it a little faster.", {"voice": "Kiki", "speed": 1.25}),
    ("short", "Hi there.", {}),
]
ALT = [
    ("normal", "The quick brown fox jumps over the lazy dog, twice.", {}),
    (
        "punctuation",
        "«Quoted» text; then (brackets), a colon: and — a dash! Really?! Yes… Mrs. Doe said "
        "so.\n\nThe end",
        {},
    ),
    ("raw_numbers", "Call 911, or pay 7.25 dollars at 10:45 on May 3rd.", {}),
    (
        "clean_mix",
        "Let's say it's 8:00 am; we can't pay $3.05 or ₿2, it's 0.25% and 1,500,000 "
        "people, the 2000s, 5/8 inch, 2T tokens, 100 kph, 6.022E23, 10.0.0.1 and 3-7 days.",
        {"clean_text": True},
    ),
    ("trailing_commas", "Items 1, 2, 3 and 4,5 and 600, are here.", {"clean_text": True}),
    ("long_paragraph", f"{LONG_SENTENCE}, {LONG_SENTENCE.lower()}.", {"voice": "Luna"}),
    ("long_numbers", f"Intro. {LONG_NUMBERS}!", {"clean_text": True, "voice": "Hugo"}),
    ("speed", "A slower reading of one line.", {"speed": 0.5, "voice": "Bella"}),
    ("short", "Ok.", {"voice": "expr-voice-4-f"}),
]


def main() -> None:
    args = parser(FAMILY, __doc__.splitlines()[0])
    args.add_argument("--deps", type=Path, required=True, help="phonemizer + espeakng-loader")
    args.add_argument("--texts", choices=["main", "alt"], default="main")
    options = args.parse_args()
    commit = upstream_commit(options.upstream, PINNED)
    fixture = Fixture(options.out, FAMILY, {"repo": "KittenML/KittenTTS", "commit": commit}, 0)
    fixture.manifest["seed"] = options.seed
    fixture.manifest["texts"] = options.texts

    sys.path.insert(0, str(options.deps))
    # phonemizer's segments backend imports `segments` (and its csvw stack) at import time;
    # the espeak backend never uses it.
    stub = types.ModuleType("segments")
    stub.Profile = stub.Tokenizer = object  # type: ignore[attr-defined]
    sys.modules["segments"] = stub
    fixture.stub("segments: imported by phonemizer's segments backend, unused by espeak")
    sys.path.insert(0, str(options.upstream))
    onnx_model = importlib.import_module("kittentts.onnx_model")

    with tempfile.TemporaryDirectory() as scratch:
        folder = write_tiny_kittentts(Path(scratch) / "model", SPEED_PRIORS, options.seed)
        config = json.loads((folder / "config.json").read_text())
        fixture.manifest["model"] = {
            "config": config,
            "sha256": {
                name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
                for name in (config["model_file"], config["voices"])
            },
        }
        # As download_from_huggingface builds it from config.json (minus the download).
        model = onnx_model.KittenTTS_1_Onnx(
            model_path=str(folder / config["model_file"]),
            voices_path=str(folder / config["voices"]),
            speed_priors=config.get("speed_priors", {}),
            voice_aliases=config.get("voice_aliases", {}),
            backend="cpu",
        )
        for name, text, extra in MAIN if options.texts == "main" else ALT:
            record(fixture, model, onnx_model, name, text, **extra)
        fixture.manifest["espeak"] = {
            "version": ".".join(map(str, model.phonemizer.version())),
            "library": Path(str(model.phonemizer._espeak._espeak._library._name)).name,
        }
    fixture.finish("phonemizer", "espeakng-loader", "onnxruntime", "numpy")


def record(
    fixture: Fixture,
    model,
    onnx_model,
    name: str,
    text: str,
    voice: str = "expr-voice-5-m",
    speed: float = 1.0,
    clean_text: bool = False,
) -> None:
    cleaned = model.preprocessor(text) if clean_text else text
    chunks = []
    for chunk in onnx_model.chunk_text(cleaned):
        feeds = model._prepare_inputs(chunk, voice, speed)
        resolved = model.voice_aliases.get(voice, voice)
        chunks.append(
            {
                "text": chunk,
                "phonemes": model.phonemizer.phonemize([chunk])[0],
                "ids": feeds["input_ids"][0].tolist(),
                "style_row": min(len(chunk), model.voices[resolved].shape[0] - 1),
                "speed": float(feeds["speed"][0]),
                "samples": len(model.generate_single_chunk(chunk, voice, speed)),
            }
        )
    audio = np.asarray(model.generate(text, voice, speed, clean_text=clean_text), np.float32)
    streamed = list(model.generate_stream(text, voice, speed, clean_text=clean_text))
    assert [len(part) for part in streamed] == [c["samples"] for c in chunks]
    assert np.array_equal(np.concatenate(streamed), audio)
    files = {"document": fixture.document(f"{name}/chunks", chunks)}
    if len(audio) <= FULL_AUDIO_SAMPLES:
        files["audio"] = fixture.array(f"{name}/audio", audio)
    else:
        files["excerpt"] = fixture.array(f"{name}/excerpt", audio[::EXCERPT_STRIDE])
    fixture.case(
        name=name,
        text=text,
        voice=voice,
        speed=speed,
        clean_text=clean_text,
        cleaned=cleaned,
        samples=len(audio),
        peak=float(np.max(np.abs(audio))) if len(audio) else 0.0,
        sha256=hashlib.sha256(audio.astype("<f4").tobytes()).hexdigest(),
        excerpt_stride=EXCERPT_STRIDE,
        **files,
    )


if __name__ == "__main__":
    main()
