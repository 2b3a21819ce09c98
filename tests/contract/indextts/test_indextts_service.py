"""IndexTTS service contract: a real server on a tiny random checkpoint, over real gRPC."""

from __future__ import annotations

import io

import grpc
import numpy as np
import pytest
import soundfile
from indextts_checkpoint import write_checkpoint
from support import RunningServer, start_server

from speechmesh.audio.v1 import audio_pb2
from speechmesh.indextts.v1 import indextts_pb2, indextts_pb2_grpc
from speechmesh.models.v1 import models_pb2, models_pb2_grpc

pytestmark = pytest.mark.xdist_group("indextts-server")
RATE = 22050


def _config(source: str) -> dict:
    model = {"id": "indextts-tiny", "family": "indextts2", "source": source, "threads": 1}
    return {"services": {"indextts": {"port": 0, "models": [model]}}, "drain_grace_s": 5}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> RunningServer:
    folder = tmp_path_factory.mktemp("indextts-ckpt") / "IndexTTS-2"
    write_checkpoint(folder, runs_to_limit=True)
    running = start_server(
        "indextts", _config(str(folder)), tmp_path_factory.mktemp("indextts-srv")
    )
    yield running
    running.stop()


def _prompt() -> audio_pb2.Audio:
    t = np.arange(16000) / 16000
    voice = (0.3 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    fmt = audio_pb2.AudioFormat(
        encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE, sample_rate_hz=16000, channels=1
    )
    return audio_pb2.Audio(format=fmt, data=voice.tobytes())


def _options(seed: int = 1) -> indextts_pb2.SynthesisOptions:
    return indextts_pb2.SynthesisOptions(
        sampling=indextts_pb2.SamplingOptions(num_beams=1, max_mel_tokens=8),
        diffusion_steps=2,
        seed=seed,
        interval_silence_ms=100,
    )


def test_synthesize_returns_a_wav_and_repeats_under_a_seed(server: RunningServer):
    request = indextts_pb2.SynthesizeRequest(
        request_id="r1",
        text="Hello world. How are you today?",
        speaker_prompt=_prompt(),
        options=_options(),
    )
    with server.channel() as channel:
        stub = indextts_pb2_grpc.IndexTTSStub(channel)
        first = stub.Synthesize(request, timeout=120)
        second = stub.Synthesize(request, timeout=120)
    assert first.request_id == "r1" and first.model == "indextts-tiny"
    samples, rate = soundfile.read(io.BytesIO(first.audio.data), dtype="float32")
    assert rate == RATE and len(samples) == first.summary.total_samples > 0
    assert len(samples) % 256 == 0 or first.summary.num_spans > 1
    assert first.audio.data == second.audio.data


def test_streaming_sends_chunks_then_a_summary(server: RunningServer):
    request = indextts_pb2.StreamingSynthesizeRequest(
        text="Hello world. How are you today?",
        speaker_prompt=_prompt(),
        options=_options(),
        first_segment_max_text_tokens=4,
        chunk_mel_tokens=3,
    )
    with server.channel() as channel:
        responses = list(
            indextts_pb2_grpc.IndexTTSStub(channel).StreamingSynthesize(request, timeout=120)
        )
    *chunks, last = responses
    assert last.WhichOneof("response") == "summary" and chunks
    offset = 0
    for response in chunks:
        chunk = response.chunk
        assert chunk.audio.sample_offset == offset
        assert len(chunk.audio.data) == 2 * chunk.audio.num_samples  # PCM S16LE
        offset += chunk.audio.num_samples
    assert last.summary.total_samples == offset and last.summary.num_spans >= 2
    assert sum(r.chunk.end_of_span for r in chunks) == last.summary.num_spans


def test_bad_requests_are_named(server: RunningServer):
    with server.channel() as channel:
        stub = indextts_pb2_grpc.IndexTTSStub(channel)
        with pytest.raises(grpc.RpcError) as error:
            stub.Synthesize(indextts_pb2.SynthesizeRequest(text="hi"), timeout=30)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "speaker_prompt" in error.value.details()
        bad = _options()
        bad.sampling.temperature = 0
        with pytest.raises(grpc.RpcError) as error:
            stub.Synthesize(
                indextts_pb2.SynthesizeRequest(text="hi", speaker_prompt=_prompt(), options=bad),
                timeout=30,
            )
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "temperature" in error.value.details()
        with pytest.raises(grpc.RpcError) as error:
            stub.Synthesize(
                indextts_pb2.SynthesizeRequest(text="hi", model="nope", speaker_prompt=_prompt()),
                timeout=30,
            )
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        listed = models_pb2_grpc.ModelsStub(channel).ListModels(
            models_pb2.ListModelsRequest(), timeout=10
        )
    (model,) = listed.models
    assert model.state == models_pb2.MODEL_STATE_READY and model.native_sample_rate_hz == RATE


def test_a_model_without_weights_is_failed_with_the_reason(tmp_path):
    running = start_server(
        "indextts", _config(str(tmp_path / "absent")), tmp_path, wait_serving=False
    )
    try:
        with running.channel() as channel:
            stub = models_pb2_grpc.ModelsStub(channel)
            for _ in range(200):
                (model,) = stub.ListModels(models_pb2.ListModelsRequest(), timeout=10).models
                if model.state != models_pb2.MODEL_STATE_LOADING:
                    break
            assert model.state == models_pb2.MODEL_STATE_FAILED
            assert "absent" in model.state_message
            with pytest.raises(grpc.RpcError) as error:
                indextts_pb2_grpc.IndexTTSStub(channel).Synthesize(
                    indextts_pb2.SynthesizeRequest(text="hi", speaker_prompt=_prompt()), timeout=30
                )
            assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        running.stop()


def test_a_graph_through_the_gateway_speaks_with_the_prompt(server: RunningServer, tmp_path):
    from google.protobuf import json_format
    from support import gateway_config, wait_until

    from speechmesh.orchestrator.v1 import orchestrator_pb2 as pb
    from speechmesh.orchestrator.v1 import orchestrator_pb2_grpc

    gateway = start_server("gateway", gateway_config({"indextts": server.address}), tmp_path)
    try:
        wait_until(lambda: gateway.health() == 1)  # SERVING
        graph = json_format.ParseDict(
            {
                "steps": [
                    {
                        "id": "speak",
                        "op": "OP_SYNTHESIZE",
                        "model": "indextts-tiny",
                        "inputs": {"text": "$text", "reference": "$voice"},
                        "indexTts": json_format.MessageToDict(_options(seed=3)),
                    }
                ],
                "outputs": ["speak.audio"],
            },
            pb.Graph(),
        )
        f32 = audio_pb2.AudioFormat(encoding=audio_pb2.AUDIO_ENCODING_PCM_F32LE)
        request = pb.RunGraphRequest(
            inline_graph=graph,
            inputs={"text": pb.Value(text="Hello world."), "voice": pb.Value(audio=_prompt())},
            output_format=f32,
        )
        with gateway.channel() as channel:
            responses = list(orchestrator_pb2_grpc.OrchestratorStub(channel).RunGraph(request))
        through = b"".join(
            r.output.audio.data for r in responses if r.WhichOneof("response") == "output"
        )
        with server.channel() as channel:
            direct = indextts_pb2_grpc.IndexTTSStub(channel).StreamingSynthesize(
                indextts_pb2.StreamingSynthesizeRequest(
                    text="Hello world.",
                    speaker_prompt=_prompt(),
                    options=_options(seed=3),
                    output_format=f32,
                )
            )
            expected = b"".join(r.chunk.audio.data for r in direct if r.HasField("chunk"))
        assert through and through == expected
        assert responses[-1].summary.outputs[0].total_samples == len(expected) // 4
    finally:
        gateway.stop()
