"""Chatterbox's text side against the reference package (chatterbox-tts 0.1.7).

scripts/parity/chatterbox_t3.py ran the reference's tokenizers, voice encoder and T3
(standard, multilingual, turbo) on tiny random weights; here the same weights, rebuilt
from their seeds and saved under the official file names, load through our loaders.
Token ids and generated speech tokens must be the reference's exactly; the voice
encoder's embeddings and T3's first-pass logits within 1e-5 of their peak. Two
requests with different voices (and prompt lengths) generated in one batch must give
each the tokens it gets alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from parity.chatterbox_weights import CHECKPOINTS, rebuild, tiny_config  # noqa: E402
from parity.support import ReferenceRun, assert_close, assert_exact  # noqa: E402
from speechmesh.services.tts.chatterbox import tokenizers  # noqa: E402
from speechmesh.services.tts.chatterbox.t3.conditioning import T3Conditionals  # noqa: E402
from speechmesh.services.tts.chatterbox.t3.config import STOP_SPEECH  # noqa: E402
from speechmesh.services.tts.chatterbox.t3.generation import (  # noqa: E402
    Sampling,
    T3Job,
    first_logits,
    generate,
)
from speechmesh.services.tts.chatterbox.t3.model import T3  # noqa: E402
from speechmesh.services.tts.chatterbox.voice_encoder import VoiceEncoder  # noqa: E402

# Building and loading the tiny checkpoints (several models, one server) takes minutes on
# a busy machine: the first test, which sets them up, gets more than the default 300 s.
pytestmark = [pytest.mark.xdist_group("chatterbox-parity"), pytest.mark.timeout(900)]


def reference() -> ReferenceRun:
    return ReferenceRun("chatterbox")


def cases(kind: str) -> list:
    try:
        found = [c for c in reference().cases if c["kind"] == kind]
    except FileNotFoundError:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no chatterbox fixtures"))]
    return [pytest.param(c, id=c.get("name") or f"{c['variant']}-{c['text'][:16]}") for c in found]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("chatterbox-t3")
    recorded = reference().document("weights")
    rebuild(recorded["ve"], root / "ve.safetensors")
    for variant, name in CHECKPOINTS.items():
        rebuild(recorded[variant], root / name)
    return root


@pytest.fixture(scope="module")
def models(checkpoints) -> dict[str, T3]:
    loaded = {}
    for variant, name in CHECKPOINTS.items():
        model = T3(tiny_config(variant)).eval()
        model.load(checkpoints / name)
        loaded[variant] = model
    return loaded


@pytest.mark.parametrize("case", cases("tokens"))
def test_tokenizer_ids(case) -> None:
    run = reference()
    variant = case["variant"]
    normalized = tokenizers.normalize_punctuation(case["text"], variant)
    assert normalized == case["normalized"]
    if variant == "standard":
        ids = tokenizers.EnTokenizer(run.file("tokenizer.json")).encode(normalized)
    elif variant == "multilingual":
        mtl = tokenizers.MTLTokenizer(run.file("grapheme_mtl_merged_expanded_v1.json"))
        ids = mtl.encode(normalized, case["language"])
    else:
        ids = tokenizers.TurboTokenizer(run.file("turbo_tokenizer"), 512).encode(normalized)
    assert_exact(ids, case["ids"], f"{variant} ids of {case['text']!r}")


@pytest.mark.parametrize("case", cases("voice_encoder"))
def test_voice_encoder_embedding(case, checkpoints) -> None:
    from speechmesh.runtime import weights

    run = reference()
    encoder = VoiceEncoder().eval()
    weights.load_strict(encoder, weights.load_state_dict(checkpoints / "ve.safetensors"))
    assert_close(encoder.embed(run.array(case["clip"])), run.array(case["embedding"]), "embedding")


def job(case, greedy: bool | None = None) -> T3Job:
    run = reference()
    voice = case["voice"]
    settings = case["settings"]
    sampling = Sampling(**{k: v for k, v in settings.items()})
    generator = None
    if case["mode"] == "sampled" and not greedy:
        generator = torch.Generator().manual_seed(case["seed"])
    extra = 1 if case["variant"] == "turbo" else 0  # turbo: the first token, then max more
    return T3Job(
        cond=T3Conditionals(
            torch.from_numpy(run.array(voice["speaker"])),
            torch.from_numpy(run.array(voice["prompt"])),
            voice["exaggeration"],
        ),
        text=case["text"],
        sampling=sampling,
        generator=generator,
        max_new_tokens=case["max_tokens"] + extra,
    )


def expected_tokens(case) -> list[int]:
    """The reference's tokens as generate returns them (Turbo's drops a final stop)."""
    return list(case["tokens"])


def served_tokens(case, tokens: list[int]) -> list[int]:
    if case["variant"] == "turbo" and tokens and tokens[-1] == STOP_SPEECH:
        return tokens[:-1]
    return tokens


@pytest.mark.parametrize("case", cases("t3"))
def test_t3_first_logits(case, models) -> None:
    model = models[case["variant"]]
    logits = first_logits(model, job(case))
    assert_close(logits, reference().array(case["logits"]), f"{case['name']} logits")


@pytest.mark.parametrize("case", cases("t3"))
def test_t3_tokens(case, models) -> None:
    model = models[case["variant"]]
    (tokens,) = generate(model, [job(case)])
    assert_exact(served_tokens(case, tokens), expected_tokens(case), f"{case['name']} tokens")


def batch_pairs() -> list:
    try:
        found = [c for c in reference().cases if c["kind"] == "t3"]
    except FileNotFoundError:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no chatterbox fixtures"))]
    pairs = []
    for variant in ("standard", "multilingual", "turbo"):
        for mode in ("greedy", "sampled"):
            pair = [c for c in found if c["variant"] == variant and c["mode"] == mode]
            pairs.append(pytest.param(pair, id=f"{variant}-{mode}"))
    return pairs


@pytest.mark.parametrize("pair", batch_pairs())
def test_t3_batch_of_two_voices_matches_each_alone(pair, models) -> None:
    model = models[pair[0]["variant"]]
    assert pair[0]["voice"]["prompt"] != pair[1]["voice"]["prompt"]
    together = generate(model, [job(case) for case in pair])
    for case, tokens in zip(pair, together, strict=True):
        assert_exact(
            served_tokens(case, tokens), expected_tokens(case), f"{case['name']} in a batch"
        )
