"""Declares the IndexTTS-2 service to the shared server."""

from __future__ import annotations

import grpc

from speechmesh.indextts.v1 import indextts_pb2, indextts_pb2_grpc
from speechmesh.runtime.config import MeshConfig
from speechmesh.runtime.pool import ModelPool
from speechmesh.runtime.service import ServiceSpec
from speechmesh.services.indextts.servicer import IndexTTSServicer


def _add_servicers(server: grpc.aio.Server, pool: ModelPool, config: MeshConfig) -> None:
    indextts_pb2_grpc.add_IndexTTSServicer_to_server(IndexTTSServicer(pool, config.limits), server)


SERVICE = ServiceSpec(
    name="indextts",
    grpc_services=(indextts_pb2.DESCRIPTOR.services_by_name["IndexTTS"].full_name,),
    add_servicers=_add_servicers,
)
