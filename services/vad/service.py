"""Declares the VAD service to the shared server."""

from __future__ import annotations

import grpc

from speechmesh.runtime.config import MeshConfig
from speechmesh.runtime.pool import ModelPool
from speechmesh.runtime.service import ServiceSpec
from speechmesh.services.vad.servicer import VoiceActivityServicer
from speechmesh.vad.v1 import vad_pb2, vad_pb2_grpc


def _add_servicers(server: grpc.aio.Server, pool: ModelPool, config: MeshConfig) -> None:
    vad_pb2_grpc.add_VoiceActivityServicer_to_server(
        VoiceActivityServicer(pool, config.limits), server
    )


SERVICE = ServiceSpec(
    name="vad",
    grpc_services=(vad_pb2.DESCRIPTOR.services_by_name["VoiceActivity"].full_name,),
    add_servicers=_add_servicers,
)
