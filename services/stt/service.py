"""Declares the STT service to the shared server.

An STT server also hosts a Silero VAD model, which finds utterance endpoints in
streams and speech in long audio; it serves VoiceActivity for that model too, so the
model the server holds anyway is reachable like any other.
"""

from __future__ import annotations

import grpc

from speechmesh.runtime.config import MeshConfig
from speechmesh.runtime.pool import ModelPool
from speechmesh.runtime.service import ServiceSpec
from speechmesh.services.stt.servicer import SpeechToTextServicer
from speechmesh.services.vad.service import SERVICE as VAD_SERVICE
from speechmesh.stt.v1 import stt_pb2, stt_pb2_grpc


def _add_servicers(server: grpc.aio.Server, pool: ModelPool, config: MeshConfig) -> None:
    stt_pb2_grpc.add_SpeechToTextServicer_to_server(
        SpeechToTextServicer(pool, config.limits), server
    )
    VAD_SERVICE.add_servicers(server, pool, config)


SERVICE = ServiceSpec(
    name="stt",
    grpc_services=(
        stt_pb2.DESCRIPTOR.services_by_name["SpeechToText"].full_name,
        *VAD_SERVICE.grpc_services,
    ),
    add_servicers=_add_servicers,
)
