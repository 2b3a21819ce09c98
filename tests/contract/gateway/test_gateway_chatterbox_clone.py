"""The embedded config's chatterbox-clone graph through a real gateway, on a tiny
Chatterbox checkpoint (tests/chatterbox_checkpoint.py): its audio is the direct
StreamingSynthesize's with the same reference clip and seed."""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from chatterbox_checkpoint import clip, write
from support import gateway_config, start_server, wait_for_serving, wait_until

from speechmesh.audio.v1 import audio_pb2
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.orchestrator.v1 import orchestrator_pb2 as pb
from speechmesh.orchestrator.v1 import orchestrator_pb2_grpc
from speechmesh.runtime.config import load_config
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc

# Building and loading the tiny checkpoints (several models, one server) takes minutes on
# a busy machine: the first test, which sets them up, gets more than the default 300 s.
pytestmark = [pytest.mark.xdist_group("chatterbox-clone"), pytest.mark.timeout(900)]
F32 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE)
TEXT = "Hello there. How are you?"
SEED = 8


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cb-clone")
    options = write("chatterbox", root / "chatterbox")
    model = {
        "id": "chatterbox",
        "family": "chatterbox",
        "source": str(root / "chatterbox"),
        "threads": 1,
        "options": {**options, "max_new_tokens": 10},
    }
    tts = start_server(
        "tts",
        {"services": {"tts": {"port": 0, "models": [model]}}, "drain_grace_s": 5},
        tmp_path_factory.mktemp("cb-clone-tts"),
        wait_serving=False,
    )
    wait_for_serving(tts, timeout_s=600)
    # The embedded graph, with a seed so the run can be repeated by a direct call.
    graph = copy.deepcopy(load_config().gateway.graphs["chatterbox-clone"])
    graph["steps"][0]["synthesis"] = {"seed": SEED}
    config = gateway_config({"tts": tts.address})
    config["gateway"]["graphs"] = {"chatterbox-clone": graph}
    gateway = start_server("gateway", config, tmp_path_factory.mktemp("cb-clone-gateway"))

    def routes() -> bool:
        with gateway.channel() as channel:
            listed = models_pb2_grpc.ModelsStub(channel).ListModels(
                models_pb2.ListModelsRequest(), timeout=5
            )
        return "chatterbox" in {m.id for m in listed.models}

    wait_until(routes, timeout_s=120)
    yield gateway, tts
    gateway.stop()
    tts.stop()


def reference_clip() -> audio_pb2.Audio:
    return audio_pb2.Audio(
        format=audio_pb2.AudioFormat(encoding=F32.encoding, sample_rate_hz=24000),
        data=clip(33, 6.0).astype("<f4").tobytes(),
    )


def test_chatterbox_clone_speaks_in_the_reference_voice_as_a_direct_call(mesh):
    gateway, tts = mesh
    request = pb.RunGraphRequest(
        graph_name="chatterbox-clone",
        inputs={"text": pb.Value(text=TEXT), "reference": pb.Value(audio=reference_clip())},
        output_format=F32,
    )
    with gateway.channel() as channel:
        responses = list(
            orchestrator_pb2_grpc.OrchestratorStub(channel).RunGraph(request, timeout=600)
        )
    assert responses[-1].WhichOneof("response") == "summary", responses[-1]
    outputs = [r.output for r in responses if r.WhichOneof("response") == "output"]
    audio = np.frombuffer(b"".join(o.audio.data for o in outputs if o.HasField("audio")), "<f4")
    direct = tts_pb2.StreamingSynthesizeRequest(
        model="chatterbox",
        text=TEXT,
        options=tts_pb2.SynthesisOptions(seed=SEED, reference_audio=reference_clip()),
        output_format=F32,
    )
    with tts.channel() as channel:
        chunks = [
            r.chunk
            for r in tts_pb2_grpc.TextToSpeechStub(channel).StreamingSynthesize(direct, timeout=600)
            if r.HasField("chunk")
        ]
    expected = np.frombuffer(b"".join(c.audio.data for c in chunks), "<f4")
    assert len(audio) > 0 and np.array_equal(audio, expected)
