"""Chatterbox's whole path over gRPC against the reference's ChatterboxTTS.generate.

scripts/parity/chatterbox_tts.py ran chatterbox-tts 0.1.7's from_local(...).generate
on the tiny standard checkpoint of tests/chatterbox_checkpoint.py, a WAV reference
clip and torch.manual_seed(seed); here the same checkpoint, rebuilt, is served by a
real TTS server and Synthesize is called with the clip as reference_audio, the seed
and the case's ChatterboxOptions. The audio must be the reference's within 1e-5 of
its peak (its length, so T3's tokens, exactly).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from chatterbox_checkpoint import write
from support import start_server, wait_for_serving

from parity.support import ReferenceRun, assert_close
from speechmesh.audio.v1 import audio_pb2
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

# Building and loading the tiny checkpoints (several models, one server) takes minutes on
# a busy machine: the first test, which sets them up, gets more than the default 300 s.
pytestmark = [pytest.mark.xdist_group("chatterbox-tts-parity"), pytest.mark.timeout(900)]
F32 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE)


def reference() -> ReferenceRun:
    return ReferenceRun("chatterbox_tts")


def cases() -> list:
    try:
        found = reference().cases
    except FileNotFoundError:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no chatterbox_tts fixtures"))]
    return [pytest.param(c, id=c["name"]) for c in found]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    run = reference()
    root = tmp_path_factory.mktemp("chatterbox-tts-parity")
    options = write("chatterbox", root / "chatterbox", seed=run.manifest["seed"])
    limit = run.cases[0]["max_tokens"]
    model = {
        "id": "chatterbox",
        "family": "chatterbox",
        "source": str(root / "chatterbox"),
        "threads": 1,
        "options": {**options, "max_new_tokens": limit},
    }
    config = {"services": {"tts": {"port": 0, "models": [model]}}, "drain_grace_s": 5}
    running = start_server("tts", config, root, wait_serving=False)
    wait_for_serving(running, timeout_s=600)
    yield running
    running.stop()


@pytest.mark.parametrize("case", cases())
def test_synthesize_is_the_reference_generate(server, case) -> None:
    run = reference()
    options = tts_pb2.SynthesisOptions(
        seed=case["seed"],
        reference_audio=audio_pb2.Audio(
            format=audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_WAV),
            data=run.file(case["voice"]).read_bytes(),
        ),
        chatterbox=tts_pb2.ChatterboxOptions(
            exaggeration=case["exaggeration"], cfg_weight=case["cfg_weight"]
        ),
    )
    request = tts_pb2.SynthesizeRequest(
        model="chatterbox", text=case["text"], options=options, output_format=F32
    )
    with server.channel() as channel:
        reply = tts_pb2_grpc.TextToSpeechStub(channel).Synthesize(request, timeout=600)
    audio = np.frombuffer(reply.audio.data, "<f4")
    assert_close(audio, run.array(case["audio"]), f"{case['name']} audio")
