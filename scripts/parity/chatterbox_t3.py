"""Parity fixtures for Chatterbox's text side: tokenizers, voice encoder and T3.

Runs the reference package (chatterbox-tts 0.1.7, installed in a folder given as
--upstream) on tiny random weights in the official key names, for the three variants:

- tokenizer ids of real sentences (EnTokenizer on tokenizer.json, MTLTokenizer with
  language ids, Turbo's GPT-2 tokenizer through AutoTokenizer) after each variant's
  punc_norm; the tokenizer files are small ones trained here with `tokenizers`;
- the voice encoder's embedding (embeds_from_wavs) of two short synthetic clips;
- T3: the speech logits of the first pass (every row: conditional and unconditional),
  the greedy tokens (min_p = 1 keeps only the most likely token; Turbo: top_k = 1) and
  tokens sampled with the default settings after torch.manual_seed(seed) (T3's only
  random draws are its multinomials, so a generator seeded alike draws the same).

    PYTHONPATH=/work/scratch/chatterbox-env .venv/bin/python \
        scripts/parity/chatterbox_t3.py --upstream /work/scratch/chatterbox-env
"""

from __future__ import annotations

import os
import sys
import unicodedata

import numpy as np
import torch
from common import REPOSITORY, Fixture, parser

sys.path.insert(0, str(REPOSITORY / "tests"))
from parity.chatterbox_weights import (
    CHECKPOINTS,
    TINY_GPT2,
    TINY_LLAMA,
    TINY_MTL_LLAMA,
    TURBO_TEXT_VOCAB,
)
from parity.openvoice_weights import digest, random_state

FAMILY = "chatterbox"
MAX_TOKENS = 24
SENTENCES = {
    "standard": [
        "Hello world",
        "the quick brown fox... jumps over the lazy dog; really - truly: yes!",
        "“Quoted” and ‘single’ — dashes – too",
    ],
    "turbo": [
        "Hello world",
        "the quick brown fox... jumps over the lazy dog; really - truly: yes!",
        "Ha [laugh] that was funny",
    ],
    "multilingual": [
        ("en", "Hello world, how are you?"),
        ("fr", "Bonjour à tous, ça va très bien."),
        ("de", "Grüße aus München"),
        ("ko", "안녕하세요 세계"),
        ("es", "¿Dónde está la biblioteca?"),
    ],
}
SPECIALS = ["[START]", "[STOP]", "[UNK]", "[SPACE]", "[PAD]", "[SEP]", "[CLS]", "[MASK]"]
LANGUAGE_TOKENS = ["[en]", "[fr]", "[de]", "[ko]", "[es]"]


def train_grapheme(texts: list[str], extra: list[str], size: int):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, models, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=SPECIALS + extra)
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def training_text(variant: str) -> list[str]:
    corpus = [
        "The quick brown fox jumps over the lazy dog. Hello world, how are you today?",
        "Pack my box with five dozen liquor jugs! Sphinx of black quartz, judge my vow.",
        "Bonjour à tous, ça va très bien. Grüße aus München. ¿Dónde está la biblioteca?",
        "\"Quoted\" and 'single' - dashes, too.",
    ]
    if variant == "multilingual":
        corpus = [unicodedata.normalize("NFKD", t.lower()) for t in corpus]
        from speechmesh.services.tts.chatterbox.tokenizers import decompose_hangul

        corpus.append(decompose_hangul("안녕하세요 세계"))
    return [t.replace(" ", "[SPACE]") for t in corpus] * 3


def save_turbo_tokenizer(folder) -> None:  # type: ignore[no-untyped-def]
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        training_text("turbo"), vocab_size=400, special_tokens=["<|endoftext|>"]
    )
    folder.mkdir(parents=True, exist_ok=True)
    end = "<|endoftext|>"
    tokenizer = GPT2TokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token=end, eos_token=end, unk_token=end
    )
    tokenizer.add_tokens(["[laugh]", "[sigh]"])
    tokenizer.save_pretrained(str(folder))


def clip(seed: int, seconds: float) -> np.ndarray:
    """A voiced-sounding test signal: harmonics of a gliding pitch under an envelope,
    a little noise, silence before and after (for the encoder's trimming)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    f0 = 110 + 40 * rng.random() + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    voiced = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 1.3 * t)) ** 2
    signal = 0.2 * voiced * envelope + 0.005 * rng.standard_normal(len(t))
    silence = np.zeros(4000)
    return np.concatenate([silence, signal, silence]).astype(np.float32)


def patch_reference(fixture: Fixture) -> None:
    import chatterbox.models.t3.llama_configs as llama_configs
    import chatterbox.models.t3.modules.perceiver as perceiver

    llama_configs.LLAMA_CONFIGS["tiny"] = {**llama_configs.LLAMA_520M_CONFIG_DICT, **TINY_LLAMA}
    llama_configs.LLAMA_CONFIGS["tiny_mtl"] = {
        **llama_configs.LLAMA_520M_CONFIG_DICT,
        **TINY_MTL_LLAMA,
    }
    llama_configs.LLAMA_CONFIGS["tiny_gpt2"] = {**llama_configs.GPT2_MEDIUM_CONFIG, **TINY_GPT2}
    fixture.patch(
        "llama_configs.LLAMA_CONFIGS gains tiny backbones ('tiny', 'tiny_mtl', 'tiny_gpt2': "
        "the official dicts with the sizes of tests/parity/chatterbox_weights.py), chosen "
        "through T3Config.llama_config_name"
    )
    init = perceiver.Perceiver.__init__

    def tiny_perceiver(
        self,
        pre_attention_query_token=32,
        pre_attention_query_size=64,
        embedding_dim=64,
        num_attn_heads=4,
    ):  # type: ignore[no-untyped-def]
        init(
            self, pre_attention_query_token, pre_attention_query_size, embedding_dim, num_attn_heads
        )

    perceiver.Perceiver.__init__ = tiny_perceiver
    fixture.patch(
        "Perceiver's default widths (1024, fixed in the reference) are the tiny backbone's 64"
    )


def reference_t3(variant: str):  # type: ignore[no-untyped-def]
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config

    if variant == "standard":
        hp = T3Config.english_only()
        hp.llama_config_name = "tiny"
    elif variant == "multilingual":
        hp = T3Config.multilingual()
        hp.llama_config_name = "tiny_mtl"
    else:  # as ChatterboxTurboTTS.from_local, with the tiny GPT-2 and text vocabulary
        hp = T3Config(text_tokens_dict_size=TURBO_TEXT_VOCAB)
        hp.llama_config_name = "tiny_gpt2"
        hp.speech_tokens_dict_size = 6563
        hp.input_pos_emb = None
        hp.speech_cond_prompt_len = 375
        hp.use_perceiver_resampler = False
        hp.emotion_adv = False
    return T3(hp).eval()


def load_random(module, seed: int):  # type: ignore[no-untyped-def]
    keys = [(k, list(v.shape)) for k, v in module.state_dict().items()]
    state = random_state(keys, seed)
    module.load_state_dict(state, strict=True)
    return {"keys": keys, "seed": seed, "sha256": digest(state)}


def main() -> None:
    args = parser(FAMILY, __doc__).parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(args.upstream))
    fixture = Fixture(
        args.out, FAMILY, {"package": "chatterbox-tts", "version": "0.1.7"}, args.seed
    )
    patch_reference(fixture)
    fixture.stub(
        "none: the reference's modules run as installed; the Chinese Cangjie table and "
        "pkuseg are absent (HF_HUB_OFFLINE), which only the 'zh' path reads"
    )
    from chatterbox import mtl_tts, tts, tts_turbo
    from chatterbox.models.tokenizers import EnTokenizer, MTLTokenizer
    from chatterbox.models.voice_encoder import VoiceEncoder
    from transformers import AutoTokenizer

    # Tokenizers.
    files = {"standard": "tokenizer.json", "multilingual": "grapheme_mtl_merged_expanded_v1.json"}
    train_grapheme(training_text("standard"), [], 300).save(str(fixture.path(files["standard"])))
    train_grapheme(training_text("multilingual"), LANGUAGE_TOKENS, 400).save(
        str(fixture.path(files["multilingual"]))
    )
    save_turbo_tokenizer(fixture.path("turbo_tokenizer/x").parent)
    en = EnTokenizer(str(fixture.path(files["standard"])))
    mtl = MTLTokenizer(str(fixture.path(files["multilingual"])))
    turbo = AutoTokenizer.from_pretrained(str(fixture.out / "turbo_tokenizer"))
    if turbo.pad_token is None:  # as ChatterboxTurboTTS.from_local
        turbo.pad_token = turbo.eos_token
    texts: dict[str, list[list[int]]] = {}
    for text in SENTENCES["standard"]:
        normed = tts.punc_norm(text)
        ids = en.text_to_tokens(normed)[0].tolist()
        fixture.case(kind="tokens", variant="standard", text=text, normalized=normed, ids=ids)
        texts.setdefault("standard", []).append(ids)
    for language, text in SENTENCES["multilingual"]:
        normed = mtl_tts.punc_norm(text)
        ids = mtl.text_to_tokens(normed, language_id=language)[0].tolist()
        fixture.case(
            kind="tokens", variant="multilingual", language=language, text=text,
            normalized=normed, ids=ids,
        )  # fmt: skip
        texts.setdefault("multilingual", []).append(ids)
    for text in SENTENCES["turbo"]:
        normed = tts_turbo.punc_norm(text)
        ids = (
            turbo(normed, return_tensors="pt", padding=True, truncation=True).input_ids[0].tolist()
        )
        fixture.case(kind="tokens", variant="turbo", text=text, normalized=normed, ids=ids)
        texts.setdefault("turbo", []).append(ids)

    # Voice encoder.
    ve = VoiceEncoder().eval()
    weights = {"ve": load_random(ve, args.seed + 100)}
    speakers = []
    for index, seconds in enumerate((1.6, 2.4)):
        wav = clip(args.seed + index, seconds)
        embedding = ve.embeds_from_wavs([wav], sample_rate=16000)
        speakers.append(torch.from_numpy(embedding).mean(0, keepdim=True))
        fixture.case(
            kind="voice_encoder", name=f"clip-{index}",
            clip=fixture.array(f"ve/clip_{index}", wav),
            embedding=fixture.array(f"ve/embedding_{index}", embedding[0]),
        )  # fmt: skip

    # T3.
    rng = np.random.default_rng(args.seed)
    guided = dict(temperature=0.8, cfg_weight=0.5, min_p=0.05, top_p=1.0)
    defaults = {  # each generate()'s defaults
        "standard": dict(guided, repetition_penalty=1.2),
        "multilingual": dict(guided, repetition_penalty=2.0),
        "turbo": dict(temperature=0.8, top_k=1000, top_p=0.95, repetition_penalty=1.2),
    }
    for number, variant in enumerate(("standard", "multilingual", "turbo")):
        model = reference_t3(variant)
        weights[variant] = load_random(model, args.seed + number)
        weights[variant]["file"] = CHECKPOINTS[variant]
        prompt_length = model.hp.speech_cond_prompt_len
        voices = []
        for index, speaker in enumerate(speakers):
            length = prompt_length if index == 0 else prompt_length // 2 + 7
            prompt = rng.integers(0, 6561, length)
            voices.append(
                dict(
                    speaker=fixture.array(f"t3/{variant}_speaker_{index}", speaker[0]),
                    prompt=fixture.array(f"t3/{variant}_prompt_{index}", prompt.astype(np.int64)),
                    exaggeration=[0.5, 0.9][index],
                )
            )
        for index, ids in enumerate(texts[variant][:2]):
            voice = voices[index]
            text = (
                ids
                if variant == "turbo"
                else [model.hp.start_text_token, *ids, model.hp.stop_text_token]
            )
            for mode in ("greedy", "sampled"):
                settings = dict(defaults[variant])
                if mode == "greedy":
                    settings.update(top_k=1) if variant == "turbo" else settings.update(min_p=1.0)
                seed = args.seed + 17 * index + (mode == "sampled")
                tokens, logits = run_t3(
                    model, fixture, voice, speakers[index], text, settings, seed
                )
                name = f"{variant}-{index}-{mode}"
                fixture.case(
                    kind="t3", name=name, variant=variant, voice=voice, text=text,
                    settings=settings, seed=seed, mode=mode, max_tokens=MAX_TOKENS,
                    tokens=tokens, logits=fixture.array(f"t3/{name}_logits", logits),
                )  # fmt: skip
    fixture.document("weights", weights)
    fixture.finish("chatterbox-tts", "torch", "transformers", "tokenizers", "numpy")


def run_t3(model, fixture, voice, speaker, text, settings, seed):  # type: ignore[no-untyped-def]
    """The reference's tokens for one case and the speech logits of its first pass."""
    from chatterbox.models.t3.modules.cond_enc import T3Cond

    cond = T3Cond(  # a fresh one: prepare_conditioning stores the prompt's embedding on it
        speaker_emb=speaker,
        cond_prompt_speech_tokens=torch.from_numpy(fixture_array(fixture, voice["prompt"]))[None],
        emotion_adv=voice["exaggeration"] * torch.ones(1, 1, 1),
    )
    first: list[torch.Tensor] = []

    def keep_first(_module, _inputs, output):  # type: ignore[no-untyped-def]
        if not first:
            first.append(output[:, -1].detach().clone())

    hook = model.speech_head.register_forward_hook(keep_first)
    torch.manual_seed(seed)
    with torch.inference_mode():
        if model.is_gpt:
            tokens = model.inference_turbo(
                cond, torch.tensor([text]), max_gen_len=MAX_TOKENS, **settings
            )
        else:
            tokens = model.inference(
                t3_cond=cond, text_tokens=torch.tensor([text, text]), max_new_tokens=MAX_TOKENS,
                **settings,
            )  # fmt: skip
    hook.remove()
    return tokens[0].tolist(), first[0]


def fixture_array(fixture: Fixture, name: str) -> np.ndarray:
    return np.load(fixture.out / name, allow_pickle=False)


if __name__ == "__main__":
    main()
