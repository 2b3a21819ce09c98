"""A MeloTTS language's BERT, through transformers from a local folder or the hub cache:
its tokenizer cuts the text for the g2p, and the hidden states of its third layer from
the top (hidden_states[-3]), one row per token, [CLS] and [SEP] included, are repeated
for each token's phones (word2ph) into per-phone features."""

from __future__ import annotations

from pathlib import Path

import torch

from speechmesh.runtime import weights
from speechmesh.runtime.errors import FailedPrecondition

BERT_FILES = (
    "config.json",
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "model.safetensors",
)


class BertFeatures:
    def __init__(self, source: str, device: str) -> None:
        from transformers import AutoModel, AutoTokenizer

        folder = Path(weights.resolve(source, allow_patterns=list(BERT_FILES), progress=False))
        if not (folder / "config.json").is_file():
            raise FailedPrecondition(f"BERT {source!r} ({folder}) has no config.json")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
            model = AutoModel.from_pretrained(str(folder), add_pooling_layer=False)
        except (OSError, ValueError) as error:
            raise FailedPrecondition(
                f"BERT {source!r} did not load from {folder}: {error}"
            ) from error
        self.model = model.to(device).eval()
        self.device = device
        self.width = int(model.config.hidden_size)

    def tokenize(self, text: str) -> list[str]:
        tokens: list[str] = self.tokenizer.tokenize(text)
        return tokens

    def features(self, text: str, word2ph: list[int]) -> torch.Tensor:
        """[width, sum(word2ph)]: each token's row repeated word2ph[i] times."""
        inputs = self.tokenizer(text, return_tensors="pt").to(self.device)
        if inputs["input_ids"].shape[-1] != len(word2ph):
            raise ValueError(
                f"{inputs['input_ids'].shape[-1]} BERT tokens for {len(word2ph)} word2ph entries"
            )
        with torch.inference_mode():
            states = self.model(**inputs, output_hidden_states=True).hidden_states[-3][0]
        counts = torch.tensor(word2ph, device=states.device)
        return torch.repeat_interleave(states, counts, dim=0).T.float().cpu()
