"""Declares the TTS service to the shared server: TextToSpeech and Vocoder."""

from __future__ import annotations

import grpc

from speechmesh.runtime.config import MeshConfig
from speechmesh.runtime.pool import ModelPool
from speechmesh.runtime.service import ServiceSpec
from speechmesh.services.tts.servicer import TextToSpeechServicer
from speechmesh.services.tts.vocoder import VocoderServicer
from speechmesh.tts.v1 import tts_pb2, tts_pb2_grpc


def _add_servicers(server: grpc.aio.Server, pool: ModelPool, config: MeshConfig) -> None:
    tts_pb2_grpc.add_TextToSpeechServicer_to_server(
        TextToSpeechServicer(pool, config.limits), server
    )
    tts_pb2_grpc.add_VocoderServicer_to_server(VocoderServicer(pool, config.limits), server)


SERVICE = ServiceSpec(
    name="tts",
    grpc_services=tuple(
        tts_pb2.DESCRIPTOR.services_by_name[name].full_name for name in ("TextToSpeech", "Vocoder")
    ),
    add_servicers=_add_servicers,
)
