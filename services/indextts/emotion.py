"""Emotion control: 8-value vectors through the emotion/speaker matrices, and text → vector.

feat2.pt (emotion matrix, rows × model_dim) and feat1.pt (speaker matrix, rows × 192)
are split into 8 groups by `emo_num`. For each emotion the row whose speaker entry
is nearest (cosine) to the prompt's CAM++ style is taken (or a random row); the
emotion vector is Σ wᵢ · rowᵢ + (1 − Σ wᵢ) · the audio emotion vector. Weights are
first scaled by alpha, truncated to 4 decimals as the reference does.

The text path asks the Qwen emotion model (qwen0.6bemo4-merge) with the system
prompt "文本情感分类" and parses its JSON (or "key: value" text) answer of Chinese
emotion names into the 8 values, clamped to [0, 1.2]; all zeros become calm = 1.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.indextts.config import EMOTIONS

CHINESE_NAMES = ("高兴", "愤怒", "悲伤", "恐惧", "反感", "低落", "惊讶", "自然")
MELANCHOLIC_WORDS = ("低落", "melancholy", "melancholic", "depression", "depressed", "gloomy")
SYSTEM_PROMPT = "文本情感分类"
THINK_END_ID = 151668
MAX_SCORE = 1.2


class EmotionMatrices:
    def __init__(
        self, emotion: torch.Tensor, speaker: torch.Tensor, counts: tuple[int, ...]
    ) -> None:
        if emotion.shape[0] != sum(counts) or speaker.shape[0] != sum(counts):
            raise FailedPrecondition(
                f"emotion matrices have {emotion.shape[0]} / {speaker.shape[0]} rows; "
                f"emo_num sums to {sum(counts)}"
            )
        self.emotion = torch.split(emotion, list(counts))
        self.speaker = torch.split(speaker, list(counts))
        self.counts = counts

    def rows(
        self, style: torch.Tensor, use_random: bool, generator: torch.Generator | None
    ) -> torch.Tensor:
        """(8, model_dim): one emotion row per emotion."""
        picked = []
        for emo, spk, count in zip(self.emotion, self.speaker, self.counts, strict=True):
            if use_random:
                index = int(torch.randint(count, (1,), generator=generator))
            else:
                index = int(
                    F.cosine_similarity(style.float().view(1, -1), spk.float(), dim=1).argmax()
                )
            picked.append(emo[index])
        return torch.stack(picked)

    def mix(
        self,
        weights: list[float],
        style: torch.Tensor,
        audio_emotion: torch.Tensor,
        use_random: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        w = torch.tensor(weights, dtype=torch.float32, device=audio_emotion.device)
        rows = self.rows(style, use_random, generator).to(audio_emotion.device, torch.float32)
        mixed = (w.unsqueeze(1) * rows).sum(0, keepdim=True)
        return (mixed + (1 - w.sum()) * audio_emotion.float()).to(audio_emotion.dtype)


def scale_weights(weights: list[float], alpha: float) -> list[float]:
    alpha = max(0.0, min(1.0, alpha))
    if alpha == 1.0:
        return list(weights)
    return [int(w * alpha * 10000) / 10000 for w in weights]


def parse_answer(answer: str, text: str) -> list[float]:
    """The model's answer → 8 weights in EMOTIONS order."""
    try:
        content: Any = json.loads(answer)
    except json.JSONDecodeError:
        content = {
            m.group(1): float(m.group(2))
            for m in re.finditer(r'([^\s":.,]+?)"?\s*:\s*([\d.]+)', answer)
        }
    if not isinstance(content, dict):
        content = {}
    named = _labelled(content)
    lowered = text.lower()
    if any(word in lowered for word in MELANCHOLIC_WORDS):
        named["悲伤"], named["低落"] = named.get("低落", 0.0), named.get("悲伤", 0.0)
    values = []
    for name in CHINESE_NAMES:
        try:
            value = float(named.get(name, 0.0))
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"emotion model returned a non-numeric score for {name}: {named[name]!r}"
            ) from error
        values.append(max(0.0, min(MAX_SCORE, value)))
    if all(v <= 0.0 for v in values):
        values[EMOTIONS.index("calm")] = 1.0
    return values


def _labelled(content: dict[str, Any]) -> dict[str, Any]:
    """Chinese keys for English or Chinese names; a bare label counts as 1.0."""
    english = dict(zip(EMOTIONS, CHINESE_NAMES, strict=True))
    out: dict[str, Any] = {}
    for key, value in content.items():
        name = english.get(str(key).strip().lower(), str(key).strip())
        if name in CHINESE_NAMES:
            out[name] = value
    for alias in ("emotion", "emotion_label", "label", "情感", "情绪"):
        label = content.get(alias)
        if isinstance(label, str):
            name = english.get(label.strip().lower(), label.strip())
            if name in CHINESE_NAMES and not out:
                out[name] = 1.0
    return out


class QwenEmotion:
    """The emotion text model: a transformers causal LM directory (qwen0.6bemo4-merge).

    Loaded on the model's device in its dtype (the reference loads float16 with
    device_map="auto"; here the configured dtype decides, float32 on CPU). It decodes
    as the reference does: the folder's own generation config (Qwen's: sampled, top-k,
    top-p, temperature, its eos tokens), max_new_tokens from that config when it sets
    one, else the reference's 32768. The draws come from the request's generator: the
    reference samples from the global generator that its GPT then continues, so the
    request's state is lent to the global one for the call and taken back after."""

    MAX_NEW_TOKENS = 32768

    def __init__(
        self, folder: Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(
                str(folder), local_files_only=True, dtype=dtype
            )
        except (OSError, ValueError) as error:
            raise FailedPrecondition(
                f"emotion text model {folder} cannot be loaded: {error}"
            ) from error
        self.device = torch.device(device)
        # .to(dtype) too: transformers before 4.56 does not read `dtype` at load.
        self.model = model.to(self.device, dtype).eval()

    @torch.inference_mode()
    def answer_ids(self, text: str, generator: torch.Generator | None = None) -> list[int]:
        """The token ids the model answers `text` with (the prompt not included)."""
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}]
        prompt = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )
        inputs = self.tokenizer([prompt], return_tensors="pt").to(self.device)
        limit = self.model.generation_config.max_new_tokens or self.MAX_NEW_TOKENS
        with _lent_to_global(generator):
            output = self.model.generate(
                **inputs, max_new_tokens=limit, pad_token_id=self.tokenizer.eos_token_id
            )
        return output[0][inputs["input_ids"].shape[1] :].tolist()

    def __call__(self, text: str, generator: torch.Generator | None = None) -> list[float]:
        ids = self.answer_ids(text, generator)
        start = len(ids) - ids[::-1].index(THINK_END_ID) if THINK_END_ID in ids else 0
        answer = self.tokenizer.decode(ids[start:], skip_special_tokens=True)
        return parse_answer(answer, text)


@contextlib.contextmanager
def _lent_to_global(generator: torch.Generator | None) -> Iterator[None]:
    """Runs the block on the global generator of `generator`'s device set to its state,
    then hands the advanced state back; the global state is restored either way."""
    if generator is None:
        yield
        return
    device = generator.device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type):
        if device.type == "cuda":
            torch.cuda.set_rng_state(generator.get_state(), device)
        else:
            torch.set_rng_state(generator.get_state())
        yield
        state = torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()
        generator.set_state(state)
