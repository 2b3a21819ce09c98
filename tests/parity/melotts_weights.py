"""A tiny random BERT for MeloTTS parity, rebuilt from a seed: BertModel keys and shapes
(768 wide, as the model's ja_bert input needs; three layers, so hidden_states[-3] is a
transformer layer's output), the values of tests/parity/openvoice_weights.py's
random_state with layer-norm gains moved near one, saved with save_pretrained beside a
WordPiece tokenizer on a small vocabulary."""

from __future__ import annotations

from pathlib import Path

import torch

from parity.openvoice_weights import random_state

BERT_SHAPE = {
    "hidden_size": 768,
    "num_hidden_layers": 3,
    "num_attention_heads": 2,
    "intermediate_size": 16,
    "max_position_embeddings": 256,
}


def bert_state(keys: list[tuple[str, list[int]]], seed: int) -> dict[str, torch.Tensor]:
    state = random_state(keys, seed)
    for key in state:
        if key.endswith("LayerNorm.weight"):
            state[key] = state[key] + 1.0
    return state


def bert_keys(vocabulary: list[str]) -> list[tuple[str, list[int]]]:
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=len(vocabulary), **BERT_SHAPE)
    model = BertModel(config, add_pooling_layer=False)
    return [(k, list(v.shape)) for k, v in model.state_dict().items()]


def save_bert(
    state: dict[str, torch.Tensor],
    vocabulary: list[str],
    folder: Path,
    tokenizer: dict | None = None,
) -> None:
    """`tokenizer`: the tokenizer's settings (the official tokenizer_config.json's; a
    "tokenizer_class" of BertJapaneseTokenizer picks that class); default do_lower_case,
    as bert-base-uncased."""
    from transformers import BertConfig, BertJapaneseTokenizer, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    settings = dict(tokenizer) if tokenizer is not None else {"do_lower_case": True}
    if settings.pop("tokenizer_class", "BertTokenizer") == "BertJapaneseTokenizer":
        vocab_file = folder / "vocab.txt"
        vocab_file.write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
        BertJapaneseTokenizer(str(vocab_file), **settings).save_pretrained(str(folder))
    else:
        ids = {token: i for i, token in enumerate(vocabulary)}
        BertTokenizer(vocab=ids, **settings).save_pretrained(str(folder))
    model = BertModel(BertConfig(vocab_size=len(vocabulary), **BERT_SHAPE), add_pooling_layer=False)
    model.load_state_dict(state, strict=True)
    model.save_pretrained(str(folder))


def rebuild_reference_model(run, root: Path) -> dict:
    """The parity run's model (root/model) and BERT (root/bert), rebuilt and digest-checked;
    the options that serve them (EN and ZH: with the run's lexicon lines)."""
    import json

    from parity.openvoice_weights import digest, save_checkpoint
    from speechmesh.services.tts.melotts.reading import READS_ENGLISH

    recorded = run.document("weights")
    state = random_state([(k, s) for k, s in recorded["keys"]], recorded["seed"])
    assert digest(state) == recorded["sha256"], "the rebuilt weights are not the reference's"
    save_checkpoint(state, root / "model" / "checkpoint.pth")
    config = json.dumps(run.document("config"), ensure_ascii=False)
    (root / "model" / "config.json").write_text(config, encoding="utf-8")
    bert = run.document("bert")
    bert_weights = bert_state([(k, s) for k, s in bert["keys"]], bert["seed"])
    assert digest(bert_weights) == bert["sha256"], "the rebuilt BERT is not the reference's"
    save_bert(bert_weights, bert["vocabulary"], root / "bert", bert.get("tokenizer"))
    language = run.manifest.get("language", "EN")
    options = {"language": language, "bert": str(root / "bert")}
    if language in READS_ENGLISH:
        options["lexicon"] = str(run.file("cmudict.rep"))
    return options
