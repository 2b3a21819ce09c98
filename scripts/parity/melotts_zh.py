"""Reference outputs of MeloTTS (myshell-ai/MeloTTS TTS.tts_to_file), Chinese with English.

The ZH model as the reference's TTS reads it (language ZH_MIX_EN: language id 3, tone
start 0, bert-base-multilingual-uncased on the ja_bert input): a tiny model in the
official layout (config.json with the reference's symbols, tone and language counts and
a spk2id table; checkpoint.pth under "model"), built by scripts/parity/melotts.py's
build_tts, and a tiny random BERT (tests/parity/melotts_weights.py) with a vocabulary of
the texts' characters that the reference's chinese_mix tokenizer and chinese_bert load
in place of bert-base-multilingual-uncased. Records:

- the front-end: for Chinese texts with numbers, dates, decimals, English words and
  camelCase inside, full-width and bracket punctuation, and tone sandhi (不, 一, third
  tones, neutral tones, 儿), the pieces split_sentences_into_pieces made and, per piece,
  clean_text's normalised text, phones, tones and word2ph, and get_text_for_tts_infer's
  phone ids, tones, language ids and the first channels of its ja_bert features;
- syntheses through tts_to_file itself after torch.manual_seed(seed), with its default
  scales and with noise 0, speeds varied;
- the lines of the reference's cmudict.rep that the English words were looked up in.

    python scripts/parity/melotts_zh.py --upstream /path/to/MeloTTS \
        [--seed N --out DIR --cases FILE]

--cases as melotts.py's (see scripts/parity/cases/melotts-zh.json).
"""

from __future__ import annotations

import sys

import torch
from common import FIXTURES, add_cases, load_cases, parser, record_cases
from melotts import (
    BERT_CHANNELS_KEPT,
    CASES_TAKEN,
    build_tts,
    install_stubs,
    model_input,
    record_front_end,
    record_lookups,
    record_pieces_and_inputs,
    remove_work,
    run_syntheses,
    runner,
    save_cmudict,
    start_fixture,
    synthesis_cases,
)

FAMILY = "melotts-zh"
SPEAKERS = {"ZH": 1, "ZH-B": 0}
TEXTS = [
    "你好，世界！",
    "今天是2024年3月15日，气温25.5度，湿度百分之60。",
    "我最近在学习machine learning，希望能够在未来的artificial intelligence领域有所建树。",
    "我们现在 also 能够 help 很多公司 use some machine learning 的 algorithms 啊!",
    "老虎很好，你也可以看一看。我不怕，一天一夜，不要走，第一名！",
    "展览馆里的纸老虎，蒙古包，小朋友们都喜欢吃饺子，花儿真好看。",
    "《原神》是由米哈游自主研发的一款全新开放世界冒险游戏——“真的吗？”（是的）……嗯，好吧~",
    "iPhone和JavaScript都很有名，NFT啊！她说：“OK，我们走吧。”",
]
ENGLISH_WORDS = [
    "machine",
    "learning",
    "artificial",
    "intelligence",
    "also",
    "help",
    "use",
    "some",
    "the",
    "ok",
]
NUMERALS = "零一二三四五六七八九十百千万亿点负"
# (name, text index, speaker, speed, (sdp_ratio, noise_scale, noise_scale_w) or None, seed);
# speeds and scales are exact in float32, as the API carries them.
SYNTHESES = [
    ("deterministic", 1, "ZH", 1.0, (0.2, 0.0, 0.0), 0),
    ("own-noise", 4, "ZH", 1.0, None, 7),
    ("mixed-fast", 2, "ZH-B", 1.25, (0.75, 0.3, 0.5), 5),
    ("own-noise-slow", 7, "ZH", 0.75, None, 3),
]


def vocabulary(texts: list[str], english_words: list[str]) -> list[str]:
    """Every CJK character of the texts and numerals, some whole English words, letters
    and their ## pieces (other words are cut into letters), the marks."""
    characters = sorted({c for text in texts for c in text if "\u4e00" <= c <= "\u9fa5"})
    letters = "abcdefghijklmnopqrstuvwxyz"
    marks = list(".,!?;:'\"-()…")
    seen = dict.fromkeys(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *marks, *english_words, *letters]
        + [f"##{c}" for c in letters]
        + characters
        + list(NUMERALS)
    )
    return list(seen)


def main() -> None:
    cli = parser(FAMILY, __doc__.splitlines()[0])
    add_cases(cli, f"{CASES_TAKEN}; words [...] (the tiny BERT's whole English words)")
    args = cli.parse_args()
    if args.out == FIXTURES / "melotts":
        sys.exit("the English fixtures live there")
    defaults = {
        "texts": TEXTS,
        "syntheses": synthesis_cases(SYNTHESES),
        "speakers": SPEAKERS,
        "words": ENGLISH_WORDS,
    }
    cases = load_cases(args.cases, defaults)
    upstream, fixture, work = start_fixture(
        args, FAMILY, lambda: vocabulary(cases["texts"], cases["words"]), 700
    )
    record_cases(fixture, args.cases)

    install_stubs(
        fixture,
        upstream,
        work / "bert",
        real=("chinese", "chinese_mix", "chinese_bert"),
        hub_names=("bert-base-uncased", "bert-base-multilingual-uncased"),
    )
    sys.path.insert(0, str(upstream))
    from melo import api, utils
    from melo.text import english

    torch.set_num_threads(1)
    speakers = cases["speakers"]
    tts = build_tts(fixture, work, args.seed, speakers, "ZH")
    assert tts.language == "ZH_MIX_EN", tts.language

    looked_up = record_lookups(english)
    recorded: dict[str, list] = {"pieces": [], "inputs": [], "cleaned": []}
    record_pieces_and_inputs(api, utils, recorded)
    clean = utils.clean_text

    def recording_clean(text, language):
        norm_text, phones, tones, word2ph = clean(text, language)
        # get_text_for_tts_infer scales word2ph in place afterwards: keep a copy.
        recorded["cleaned"].append((norm_text, list(phones), list(tones), list(word2ph)))
        return norm_text, phones, tones, word2ph

    utils.clean_text = recording_clean
    fixture.patch(
        "TTS.split_sentences_into_pieces, utils.get_text_for_tts_infer and utils.clean_text "
        "are wrapped to record the pieces, each piece's model input and its normalised text, "
        "phones, tones and word2ph; english.eng_dict records the words found in it; results "
        "are returned unchanged"
    )

    run = runner(tts, speakers, recorded)

    for index, text in enumerate(cases["texts"]):
        run(text, next(iter(speakers)), 1.0, (0.2, 0.0, 0.0), 0)
        inputs = []
        found = zip(recorded["inputs"], recorded["cleaned"], strict=True)
        for number, ((bert, ja_bert, phones, tones, languages), cleaned) in enumerate(found):
            assert not bert.any(), "ZH_MIX_EN puts its features on the ja_bert path"
            norm_text, phone_names, tone_values, word2ph = cleaned
            inputs.append(
                {
                    "normalized": norm_text,
                    "phone_names": phone_names,
                    "phone_tones": tone_values,
                    "word2ph": word2ph,
                    **model_input(fixture, index, number, phones, tones, languages, ja_bert),
                }
            )
        record_front_end(fixture, index, text, recorded, inputs)
    run_syntheses(fixture, recorded, run, cases)
    save_cmudict(fixture, upstream, looked_up)
    fixture.manifest["bert_channels_kept"] = BERT_CHANNELS_KEPT
    fixture.manifest["language"] = "ZH"
    remove_work(work)
    fixture.finish(
        "torch",
        "numpy",
        "transformers",
        "tokenizers",
        "g2p-en",
        "nltk",
        "cmudict",
        "inflect",
        "jieba",
        "pypinyin",
        "cn2an",
    )


if __name__ == "__main__":
    main()
