"""Parity fixtures for Chatterbox's whole path, per variant: text and a reference clip to
24 kHz audio.

Writes the tiny checkpoints of tests/chatterbox_checkpoint.py (T3 and voice encoder of
the T3 parity fixtures in the same root, i.e. `<out>/../chatterbox`; S3Gen of the S3Gen
parity's builder; the trained tokenizers; a built-in voice) in the official layouts and
runs the reference's own entry points on them after torch.manual_seed(seed):

- standard: ChatterboxTTS.from_local(...).generate(text, audio_prompt_path, ...);
- turbo: ChatterboxTurboTTS.from_local(...).generate(text, audio_prompt_path, ...): the
  clip loudness-normalised to -27 LUFS (pyloudnorm), the GPT-2 tokenizer, the meanflow
  S3Gen with two steps, three silence tokens appended;
- multilingual: ChatterboxMultilingualTTS.from_local(...).generate(text, language_id,
  audio_prompt_path, ...), with languages that take their own step (Korean jamo,
  Japanese kanji to hiragana with pykakasi) and one that takes none. Its grapheme
  tokenizer is trained here on the cases' own prepared texts (so their characters are
  in the vocabulary, not [UNK]) and saved with the fixtures; the test serves it.

Each case records the clip's digest (the test rebuilds the clip), the voice the
reference made of it (speaker embedding, T3's prompt tokens), the speech tokens T3
produced and those S3Gen got, and the audio, for tests/parity/test_chatterbox_tts.py to
compare with the served path.

    PYTHONPATH=/work/scratch/chatterbox-env .venv/bin/python \
        scripts/parity/chatterbox_tts.py --upstream /work/scratch/chatterbox-env

An independent run: make the T3 fixtures with other weights first, then this with
`--seed` (other S3Gen weights, clips, built-in voice) and `--cases` (other texts,
seeds, options and clips), into the same root:

    python scripts/parity/chatterbox_t3.py --upstream ENV --seed 7 --out ROOT/chatterbox
    python scripts/parity/chatterbox_tts.py --upstream ENV --seed 7 \
        --out ROOT/chatterbox_tts --cases cases.json
    SPEECHMESH_PARITY_FIXTURES=ROOT pytest tests/parity/test_chatterbox_tts.py
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import tempfile
import types
import unicodedata
from pathlib import Path

import numpy as np
import torch
from common import REPOSITORY, Fixture, parser

sys.path.insert(0, str(REPOSITORY / "tests"))
sys.path.insert(0, str(REPOSITORY / "scripts" / "parity"))
from chatterbox_checkpoint import voice_wav, write
from chatterbox_s3gen import shrink_reference
from chatterbox_t3 import patch_reference
from parity.support import ReferenceRun

FAMILY = "chatterbox_tts"
MAX_TOKENS = 30
"""T3's cap on speech tokens (the random tiny T3 never stops); the served models get the
same as options.max_new_tokens."""
FAMILIES = {
    "standard": "chatterbox",
    "turbo": "chatterbox-turbo",
    "multilingual": "chatterbox-multilingual",
}
MTL_TOKENIZER = "grapheme_mtl_merged_expanded_v1.json"
# Each case is one generate() call. `options` are generate()'s keyword arguments, named
# as ChatterboxOptions' fields; the voice clip is tests/chatterbox_checkpoint.voice_wav(
# --seed + voice_seed, voice_seconds, voice_rate), a 16-bit WAV file.
CASES = [
    {
        "name": "standard-0", "variant": "standard", "text": "Hello there, how are you?",
        "seed": 11, "options": {"exaggeration": 0.5, "cfg_weight": 0.5},
        "voice_seed": 40, "voice_seconds": 6.5, "voice_rate": 22050,
    },
    {
        "name": "standard-1", "variant": "standard", "text": "the quick brown fox: jumps!",
        "seed": 12, "options": {"exaggeration": 0.9, "cfg_weight": 0.3},
        "voice_seed": 41, "voice_seconds": 6.5, "voice_rate": 22050,
    },
    {
        "name": "turbo-0", "variant": "turbo", "text": "Hello there... how are you? [laugh]",
        "seed": 13, "options": {},
        "voice_seed": 42, "voice_seconds": 6.5, "voice_rate": 22050,
    },
    {
        "name": "turbo-1", "variant": "turbo", "text": "the quick brown fox; jumps - over it!",
        "seed": 14,
        "options": {"temperature": 0.9, "top_k": 50, "top_p": 0.8, "repetition_penalty": 1.3},
        "voice_seed": 43, "voice_seconds": 5.6, "voice_rate": 24000,
    },
    {
        "name": "multilingual-fr", "variant": "multilingual", "language": "fr",
        "text": "Bonjour à tous, ça va très bien.", "seed": 15,
        "options": {"exaggeration": 0.5, "cfg_weight": 0.5},
        "voice_seed": 44, "voice_seconds": 6.5, "voice_rate": 22050,
    },
    {
        "name": "multilingual-ko", "variant": "multilingual", "language": "ko",
        "text": "안녕하세요 세계, 반갑습니다", "seed": 16,
        "options": {"exaggeration": 0.7, "cfg_weight": 0.4, "temperature": 0.9},
        "voice_seed": 45, "voice_seconds": 4.0, "voice_rate": 24000,
    },
    {
        "name": "multilingual-ja", "variant": "multilingual", "language": "ja",
        "text": "今日は良い天気ですね。カメラを持って公園へ行きます", "seed": 17,
        "options": {"exaggeration": 0.5, "cfg_weight": 0.5, "repetition_penalty": 1.5},
        "voice_seed": 46, "voice_seconds": 6.5, "voice_rate": 16000,
    },
]  # fmt: skip
MTL_LANGUAGES = ["en", "fr", "de", "ko", "es"]
"""Language tokens of the T3 parity's multilingual tokenizer; the cases' are added."""


def cases(path: Path | None, fixture: Fixture) -> list[dict]:
    """The cases, with --cases' fields ({case name: {field: value}}) replacing theirs."""
    chosen = copy.deepcopy(CASES)
    if path is None:
        return chosen
    overrides = json.loads(path.read_text(encoding="utf-8"))
    unknown = sorted(set(overrides) - {c["name"] for c in chosen})
    if unknown:
        sys.exit(f"--cases names no case {', '.join(unknown)}")
    for case in chosen:
        case.update(overrides.get(case["name"], {}))
    fixture.patch(f"cases' fields replaced: {json.dumps(overrides, ensure_ascii=False)}")
    return chosen


def train_mtl_tokenizer(chosen: list[dict], path: Path) -> None:
    """A grapheme tokenizer that knows the cases' characters after their language's step
    (the reference's own korean_normalize and hiragana_normalize)."""
    from chatterbox import mtl_tts
    from chatterbox.models.tokenizers import tokenizer as reference
    from chatterbox_t3 import train_grapheme, training_text

    corpus = list(training_text("multilingual"))
    languages = list(MTL_LANGUAGES)
    for case in chosen:
        if case["variant"] != "multilingual":
            continue
        language = case["language"]
        text = unicodedata.normalize("NFKD", mtl_tts.punc_norm(case["text"]).lower())
        text = {"ko": reference.korean_normalize, "ja": reference.hiragana_normalize}.get(
            language, lambda t: t
        )(text)
        # Each character alone: in the vocabulary, but not merged into words (a text of
        # five tokens or fewer would stop the reference's alignment guard with IndexError).
        corpus += sorted(set(text) - {" "})
        if language not in languages:
            languages.append(language)
    train_grapheme(corpus, [f"[{lang}]" for lang in languages], 400).save(str(path))


def patch_turbo(fixture: Fixture) -> None:
    import chatterbox.models.t3.llama_configs as llama_configs
    import chatterbox.tts_turbo as tts_turbo
    from chatterbox.models.t3.modules.t3_config import T3Config
    from parity.chatterbox_weights import TURBO_TEXT_VOCAB

    meter = tts_turbo.ln.Meter

    class Meter(meter):  # type: ignore[misc, valid-type]
        def integrated_loudness(self, data):  # type: ignore[no-untyped-def]
            return float(super().integrated_loudness(data))

    tts_turbo.ln = types.SimpleNamespace(Meter=Meter)
    fixture.patch(
        "tts_turbo.norm_loudness: pyloudnorm's integrated_loudness handed back as a Python "
        "float. It returns a NumPy float64, so under NumPy 2 (installed here) wav * gain "
        "becomes float64 and the S3 tokenizer's float32 mel filters refuse it (RuntimeError: "
        "expected scalar type Double); the package pins numpy<2 on Python < 3.13, where the "
        "product stays float32 (the gain rounded to float32), as it does with a Python float"
    )
    llama_configs.LLAMA_CONFIGS["GPT2_medium"] = llama_configs.LLAMA_CONFIGS["tiny_gpt2"]
    tts_turbo.T3Config = lambda text_tokens_dict_size: T3Config(TURBO_TEXT_VOCAB)
    fixture.patch(
        "tts_turbo: LLAMA_CONFIGS['GPT2_medium'] (what from_local builds) is the 'tiny_gpt2' "
        f"one, and its T3Config(text_tokens_dict_size=50276) is T3Config({TURBO_TEXT_VOCAB})"
    )


def patch_multilingual(fixture: Fixture) -> None:
    import chatterbox.mtl_tts as mtl_tts

    drop = mtl_tts.drop_invalid_tokens

    def drop_and_keep_known(tokens):  # type: ignore[no-untyped-def]
        tokens = drop(tokens)
        return tokens[tokens < 6561]

    mtl_tts.drop_invalid_tokens = drop_and_keep_known
    fixture.patch(
        "mtl_tts.generate: tokens >= 6561 dropped after drop_invalid_tokens, as tts.generate "
        "does; mtl_tts passes them to S3Gen, whose embedding has 6561 rows (IndexError: T3's "
        "vocabulary is 8194, and the random tiny T3 samples such tokens)"
    )


def record_calls(fixture: Fixture) -> dict[str, list]:
    """T3's tokens (its cap applied) and the tokens S3Gen renders, per generate()."""
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3

    seen: dict[str, list] = {"t3": [], "s3gen": []}
    inference, turbo, render = T3.inference, T3.inference_turbo, S3Gen.inference

    def capped(self, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["max_new_tokens"] = MAX_TOKENS
        tokens = inference(self, **kwargs)
        seen["t3"].append(tokens[0].tolist())
        return tokens

    def capped_turbo(self, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["max_gen_len"] = MAX_TOKENS - 1  # the first token, then max_gen_len more
        tokens = turbo(self, **kwargs)
        seen["t3"].append(tokens[0].tolist())
        return tokens

    def rendered(self, **kwargs):  # type: ignore[no-untyped-def]
        seen["s3gen"].append(kwargs["speech_tokens"].reshape(-1).tolist())
        return render(self, **kwargs)

    T3.inference, T3.inference_turbo, S3Gen.inference = capped, capped_turbo, rendered
    fixture.patch(
        f"T3.inference: max_new_tokens {MAX_TOKENS}; T3.inference_turbo: max_gen_len "
        f"{MAX_TOKENS - 1} ({MAX_TOKENS} tokens); generate fixes 1000 and the random tiny T3 "
        "never stops. Their tokens, and those S3Gen.inference gets, recorded"
    )
    return seen


def main() -> None:
    args = parser(FAMILY, __doc__.splitlines()[0])
    args.add_argument(
        "--cases",
        type=Path,
        help="JSON {case name: {field: value}} replacing the cases' texts, seeds, options "
        "and clips (an independent run)",
    )
    args.add_argument(
        "--variants", default="standard,turbo,multilingual", help="comma-separated variants"
    )
    options = args.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # The T3 and voice-encoder weights are those of the T3 fixtures beside --out.
    os.environ["SPEECHMESH_PARITY_FIXTURES"] = str(options.out.resolve().parent)
    sys.path.insert(0, str(options.upstream))
    fixture = Fixture(
        options.out, FAMILY, {"package": "chatterbox-tts", "version": "0.1.7"}, options.seed
    )
    t3_run = ReferenceRun("chatterbox")
    fixture.manifest["t3_weights"] = {
        variant: entry["sha256"] for variant, entry in t3_run.document("weights").items()
    }
    variants = options.variants.split(",")
    chosen = [c for c in cases(options.cases, fixture) if c["variant"] in variants]
    patch_reference(fixture)
    import chatterbox.models.t3.llama_configs as llama_configs

    shrink_reference(fixture)
    patch_turbo(fixture)
    patch_multilingual(fixture)
    from chatterbox import mtl_tts, tts, tts_turbo

    class NoWatermark:
        def apply_watermark(self, wav, sample_rate):  # type: ignore[no-untyped-def]
            return wav

    for module in (tts, tts_turbo, mtl_tts):
        module.perth = types.SimpleNamespace(PerthImplicitWatermarker=NoWatermark)
    fixture.stub("perth.PerthImplicitWatermarker: identity; the service does not watermark")
    seen = record_calls(fixture)
    backbones = {"standard": "tiny", "multilingual": "tiny_mtl"}
    fixture.patch(
        "LLAMA_CONFIGS['Llama_520M'] (what from_local builds) is the 'tiny' one for the "
        "standard model, 'tiny_mtl' for the multilingual one"
    )
    if any(c["variant"] == "multilingual" for c in chosen):
        train_mtl_tokenizer(chosen, fixture.path(f"multilingual/{MTL_TOKENIZER}"))

    with tempfile.TemporaryDirectory() as scratch:
        for variant, family in FAMILIES.items():
            mine = [c for c in chosen if c["variant"] == variant]
            if not mine:
                continue
            folder = Path(scratch) / family
            write(family, folder, seed=options.seed)
            if variant == "multilingual":
                tokenizer = fixture.path(f"multilingual/{MTL_TOKENIZER}")
                (folder / MTL_TOKENIZER).write_bytes(tokenizer.read_bytes())
            if variant in backbones:
                llama_configs.LLAMA_CONFIGS["Llama_520M"] = llama_configs.LLAMA_CONFIGS[
                    backbones[variant]
                ]
            cls = {
                "standard": tts.ChatterboxTTS,
                "turbo": tts_turbo.ChatterboxTurboTTS,
                "multilingual": mtl_tts.ChatterboxMultilingualTTS,
            }[variant]
            model = cls.from_local(folder, "cpu")
            for case in mine:
                run_case(fixture, model, case, options.seed, seen, Path(scratch))
    fixture.finish("chatterbox-tts", "torch", "transformers", "pyloudnorm", "pykakasi")


def run_case(fixture, model, case, seed, seen, scratch) -> None:  # type: ignore[no-untyped-def]
    name = case["name"]
    voice = voice_wav(seed + case["voice_seed"], case["voice_seconds"], case["voice_rate"])
    wav = scratch / f"{name}.wav"
    wav.write_bytes(voice)
    # As the server gets them: ChatterboxOptions' numbers are float32.
    kwargs = {k: v if k == "top_k" else float(np.float32(v)) for k, v in case["options"].items()}
    if case["variant"] == "multilingual":
        kwargs["language_id"] = case["language"]
    torch.manual_seed(case["seed"])
    audio = model.generate(case["text"], audio_prompt_path=str(wav), **kwargs)
    conds = model.conds.t3
    fixture.case(
        **case,
        voice_sha256=hashlib.sha256(voice).hexdigest(),
        speaker=fixture.array(f"{name}/speaker", conds.speaker_emb[0]),
        prompt_tokens=conds.cond_prompt_speech_tokens[0].tolist(),
        tokens=seen["t3"][-1],
        speech_tokens=seen["s3gen"][-1],
        audio=fixture.array(f"{name}/audio", audio[0].numpy()),
        max_tokens=MAX_TOKENS,
    )
    print(f"{name}: {len(seen['s3gen'][-1])} speech tokens, {audio.shape[1]} samples")


if __name__ == "__main__":
    main()
