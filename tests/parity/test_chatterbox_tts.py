"""Chatterbox's whole path (standard, turbo, multilingual) against the reference's generate.

scripts/parity/chatterbox_tts.py ran chatterbox-tts 0.1.7's ChatterboxTTS,
ChatterboxTurboTTS and ChatterboxMultilingualTTS (from_local(...).generate) on the tiny
checkpoints of tests/chatterbox_checkpoint.py with a WAV reference clip after
torch.manual_seed(seed). Here the same checkpoints, rebuilt, are served by one real TTS
server and Synthesize is called with the clip as reference_audio, the seed, the
language and the case's ChatterboxOptions: the audio must be the reference's within
1e-5 of its peak, its length (so the number of speech tokens) exactly. The same models
loaded in this process show where a difference would come from: the voice made of the
clip (T3's prompt tokens exactly, the speaker embedding within 1e-5) and the speech
tokens S3Gen renders, exactly.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from chatterbox_checkpoint import voice_wav, write
from support import start_server, wait_for_serving

from parity.support import ReferenceRun, assert_close, assert_exact
from speechmesh.audio.v1 import audio_pb2
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

# Building and loading the tiny checkpoints (three models, one server) takes minutes on a
# busy machine: the first test, which sets them up, gets more than the default 300 s.
pytestmark = [pytest.mark.xdist_group("chatterbox-tts-parity"), pytest.mark.timeout(900)]
F32 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE)
WAV = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_WAV)
FAMILIES = {
    "standard": "chatterbox",
    "turbo": "chatterbox-turbo",
    "multilingual": "chatterbox-multilingual",
}
MTL_TOKENIZER = "grapheme_mtl_merged_expanded_v1.json"


def reference() -> ReferenceRun:
    return ReferenceRun("chatterbox_tts")


def cases() -> list:
    try:
        found = reference().cases
    except FileNotFoundError:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no chatterbox_tts fixtures"))]
    return [pytest.param(c, id=c["name"]) for c in found]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict:
    """The reference run's checkpoints, rebuilt: {variant: (folder, model options)}."""
    run = reference()
    recorded = ReferenceRun("chatterbox").document("weights")
    t3_weights = {variant: entry["sha256"] for variant, entry in recorded.items()}
    assert t3_weights == run.manifest["t3_weights"], "the T3 fixtures are not the run's"
    root = tmp_path_factory.mktemp("chatterbox-tts-parity")
    built = {}
    for variant in sorted({c["variant"] for c in run.cases}):
        family = FAMILIES[variant]
        options = write(family, root / family, seed=run.manifest["seed"])
        if variant == "multilingual":  # the run's tokenizer, trained on its texts
            tokenizer = run.file(f"multilingual/{MTL_TOKENIZER}").read_bytes()
            (root / family / MTL_TOKENIZER).write_bytes(tokenizer)
        built[variant] = (root / family, {**options, "max_new_tokens": run.cases[0]["max_tokens"]})
    return built


@pytest.fixture(scope="module")
def server(checkpoints, tmp_path_factory):
    models = [
        {
            "id": FAMILIES[variant],
            "family": FAMILIES[variant],
            "source": str(folder),
            "threads": 1,
            "options": options,
        }
        for variant, (folder, options) in checkpoints.items()
    ]
    config = {"services": {"tts": {"port": 0, "models": models}}, "drain_grace_s": 5}
    root = tmp_path_factory.mktemp("chatterbox-tts-server")
    running = start_server("tts", config, root, wait_serving=False)
    wait_for_serving(running, timeout_s=600)
    yield running
    running.stop()


def voice(case: dict) -> bytes:
    """The case's reference clip, rebuilt: the WAV file the reference read."""
    run = reference()
    wav = voice_wav(
        run.manifest["seed"] + case["voice_seed"], case["voice_seconds"], case["voice_rate"]
    )
    assert hashlib.sha256(wav).hexdigest() == case["voice_sha256"], "the clip is not the run's"
    return wav


def chatterbox_options(case: dict) -> tts_pb2.ChatterboxOptions:
    return tts_pb2.ChatterboxOptions(**case["options"])


def skip_without_language_step(case: dict) -> None:
    """Japanese needs pykakasi (the melotts extra); the service refuses it without."""
    from speechmesh.services.tts.chatterbox.tokenizers import MTLTokenizer

    reason = MTLTokenizer.unavailable(case["language"]) if "language" in case else None
    if reason:
        pytest.skip(reason)


@pytest.mark.parametrize("case", cases())
def test_synthesize_is_the_reference_generate(server, case) -> None:
    skip_without_language_step(case)
    run = reference()
    options = tts_pb2.SynthesisOptions(
        seed=case["seed"],
        language=case.get("language", ""),
        reference_audio=audio_pb2.Audio(format=WAV, data=voice(case)),
        chatterbox=chatterbox_options(case),
    )
    request = tts_pb2.SynthesizeRequest(
        model=FAMILIES[case["variant"]], text=case["text"], options=options, output_format=F32
    )
    with server.channel() as channel:
        reply = tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(request, timeout=600)
    assert reply.audio.format.sample_rate_hz == 24000
    audio = np.frombuffer(reply.audio.data, "<f4")
    error = assert_close(audio, run.array(case["audio"]), f"{case['name']} audio")
    print(f"{case['name']}: {len(audio)} samples, worst error {error:.3g} of the peak")


@pytest.fixture(scope="module")
def engines(checkpoints) -> dict:
    from speechmesh.runtime.config import ModelConfig
    from speechmesh.services.tts.chatterbox import engine

    classes = {
        "standard": engine.Chatterbox,
        "turbo": engine.ChatterboxTurbo,
        "multilingual": engine.ChatterboxMultilingual,
    }
    loaded = {}
    for variant, (folder, options) in checkpoints.items():
        family = FAMILIES[variant]
        model = classes[variant](
            ModelConfig(id=family, family=family, source=str(folder), options=options)
        )
        model.load()
        loaded[variant] = model
    return loaded


@pytest.mark.parametrize("case", cases())
def test_voice_and_speech_tokens_are_the_reference(engines, case) -> None:
    """In process, as the servicer calls the engine: the clip decoded from its WAV bytes,
    the options read from the ChatterboxOptions message (float32, as sent)."""
    skip_without_language_step(case)
    from speechmesh.runtime.audio import AudioSpec, decode
    from speechmesh.services.tts.engine import SynthesisParams

    run = reference()
    model = engines[case["variant"]]
    fields = {f.name: value for f, value in chatterbox_options(case).ListFields()}
    clip = decode(voice(case), AudioSpec.from_proto(WAV))
    settings = model.prepare(
        SynthesisParams(
            seed=case["seed"],
            language=case.get("language", ""),
            reference_audio=clip,
            family_options_case="chatterbox",
            family_options=fields,
        )
    )
    rendered: list[list[int]] = []
    generate = model.s3gen.generate

    def spy(rows, steps=None):  # type: ignore[no-untyped-def]
        rendered.extend(row.tokens.tolist() for row in rows)
        return generate(rows, steps)

    model.s3gen.generate = spy
    try:
        audio = model.synthesize(case["text"], settings)
    finally:
        del model.s3gen.generate
    made = model._voice(settings)  # the cached voice the synthesis used
    assert_exact(made.prompt_tokens, case["prompt_tokens"], f"{case['name']} prompt tokens")
    assert_close(made.speaker, run.array(case["speaker"]), f"{case['name']} speaker")
    assert rendered == [case["speech_tokens"]], f"{case['name']}: speech tokens differ"
    assert_close(audio, run.array(case["audio"]), f"{case['name']} audio in process")
