from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2Model

from speechmesh.runtime import weights
from speechmesh.runtime.errors import FailedPrecondition
from speechmesh.services.indextts.config import ConformerConfig, GptConfig
from speechmesh.services.indextts.gpt2 import GPT2Stack
from speechmesh.services.indextts.sampling import SamplingSettings, process
from speechmesh.services.indextts.unified_voice import UnifiedVoice

SMALL = ConformerConfig(output_size=16, linear_units=32, attention_heads=2, num_blocks=1)
CONFIG = GptConfig(
    model_dim=32,
    heads=2,
    layers=2,
    max_mel_tokens=40,
    max_text_tokens=20,
    number_text_tokens=50,
    number_mel_codes=20,
    start_mel_token=18,
    stop_mel_token=19,
    condition_module=SMALL,
    emo_condition_module=SMALL,
    semantic_dim=24,
)


def _random(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
    return module.eval()


def test_gpt2_stack_matches_transformers_with_shared_weights():
    config = GPT2Config(
        n_embd=32, n_layer=2, n_head=2, n_positions=64, vocab_size=8, bos_token_id=0, eos_token_id=0
    )
    reference = _random(GPT2Model(config))
    with torch.no_grad():
        reference.wpe.weight.zero_()  # IndexTTS replaces GPT-2's positions by zeros
    ours = GPT2Stack(32, 2, 2)
    shared = {k: v for k, v in reference.state_dict().items() if k.startswith(("h.", "ln_f"))}
    assert shared["h.0.attn.c_attn.weight"].shape == (32, 96)  # Conv1D: (in, out)
    weights.load_strict(ours, shared, ignore=["h.*.attn.bias", "h.*.attn.masked_bias"])
    x = torch.randn(1, 9, 32)
    with torch.no_grad():
        expected = reference(inputs_embeds=x).last_hidden_state
        got = ours(x)
        cache = ours.new_cache(1, 16, x)
        stepwise = torch.cat(
            [ours(x[:, :5], cache)] + [ours(x[:, i : i + 1], cache) for i in range(5, 9)], dim=1
        )
    assert torch.allclose(stepwise, expected, atol=1e-5)
    assert torch.allclose(got, expected, atol=1e-5)


def test_incremental_latent_equals_the_full_forward_pass():
    model = _random(UnifiedVoice(CONFIG))
    features = torch.randn(1, 30, 24)
    with torch.no_grad():
        speaker = model.speaker_latents(features, torch.tensor([30]))
        emotion = model.emotion_vector(features, torch.tensor([30]))
        conditioning = model.conditioning(speaker, emotion)
    assert speaker.shape == (1, 32, 32) and conditioning.shape == (1, 34, 32)
    generator = torch.Generator().manual_seed(3)
    out = model.generate(
        conditioning, [3, 4, 5], SamplingSettings(num_beams=1, max_mel_tokens=15), generator
    )
    assert 0 < len(out.codes) <= 15 and all(0 <= c < 18 for c in out.codes)
    with torch.no_grad():
        full = model.latent(conditioning, [3, 4, 5], out.codes)
    assert full.shape == out.latent.shape == (1, len(out.codes), 32)
    assert torch.allclose(full, out.latent, atol=1e-5)


def test_sampling_is_deterministic_under_a_seed_and_beams_search():
    model = _random(UnifiedVoice(CONFIG), seed=1)
    conditioning = torch.randn(1, 34, 32)
    runs = []
    for _ in range(2):
        generator = torch.Generator().manual_seed(7)
        runs.append(
            model.generate(
                conditioning, [6, 7], SamplingSettings(num_beams=3, max_mel_tokens=10), generator
            )
        )
    assert runs[0].codes == runs[1].codes and runs[0].codes
    greedy = SamplingSettings(
        do_sample=False, num_beams=1, repetition_penalty=1.0, max_mel_tokens=6
    )
    out = model.generate(conditioning, [6, 7], greedy)
    with torch.no_grad():
        latent = model.latent(conditioning, [6, 7], out.codes)
        first = model.mel_head(latent[:, 0]).argmax(-1)
    assert out.codes[0] == int(first)


def test_logit_processing_follows_the_reference_order():
    scores = torch.tensor([[2.0, 1.0, -1.0, 0.5, 0.0]])
    seen = torch.tensor([[0, 2]])
    settings = SamplingSettings(temperature=1.0, top_k=3, top_p=1.0, repetition_penalty=2.0)
    out = process(scores, seen, settings, min_keep=1)
    # Penalty divides positive and multiplies negative scores of seen tokens, then top-3.
    assert out[0, 0] == 1.0 and out[0, 1] == 1.0 and out[0, 3] == 0.5
    assert torch.isinf(out[0, 2]) and torch.isinf(out[0, 4])
    nucleus = process(
        torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])),
        seen[:, :0],
        SamplingSettings(temperature=1.0, top_k=0, top_p=0.7, repetition_penalty=1.0),
        1,
    )
    assert torch.isfinite(nucleus[0, :2]).all() and torch.isinf(nucleus[0, 2:]).all()


def test_strict_load_names_missing_and_unexpected_keys():
    model = UnifiedVoice(CONFIG)
    state = model.state_dict()
    del state["mel_head.weight"]
    state["inference_model.lm_head.1.weight"] = torch.zeros(1)
    with pytest.raises(FailedPrecondition) as error:
        weights.load_strict(UnifiedVoice(CONFIG), state)
    assert (
        "mel_head.weight" in error.value.message
        and "inference_model.lm_head.1.weight" in error.value.message
    )
