"""Reference outputs of the OpenVoice V1 base speakers (myshell-ai/OpenVoice BaseSpeakerTTS).

Writes a tiny English and a tiny Chinese base speaker in the official layout
(checkpoints/base_speakers/{EN,ZH}/{config.json, checkpoint.pth}; the symbol table is the
reference's cjke_cleaners2 set, the EN speaker table starts at 1 as released), builds
the reference's SynthesizerTrn from each config.json, fills it with seeded random values
(tests/parity/openvoice_weights.py, so the test can rebuild the same checkpoints),
loads them with the reference's load_ckpt and records:

- the front-end: for English and Chinese texts with numbers, currency, abbreviations,
  camelCase, brackets, quotes and Latin letters, the pieces split_sentences_into_pieces
  made and each piece's ids as get_text gave them inside tts();
- syntheses through BaseSpeakerTTS.tts itself: with its own noise (0.667, 0.6, sdp 0.2)
  after torch.manual_seed(seed), and with other scales (both noises 0: deterministic;
  other sdp_ratio) passed to infer by a recorded wrapper; styles and speeds vary.

    python scripts/parity/openvoice_base.py --upstream /path/to/OpenVoice [--seed N --out DIR]
        [--texts other_texts.json]
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import types
from pathlib import Path

import torch
from common import REPOSITORY, Fixture, parser, upstream_commit

sys.path.insert(0, str(REPOSITORY / "tests"))
from parity.openvoice_weights import digest, random_state, save_checkpoint

PINNED = "74a1d14"
FAMILY = "openvoice_base"
RATE = 16000
STYLES = {
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
LANGUAGES = {"EN": "English", "ZH": "Chinese"}
MODEL = {
    "inter_channels": 6,
    "hidden_channels": 8,
    "filter_channels": 12,
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
}
FRONT_END = {
    "EN": [
        "Hello world.",
        "It costs $5.50, or £3 at most; Dr. Smith paid $1,200 on the 3rd of May 1984!",
        "OpenVoice reads camelCase words like iPhone and JavaScript (and brackets) "
        "«quoted» “curly” ‘single’ <tags> [notes].",
        "Yes. No. Maybe? Short pieces merge, and a long sentence with more than ten words "
        "goes on its own, doesn't it... The end",
        "Numbers: 2000, 2007, 1900, 42, 3.14 and 7th; Mr. and Mrs. Jones, Ltd.",
        "Tabs\tand\nnewlines  collapse; xyzzy plugh are unknown words. Ok",
        "Hi",
        "Café naïve résumé — déjà vu.",
    ],
    "ZH": [
        "你好，世界。",
        "今天是2024年3月15日，气温25.5度！我们有100个苹果。",
        "我爱AI和GPT模型，OpenVoice很好用；你呢？",
        "这是一个很长的句子，用来测试分句的规则是否与参考实现一致。短句。好！",
        "他说：“明天见。”、然后走了",
        "一",
    ],
}
# (name, language, style, text index, speed, scales or None for tts()'s own, seed)
SYNTHESES = [
    ("en-own-noise", "EN", "default", 1, 1.0, None, 7),
    ("en-deterministic", "EN", "whispering", 2, 1.0, (0.0, 0.0, 0.2), 0),
    ("en-fast-options", "EN", "angry", 3, 1.25, (0.5, 0.25, 0.75), 5),
    ("en-slow-own-noise", "EN", "friendly", 0, 0.75, None, 3),
    ("zh-own-noise", "ZH", "default", 1, 1.0, None, 11),
    ("zh-deterministic", "ZH", "default", 2, 1.25, (0.0, 0.0, 1.0), 0),
]


def install_stubs(fixture: Fixture) -> None:
    """librosa: imported by api.py and mel_processing, used only by the converter."""
    librosa = types.ModuleType("librosa")

    def unused(*_, **__):
        raise NotImplementedError("librosa is not on the base speaker's path")

    librosa.load = unused
    librosa.filters = types.SimpleNamespace(mel=unused)
    librosa.util = types.SimpleNamespace()
    sys.modules["librosa"] = librosa
    sys.modules["librosa.filters"] = librosa.filters
    fixture.stub(
        "librosa: load() and filters.mel raise; BaseSpeakerTTS.tts uses neither (api.py and "
        "mel_processing import it for the converter's audio loading and mel spectrograms)"
    )


def config(language: str, symbols: list[str]) -> dict:
    styles = STYLES[language]
    first = 1 if language == "EN" else 0
    return {
        "data": {
            "text_cleaners": ["cjke_cleaners2"],
            "sampling_rate": RATE,
            "filter_length": 64,
            "hop_length": 16,
            "win_length": 64,
            "n_mel_channels": 80,
            "add_blank": True,
            "cleaned_text": True,
            "n_speakers": len(styles) + first,
        },
        "model": MODEL,
        "speakers": {style: first + i for i, style in enumerate(styles)},
        "symbols": symbols,
    }


def main() -> None:
    cli = parser(FAMILY, __doc__.splitlines()[0])
    cli.add_argument(
        "--texts",
        type=Path,
        help='JSON {"EN": [...], "ZH": [...]} replacing the texts (an independent run); the '
        "syntheses take EN texts 0-3 and ZH texts 1-2",
    )
    args = cli.parse_args()
    texts = json.loads(args.texts.read_text(encoding="utf-8")) if args.texts else FRONT_END
    upstream = args.upstream.resolve()
    commit = upstream_commit(upstream, PINNED)
    fixture = Fixture(
        args.out, FAMILY, {"repository": "myshell-ai/OpenVoice", "commit": commit}, args.seed
    )
    install_stubs(fixture)
    sys.path.insert(0, str(upstream))
    from openvoice import api
    from openvoice.text.symbols import symbols

    torch.set_num_threads(1)
    work = args.out / "_work"
    speakers = {}
    for index, language in enumerate(("EN", "ZH")):
        folder = work / "checkpoints" / "base_speakers" / language
        folder.mkdir(parents=True, exist_ok=True)
        document = config(language, list(symbols))
        (folder / "config.json").write_text(json.dumps(document, ensure_ascii=False))
        fixture.document(f"{language}/config", document)
        skeleton = api.BaseSpeakerTTS(str(folder / "config.json"), device="cpu")
        keys = [(k, list(v.shape)) for k, v in skeleton.model.state_dict().items()]
        weight_seed = args.seed * 1000 + index
        state = random_state(keys, weight_seed)
        save_checkpoint(state, folder / "checkpoint.pth")
        fixture.document(
            f"{language}/weights", {"seed": weight_seed, "keys": keys, "sha256": digest(state)}
        )
        tts = api.BaseSpeakerTTS(str(folder / "config.json"), device="cpu")
        with contextlib.redirect_stdout(io.StringIO()):
            tts.load_ckpt(str(folder / "checkpoint.pth"))
        speakers[language] = tts

    # Records what tts() computes on its way, unchanged: the pieces and each one's ids.
    recorded: dict[str, list] = {"pieces": [], "ids": []}
    split = api.BaseSpeakerTTS.split_sentences_into_pieces
    get_text = api.BaseSpeakerTTS.get_text

    def recording_split(text, language_str):
        pieces = split(text, language_str)
        recorded["pieces"] = list(pieces)
        return pieces

    def recording_get_text(text, hps, is_symbol):
        ids = get_text(text, hps, is_symbol)
        recorded["ids"].append(ids.tolist())
        return ids

    api.BaseSpeakerTTS.split_sentences_into_pieces = staticmethod(recording_split)
    api.BaseSpeakerTTS.get_text = staticmethod(recording_get_text)
    fixture.patch(
        "BaseSpeakerTTS.split_sentences_into_pieces and .get_text are wrapped to record "
        "the pieces and each piece's ids; their results are returned unchanged"
    )

    def run(language, text, style, speed, scales, seed):
        recorded["ids"] = []
        tts = speakers[language]
        infer = tts.model.infer
        if scales is not None:
            noise, noise_w, sdp = scales

            def forced(*a, **k):
                k.update(noise_scale=noise, noise_scale_w=noise_w, sdp_ratio=sdp)
                return infer(*a, **k)

            tts.model.infer = forced
        try:
            torch.manual_seed(seed)
            with contextlib.redirect_stdout(io.StringIO()):
                audio = tts.tts(text, None, style, language=LANGUAGES[language], speed=speed)
        finally:
            tts.model.infer = infer
        return audio, list(recorded["pieces"]), list(recorded["ids"])

    fixture.patch(
        "for syntheses with scales, model.infer is wrapped to receive the case's "
        "noise_scale, noise_scale_w and sdp_ratio in place of tts()'s own (0.667, 0.6 and "
        "infer's default 0.2); everything else is tts() as released"
    )
    fixture.manifest["texts"] = "given" if args.texts else "the generator's"
    for language, language_texts in texts.items():
        for index, text in enumerate(language_texts):
            _, pieces, ids = run(language, text, "default", 1.0, (0.0, 0.0, 0.2), 0)
            fixture.case(
                kind="front_end",
                name=f"{language.lower()}-text-{index}",
                language=language,
                text=text,
                pieces=pieces,
                ids=fixture.document(f"{language}/ids_{index}", ids),
            )
    for name, language, style, index, speed, scales, seed in SYNTHESES:
        text = texts[language][index]
        audio, pieces, ids = run(language, text, style, speed, scales, seed)
        fixture.case(
            kind="synthesis",
            name=name,
            language=language,
            style=style,
            text=text,
            speed=speed,
            scales=None
            if scales is None
            else dict(zip(("noise_scale", "noise_scale_w", "sdp_ratio"), scales, strict=True)),
            seed=seed,
            pieces=pieces,
            audio=fixture.array(f"{language}/audio_{name}", audio),
        )
    fixture.manifest["layout"] = {
        language: f"checkpoints/base_speakers/{language}" for language in speakers
    }
    for leftover in sorted(work.rglob("*"), reverse=True):
        leftover.unlink() if leftover.is_file() else leftover.rmdir()
    work.rmdir()
    fixture.finish(
        "torch", "numpy", "eng-to-ipa", "inflect", "unidecode", "pypinyin", "jieba", "cn2an"
    )


if __name__ == "__main__":
    main()
