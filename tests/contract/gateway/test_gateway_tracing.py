"""One graph run is one trace: the client's trace id is in every service's spans."""

from __future__ import annotations

import re

import numpy as np
from support import (
    SENTENCES,
    gateway_config,
    pcm16,
    piper_say,
    start_server,
    stt_config,
    vad_config,
    wait_until,
)

from speechmesh.audio.v1 import audio_pb2
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.orchestrator.v1 import orchestrator_pb2 as pb
from speechmesh.orchestrator.v1 import orchestrator_pb2_grpc

TRACE_ID = "6cf92f3577b34da6a3ce929d0e0e4736"
GRAPH = {
    "steps": [
        {"id": "vad", "op": "OP_DETECT", "inputs": {"audio": "$audio"}},
        {"id": "stt", "op": "OP_TRANSCRIBE", "inputs": {"audio": "$audio"}},
    ],
    "outputs": ["vad.segments", "stt.transcript"],
}


def test_a_graph_run_is_one_trace_across_the_mesh(tmp_path):
    console = {"tracing": "console"}
    vad = start_server("vad", vad_config(telemetry=console), tmp_path)
    stt = start_server("stt", stt_config(telemetry=console), tmp_path)
    gateway = None
    try:
        config = gateway_config(
            {"vad": vad.address, "stt": stt.address},
            telemetry=console,
        )
        config["gateway"]["graphs"] = {"both": GRAPH}
        gateway = start_server("gateway", config, tmp_path)

        def both_listed():
            with gateway.channel() as channel:
                listed = models_pb2_grpc.ModelsStub(channel).ListModels(
                    models_pb2.ListModelsRequest()
                )
            return {m.id for m in listed.models} == {"silero-vad", "whisper-tiny.en"}

        wait_until(both_listed)
        speech, rate = piper_say(SENTENCES[0])
        clip = np.concatenate([np.zeros(rate // 2, np.float32), speech])
        fmt = audio_pb2.AudioFormat(
            encoding=audio_pb2.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=rate
        )
        request = pb.RunGraphRequest(
            graph_name="both",
            inputs={"audio": pb.Value(audio=audio_pb2.Audio(format=fmt, data=pcm16(clip)))},
        )
        with gateway.channel() as channel:
            responses = list(
                orchestrator_pb2_grpc.OrchestratorStub(channel).RunGraph(
                    request, metadata=[("traceparent", f"00-{TRACE_ID}-b7ad6b7169203331-01")]
                )
            )
        outputs = {r.output.name for r in responses if r.WhichOneof("response") == "output"}
        assert outputs == {"vad.segments", "stt.transcript"}
    finally:
        for server in (gateway, stt, vad):
            if server is not None:
                server.stop()
    expected = f'"trace_id": "0x{TRACE_ID}"'
    for server, method in (
        (gateway, "/speechmesh.orchestrator.v1.Orchestrator/RunGraph"),
        (vad, "/speechmesh.vad.v1.VoiceActivity/StreamingDetect"),
        (stt, "/speechmesh.stt.v1.SpeechToText/StreamingRecognize"),
    ):
        log = "".join(server.log)
        spans = re.findall(r'"name": "([^"]+)",\s*"context": \{\s*"trace_id": "0x(\w+)"', log)
        assert (method, TRACE_ID) in spans, (method, spans[:5])
        assert expected in log
