"""S3Gen rendering a sentence in chunks as its tokens come (SentenceStream), on the tiny
random S3Gen of the parity run."""

from __future__ import annotations

import pytest
import torch
from chatterbox_checkpoint import clip
from parity.chatterbox_s3gen_weights import save_s3gen

from speechmesh.nn.chatterbox.s3gen import Row, SourceNoise, load_s3gen
from speechmesh.nn.chatterbox.s3gen.streaming import PrefixNoise, SentenceStream

PER_FRAME = 480


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path, _ = save_s3gen(tmp_path_factory.mktemp("s3gen"), seed=3)
    return load_s3gen(path)


@pytest.fixture(scope="module")
def voice(model):
    return model.embed_ref(clip(4, 2.0))


def tokens(count: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 6561, (count,), generator=torch.Generator().manual_seed(seed))


def streamed(model, voice, toks, every, seed=1, **sizes):  # type: ignore[no-untyped-def]
    stream = SentenceStream(model, voice, torch.Generator().manual_seed(seed), **sizes)
    parts = [stream.push(toks[:n], final=False) for n in range(every, len(toks), every)]
    parts.append(stream.push(toks, final=True))
    return stream, parts


def frames(voice, count: int) -> int:  # type: ignore[no-untyped-def]
    return 2 * (len(voice.prompt_tokens) + count) - voice.prompt_mel.shape[0]


def test_prefix_noise_grows_without_changing_what_was_taken():
    noise = PrefixNoise(3, 5, torch.Generator().manual_seed(2), torch.device("cpu"))
    short = noise.take(7)
    assert torch.equal(noise.take(23)[:, :7], short)
    again = PrefixNoise(3, 5, torch.Generator().manual_seed(2), torch.device("cpu"))
    assert torch.equal(again.take(23), noise.take(23))


def test_one_final_push_is_the_whole_sentence_render(model, voice):
    toks = tokens(30)
    stream = SentenceStream(model, voice, torch.Generator().manual_seed(1))
    audio = stream.push(toks, final=True)
    width = frames(voice, 30)
    draws = SourceNoise(stream.phase, stream.source_noise.take(width * PER_FRAME))
    row = Row(toks, voice, noise=stream.mel_noise.take(2 * (len(voice.prompt_tokens) + 30)))
    whole = model.generate([Row(row.tokens, voice, noise=row.noise, source=draws)])[0].audio
    assert audio.shape == whole.shape == (width * PER_FRAME,)
    assert torch.abs(audio - whole).max() <= 1e-5 * torch.abs(whole).max()


def test_chunks_add_up_to_the_sentence_and_come_before_its_end(model, voice):
    toks = tokens(60)
    _, parts = streamed(model, voice, toks, 8)
    lengths = [len(p) for p in parts]
    assert sum(lengths) == frames(voice, 60) * PER_FRAME
    assert all(n % PER_FRAME == 0 for n in lengths)
    assert sum(1 for n in lengths[:-1] if n) >= 3


def test_the_joins_are_the_vocoder_of_the_kept_mel(model, voice):
    toks = tokens(60, seed=5)
    stream, parts = streamed(model, voice, toks, 8)
    audio = torch.cat(parts)
    mel = stream.mel
    draws = SourceNoise(stream.phase, stream.source_noise.take(mel.shape[1] * PER_FRAME))
    with torch.inference_mode():
        whole, _ = model.mel2wav(mel, draws)
    fade = model.trim_fade
    whole = torch.cat([whole[: len(fade)] * fade, whole[len(fade) :]])
    assert audio.shape == whole.shape
    assert torch.abs(audio - whole).max() <= 1e-5 * torch.abs(whole).max()


def test_a_seed_repeats_the_stream_and_another_changes_it(model, voice):
    toks = tokens(40, seed=7)
    first = torch.cat(streamed(model, voice, toks, 10, seed=3)[1])
    assert torch.equal(first, torch.cat(streamed(model, voice, toks, 10, seed=3)[1]))
    assert not torch.equal(first, torch.cat(streamed(model, voice, toks, 10, seed=4)[1]))


def test_a_push_must_extend_the_last_and_hold_cover_the_context(model, voice):
    stream = SentenceStream(model, voice, None)
    stream.push(tokens(10), final=False)
    with pytest.raises(ValueError, match="extends the last"):
        stream.push(tokens(5), final=False)
    with pytest.raises(ValueError, match="at least the context"):
        SentenceStream(model, voice, None, context=10, hold=5)
