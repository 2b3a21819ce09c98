"""MeloTTS benchmark: per-stage time and real-time factor per language at the official
size (myshell-ai/MeloTTS's config.json: 44.1 kHz, hop 512, 192 hidden channels, six
encoder layers, the transformer-coupling flow; a 768-wide, 12-layer BERT), with random
weights (the compute does not depend on the values).

Stages: the front-end (normalisation, the language's g2p, the BERT's per-phone
features), the text encoder and both duration predictors, then flow and HiFi-GAN
decoder. Random weights predict arbitrary durations, so the frames are fixed at 3 per
phone id (about what the released voices speak at: 2n + 1 ids with blanks, 512-sample
hops at 44 100 Hz). The symbol table is the reference's, as the parity run recorded it
(tests/parity/fixtures/melotts/config.json); each BERT's vocabulary is the words of its
text, cut as the language's tokenizer is set. A language whose front-end packages are
missing is skipped. RTF is processing seconds per second of audio. CPU always; CUDA too
when a GPU is present.

Usage: python benchmarks/melotts.py [--quick] [--repeats 5] [--threads 2] [--languages ES,FR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from vits_stages import decode_fixed, report, synchronize

from speechmesh.runtime.config import ModelConfig
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.tts.melotts.config import MeloConfig
from speechmesh.services.tts.melotts.engine import MeloTts
from speechmesh.services.tts.melotts.modules import SynthesizerTrn
from speechmesh.services.tts.melotts.reading import reader_for

RECORDED = Path(__file__).parents[1] / "tests/parity/fixtures/melotts/config.json"
OFFICIAL = {
    "train": {"segment_size": 16384},
    "data": {
        "sampling_rate": 44100, "filter_length": 2048, "hop_length": 512,
        "win_length": 2048, "n_mel_channels": 128, "add_blank": True, "n_speakers": 256,
        "spk2id": {"speaker": 0},
    },
    "model": {
        "use_spk_conditioned_encoder": True, "use_noise_scaled_mas": True,
        "use_mel_posterior_encoder": False, "use_duration_discriminator": True,
        "inter_channels": 192, "hidden_channels": 192, "filter_channels": 768,
        "n_heads": 2, "n_layers": 6, "n_layers_trans_flow": 3, "kernel_size": 3,
        "p_dropout": 0.1, "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "upsample_rates": [8, 8, 2, 2, 2], "upsample_initial_channel": 512,
        "upsample_kernel_sizes": [16, 16, 8, 2, 2], "n_layers_q": 3,
        "use_spectral_norm": False, "gin_channels": 256,
    },
}  # fmt: skip
BERT = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
}
# One piece each: the Chinese, Korean and Japanese splitters cut after every comma (and
# join the cuts again once past ten characters).
TEXTS = {
    "EN": "The quick brown fox jumps over the lazy dog, and then it runs far away.",
    "ZH": "我们今天下午一起去公园散步然后在湖边用iPhone拍了很多漂亮的照片。",
    "ES": "El rápido zorro marrón salta sobre el perro perezoso, y luego se va lejos.",
    "FR": "Le renard brun et rapide saute par-dessus le chien paresseux, puis il s'en va.",
    "KR": "빠른 갈색 여우가 게으른 개를 뛰어넘고 멀리 달아납니다.",
    "JP": "素早い茶色の狐がのろまな犬を飛び越えて遠くへ走って行きました。",
}
JAPANESE_TOKENIZER = {
    "word_tokenizer_type": "mecab",
    "subword_tokenizer_type": "wordpiece",
    "mecab_kwargs": {"mecab_dic": "unidic_lite"},
}
TOKENIZERS = {
    "EN": {"do_lower_case": True},
    "ZH": {"do_lower_case": True},  # bert-base-multilingual-uncased, as the ZH model reads
    "ES": {"do_lower_case": True, "strip_accents": False},
    "FR": {"do_lower_case": False},
    "KR": {"do_lower_case": False},
    "JP": {"do_lower_case": False, **JAPANESE_TOKENIZER},
}
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *".,!?;:'\"-()…、。"]
FRAMES_PER_ID = 3


def save_tokenizer(mark: str, vocabulary: list[str], folder: Path) -> None:
    from transformers import BertJapaneseTokenizer, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    if mark == "JP":
        (folder / "vocab.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
        BertJapaneseTokenizer(str(folder / "vocab.txt"), **TOKENIZERS[mark]).save_pretrained(
            str(folder)
        )
    else:
        ids = {token: i for i, token in enumerate(vocabulary)}
        BertTokenizer(vocab=ids, **TOKENIZERS[mark]).save_pretrained(str(folder))


def words(mark: str, folder: Path, text: str) -> list[str]:
    """The text's words as the language's tokenizer (on the special tokens) cuts them."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if mark == "JP":
        return list(tokenizer.word_tokenizer.tokenize(text))
    backend = tokenizer.backend_tokenizer
    cut = backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))
    return [word for word, _ in cut]


def reader(mark: str):
    """The language's front-end, for its splitter and normalisation (no tokenizer yet)."""
    return reader_for(mark, lambda _: [], (), {})


def save_model(folder: Path) -> None:
    recorded = json.loads(RECORDED.read_text(encoding="utf-8"))
    document = dict(OFFICIAL, **{k: recorded[k] for k in ("symbols", "num_tones", "num_languages")})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(document, ensure_ascii=False))
    torch.manual_seed(0)
    model = SynthesizerTrn(MeloConfig.from_json(document, "bench"))
    torch.save({"model": model.state_dict()}, folder / "checkpoint.pth")


def build(mark: str, root: Path, device: str) -> MeloTts:
    """The official-size model and a 12-layer BERT whose vocabulary is the text's words."""
    from transformers import BertConfig, BertModel

    bert = root / f"bert-{mark}"
    save_tokenizer(mark, SPECIAL, bert)
    front_end = reader(mark)
    piece = front_end.split(TEXTS[mark])[0]
    found = words(mark, bert, front_end.normalize(piece))
    vocabulary = list(dict.fromkeys([*SPECIAL, *found]))
    save_tokenizer(mark, vocabulary, bert)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocabulary), **BERT)
    BertModel(config, add_pooling_layer=False).save_pretrained(str(bert))
    engine = MeloTts(
        ModelConfig(
            id=f"melotts-{mark.lower()}",
            family="melotts",
            source=str(root / "model"),
            device=device,
            options={"language": mark, "bert": str(bert)},
        )
    )
    engine.load()
    return engine


def run(engine: MeloTts, mark: str, device: str, repeats: int) -> None:
    model = engine.model
    times: dict[str, list[float]] = {"front-end": [], "encoder+durations": [], "flow+decoder": []}
    (piece,) = engine.reader.split(TEXTS[mark])
    seconds, ids = 0.0, 0
    for attempt in range(repeats + 1):  # the first run warms up
        start = time.perf_counter()
        phones = engine.front_end(piece).model_input
        front = time.perf_counter()
        with torch.inference_mode():
            g = model.emb_g(torch.tensor([0], device=device)).unsqueeze(-1)
            x, mean, _, mask = model.enc_p(phones, g)
            noise = torch.randn(1, 2, x.size(2), device=device) * 0.8
            logw = 0.2 * model.sdp(x, mask, g, noise) + 0.8 * model.dp(x, mask, g)
            synchronize(device)
            encoded = time.perf_counter()
            audio = decode_fixed(model, logw, mask, mean, g, FRAMES_PER_ID, device)
        done = time.perf_counter()
        if attempt:
            times["front-end"].append(front - start)
            times["encoder+durations"].append(encoded - front)
            times["flow+decoder"].append(done - encoded)
            seconds, ids = audio.numel() / engine.sample_rate_hz, len(phones.phones)
    report(f"{device} {mark}", ids, seconds, times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 repeats")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--languages", default=",".join(TEXTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else args.repeats
    devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        save_model(root / "model")
        for mark in args.languages.split(","):
            for device in devices:
                try:
                    engine = build(mark, root, device)
                except FailedPrecondition as error:
                    print(f"\n{mark}: skipped ({error})")
                    break
                run(engine, mark, device, repeats)


if __name__ == "__main__":
    main()
