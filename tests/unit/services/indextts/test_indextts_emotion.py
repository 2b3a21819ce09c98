"""The emotion text model on a tiny random Qwen3 saved as the release's folder is: config,
generation config, safetensors weights, a tokenizer with a chat template."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from speechmesh.services.indextts.emotion import QwenEmotion

TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}"
    "<think>\n\n</think>\n\n{% endif %}{% endif %}"
)
MAX_NEW_TOKENS = 7


@pytest.fixture(scope="module")
def qwen_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        GenerationConfig,
        PreTrainedTokenizerFast,
        Qwen3Config,
        Qwen3ForCausalLM,
    )

    folder = tmp_path_factory.mktemp("qwen0.6bemo4-merge")
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
    vocab = {token: index for index, token in enumerate(specials + alphabet)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(specials)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.chat_template = TEMPLATE
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=len(vocab),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=256,
    )
    Qwen3ForCausalLM(config).save_pretrained(str(folder))
    # As Qwen3's generation config: sampled, top-k/top-p, its own eos; a small budget.
    GenerationConfig(
        do_sample=True,
        temperature=0.9,
        top_k=20,
        top_p=0.95,
        eos_token_id=[vocab["<|im_end|>"], vocab["<|endoftext|>"]],
        pad_token_id=vocab["<|endoftext|>"],
        max_new_tokens=MAX_NEW_TOKENS,
    ).save_pretrained(str(folder))
    return folder


def test_it_loads_on_the_models_device_in_its_dtype(qwen_folder: Path):
    emotion = QwenEmotion(qwen_folder, "cpu", torch.bfloat16)
    weights = {p.dtype for p in emotion.model.parameters()}
    assert weights == {torch.bfloat16}
    assert {p.device.type for p in emotion.model.parameters()} == {"cpu"}


def test_it_decodes_with_its_generation_config_from_the_requests_generator(qwen_folder: Path):
    emotion = QwenEmotion(qwen_folder)
    global_before = torch.get_rng_state()
    answers = []
    for seed in (1, 1, 2):
        generator = torch.Generator().manual_seed(seed)
        answers.append((emotion.answer_ids("今天很开心", generator), generator.get_state()))
    assert torch.equal(torch.get_rng_state(), global_before)  # the global state is untouched
    (ids, state), (again, state_again), (other, _) = answers
    assert 0 < len(ids) <= MAX_NEW_TOKENS  # the folder's max_new_tokens, not a fixed one
    assert ids == again and torch.equal(state, state_again)
    assert ids != other  # sampled (the config's do_sample), not greedy
    # The draws are the ones the reference makes from its global generator, which its
    # GPT then continues: the request's generator ends where the global one would.
    torch.manual_seed(1)
    prompt = emotion.tokenizer.apply_chat_template(
        [{"role": "system", "content": "文本情感分类"}, {"role": "user", "content": "今天很开心"}],
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=False,
    )
    inputs = emotion.tokenizer([prompt], return_tensors="pt")
    with torch.inference_mode():
        output = emotion.model.generate(
            **inputs, max_new_tokens=MAX_NEW_TOKENS, pad_token_id=emotion.tokenizer.eos_token_id
        )
    assert output[0][inputs["input_ids"].shape[1] :].tolist() == ids
    assert torch.equal(torch.get_rng_state(), state)
    torch.set_rng_state(global_before)


def test_an_unparseable_answer_is_calm(qwen_folder: Path):
    vector = QwenEmotion(qwen_folder)("今天很开心", torch.Generator().manual_seed(1))
    assert vector == [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]


def test_a_text_emotion_request_asks_qwen_before_the_prompt_draws(
    qwen_folder: Path, tiny_checkpoint: Path, tmp_path: Path
):
    """Through the engine, as the reference orders it: Qwen samples first, then the
    prompt's w2v-BERT draws, then the GPT. The text request's vector is Qwen's answer."""
    import shutil
    import threading

    import numpy as np

    from speechmesh.services.indextts.engine import IndexTTSEngine, SynthesisJob
    from speechmesh.services.indextts.layout import locate
    from speechmesh.services.indextts.pipeline import EmotionRequest, IndexTTS2
    from speechmesh.services.indextts.sampling import SamplingSettings

    folder = tmp_path / "IndexTTS-2"
    shutil.copytree(tiny_checkpoint, folder)
    shutil.copytree(qwen_folder, folder / "qwen0.6bemo4-merge")
    tts = IndexTTS2(locate(folder))
    assert tts.qwen is not None
    engine = IndexTTSEngine.__new__(IndexTTSEngine)
    engine.pipeline, engine._lock = tts, threading.Lock()
    t = np.arange(16000) / 16000
    voice = (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)

    def job(emotion: EmotionRequest) -> SynthesisJob:
        return SynthesisJob(
            text="Hello world.",
            prompt_audio=voice,
            prompt_rate=16000,
            sampling=SamplingSettings(num_beams=1, max_mel_tokens=6),
            emotion=emotion,
            diffusion_steps=2,
            seed=4,
        )

    by_text = [p.samples for p in engine.stream(job(EmotionRequest(text="今天很开心")))]
    # The same request spelled out: Qwen's answer from a seed-4 generator, then the rest
    # of the request from where that generator stands.
    generator = torch.Generator().manual_seed(4)
    vector = tts.qwen("今天很开心", generator)
    tts.skip_prompt_draws(generator)
    prompt = tts.prompt(voice, 16000)
    emotion = tts.emotion_vector(prompt, EmotionRequest(vector=vector), "Hello world.", generator)
    spelled = list(
        tts.segments(
            "Hello world.",
            prompt,
            emotion,
            SamplingSettings(num_beams=1, max_mel_tokens=6),
            steps=2,
            generator=generator,
        )
    )
    assert len(by_text) == len(spelled) > 0
    for ours, expected in zip(by_text, spelled, strict=True):
        assert np.array_equal(ours, expected.samples)
