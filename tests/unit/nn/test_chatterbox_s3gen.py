"""S3Gen's loader and request checks on tiny random checkpoints in the official layout."""

from __future__ import annotations

import re

import pytest
import torch
from parity.chatterbox_s3gen_weights import save_s3gen, tiny_config
from safetensors.torch import load_file, save_file

from speechmesh.nn.chatterbox.s3gen import Reference, Row, load_s3gen
from speechmesh.runtime.errors import FailedPrecondition


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path, _ = save_s3gen(tmp_path_factory.mktemp("s3gen"), seed=3)
    return path


@pytest.fixture(scope="module")
def model(checkpoint):
    return load_s3gen(checkpoint)


def same_weights(a, b) -> None:
    left, right = a.state_dict(), b.state_dict()
    assert left.keys() == right.keys()
    for key in left:
        assert torch.equal(left[key], right[key]), key


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FailedPrecondition, match=re.escape("s3gen.safetensors")):
        load_s3gen(tmp_path / "s3gen.safetensors")


def test_sizes_come_from_the_file(model):
    assert model.config == tiny_config()


def test_a_missing_or_unexpected_key_is_refused(checkpoint, tmp_path):
    state = load_file(str(checkpoint))
    extra = dict(state, **{"flow.extra.weight": torch.zeros(1)})
    save_file(extra, str(tmp_path / "s3gen.safetensors"))
    with pytest.raises(FailedPrecondition, match=re.escape("flow.extra.weight")):
        load_s3gen(tmp_path / "s3gen.safetensors")
    missing = {k: v for k, v in state.items() if k != "flow.encoder_proj.bias"}
    save_file(missing, str(tmp_path / "s3gen.safetensors"))
    with pytest.raises(FailedPrecondition, match=re.escape("flow.encoder_proj.bias")):
        load_s3gen(tmp_path / "s3gen.safetensors")


def test_half_a_weight_norm_pair_is_refused(checkpoint, tmp_path):
    state = load_file(str(checkpoint))
    del state["mel2wav.conv_pre.parametrizations.weight.original0"]
    save_file(state, str(tmp_path / "s3gen.safetensors"))
    with pytest.raises(FailedPrecondition, match=re.escape("mel2wav.conv_pre")):
        load_s3gen(tmp_path / "s3gen.safetensors")


def test_legacy_weight_norm_and_a_torch_file_load_the_same(checkpoint, model, tmp_path):
    state = load_file(str(checkpoint))
    legacy = {
        k.replace(".parametrizations.weight.original0", ".weight_g").replace(
            ".parametrizations.weight.original1", ".weight_v"
        ): v
        for k, v in state.items()
    }
    torch.save(legacy, tmp_path / "s3gen.pt")
    same_weights(load_s3gen(tmp_path / "s3gen.pt"), model)


def test_a_file_without_the_mel_filters_loads(checkpoint, model, tmp_path):
    state = load_file(str(checkpoint))
    del state["tokenizer._mel_filters"], state["tokenizer.window"]
    save_file(state, str(tmp_path / "s3gen.safetensors"))
    same_weights(load_s3gen(tmp_path / "s3gen.safetensors"), model)


def voice(model) -> Reference:
    g = torch.Generator().manual_seed(0)
    return model.embed_ref(0.1 * torch.randn(12000, generator=g))


def test_tokens_out_of_range_or_none_are_refused(model):
    ref = voice(model)
    with pytest.raises(ValueError, match="outside"):
        model.generate([Row(torch.tensor([6561]), ref)])
    with pytest.raises(ValueError, match="no speech tokens"):
        model.generate([Row(torch.zeros(0, dtype=torch.long), ref)])


def test_a_ref_dict_round_trips(model):
    ref = voice(model)
    conds = {
        "prompt_token": ref.prompt_tokens[None],
        "prompt_token_len": torch.tensor([len(ref.prompt_tokens)]),
        "prompt_feat": ref.prompt_mel[None],
        "prompt_feat_len": None,
        "embedding": ref.embedding[None],
    }
    back = Reference.from_ref_dict(conds)
    assert torch.equal(back.prompt_tokens, ref.prompt_tokens)
    assert torch.equal(back.prompt_mel, ref.prompt_mel)
    assert torch.equal(back.embedding, ref.embedding)
    with pytest.raises(ValueError, match="prompt_feat"):
        Reference.from_ref_dict({"prompt_token": ref.prompt_tokens, "embedding": ref.embedding})


def test_the_seed_fixes_the_audio_and_the_output_length(model):
    ref = voice(model)
    tokens = torch.arange(5, 17)
    first, again, other = (
        model.generate([Row(tokens, ref, torch.Generator().manual_seed(s))])[0] for s in (1, 1, 2)
    )
    assert torch.equal(first.audio, again.audio)
    assert not torch.equal(first.audio, other.audio)
    frames = 2 * (len(ref.prompt_tokens) + len(tokens)) - ref.prompt_mel.shape[0]
    assert first.mel.shape == (80, frames) and first.audio.shape == (frames * 480,)
    assert torch.all(first.audio[:480] == 0)  # the reference's 20 ms of silence
