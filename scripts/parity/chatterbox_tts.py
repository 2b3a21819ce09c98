"""Parity fixtures for Chatterbox's whole path: text and a reference clip to 24 kHz audio.

Writes the tiny standard checkpoint of tests/chatterbox_checkpoint.py (T3 and voice
encoder of the T3 parity, S3Gen of the S3Gen parity, the trained tokenizer, a built-in
voice) and runs the reference's ChatterboxTTS.from_local(...).generate on it after
torch.manual_seed(seed): prepare_conditionals on a WAV clip, punc_norm, T3 with the
default sampling, S3Gen. Records the clip, the speech tokens T3 produced and the
audio, for tests/parity/test_chatterbox_tts.py to compare with the served path.

    PYTHONPATH=/work/scratch/chatterbox-env .venv/bin/python \
        scripts/parity/chatterbox_tts.py --upstream /work/scratch/chatterbox-env
"""

from __future__ import annotations

import os
import sys
import tempfile
import types
from pathlib import Path

import soundfile
import torch
from common import REPOSITORY, Fixture, parser

sys.path.insert(0, str(REPOSITORY / "tests"))
sys.path.insert(0, str(REPOSITORY / "scripts" / "parity"))
from chatterbox_checkpoint import clip, write
from chatterbox_s3gen import shrink_reference
from chatterbox_t3 import patch_reference

FAMILY = "chatterbox_tts"
MAX_TOKENS = 30
CASES = [
    ("Hello there, how are you?", 11, 0.5, 0.5),
    ("the quick brown fox: jumps!", 12, 0.9, 0.3),
]


def main() -> None:
    args = parser(FAMILY, __doc__).parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(args.upstream))
    fixture = Fixture(
        args.out, FAMILY, {"package": "chatterbox-tts", "version": "0.1.7"}, args.seed
    )
    patch_reference(fixture)
    import chatterbox.models.t3.llama_configs as llama_configs

    llama_configs.LLAMA_CONFIGS["Llama_520M"] = llama_configs.LLAMA_CONFIGS["tiny"]
    fixture.patch("LLAMA_CONFIGS['Llama_520M'] (what from_local builds) is the 'tiny' one")
    shrink_reference(fixture)
    import chatterbox.tts as tts
    from chatterbox.models.t3 import T3

    class NoWatermark:
        def apply_watermark(self, wav, sample_rate):  # type: ignore[no-untyped-def]
            return wav

    tts.perth = types.SimpleNamespace(PerthImplicitWatermarker=NoWatermark)
    fixture.stub("perth.PerthImplicitWatermarker: identity; the service does not watermark")
    inference = T3.inference
    produced: list[list[int]] = []

    def capped(self, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["max_new_tokens"] = MAX_TOKENS
        tokens = inference(self, **kwargs)
        produced.append(tokens[0].tolist())
        return tokens

    T3.inference = capped
    fixture.patch(
        f"T3.inference: max_new_tokens {MAX_TOKENS} (generate fixes 1000; the random tiny T3 "
        "never stops), its tokens recorded"
    )

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "chatterbox"
        write("chatterbox", folder, seed=args.seed)
        model = tts.ChatterboxTTS.from_local(folder, "cpu")
        for index, (text, seed, exaggeration, cfg_weight) in enumerate(CASES):
            voice = clip(args.seed + 40 + index, 6.5, 22050)
            wav = Path(scratch) / f"voice_{index}.wav"
            soundfile.write(wav, voice, 22050, subtype="PCM_16")
            fixture.path(f"voice_{index}.wav").write_bytes(wav.read_bytes())
            torch.manual_seed(seed)
            audio = model.generate(
                text, audio_prompt_path=str(wav), exaggeration=exaggeration,
                cfg_weight=cfg_weight,
            )  # fmt: skip
            fixture.case(
                kind="generate", name=f"case-{index}", text=text, seed=seed,
                exaggeration=exaggeration, cfg_weight=cfg_weight, voice=f"voice_{index}.wav",
                tokens=produced[-1], audio=fixture.array(f"audio_{index}", audio[0].numpy()),
                max_tokens=MAX_TOKENS,
            )  # fmt: skip
    fixture.finish("chatterbox-tts", "torch", "transformers", "numpy", "soundfile")


if __name__ == "__main__":
    main()
