"""Declares the conversion service to the shared server: three gRPC services, one pool."""

from __future__ import annotations

import grpc

from speechmesh.conversion.v1 import conversion_pb2, conversion_pb2_grpc
from speechmesh.runtime.config import MeshConfig
from speechmesh.runtime.pool import ModelPool
from speechmesh.runtime.service import ServiceSpec
from speechmesh.services.conversion.conversion.servicer import VoiceConversionServicer
from speechmesh.services.conversion.encoder.servicer import SpeakerEncoderServicer
from speechmesh.services.conversion.restoration.servicer import AudioRestorationServicer


def _add_servicers(server: grpc.aio.Server, pool: ModelPool, config: MeshConfig) -> None:
    conversion_pb2_grpc.add_SpeakerEncoderServicer_to_server(
        SpeakerEncoderServicer(pool, config.limits), server
    )
    conversion_pb2_grpc.add_VoiceConversionServicer_to_server(
        VoiceConversionServicer(pool, config.limits), server
    )
    conversion_pb2_grpc.add_AudioRestorationServicer_to_server(
        AudioRestorationServicer(pool, config.limits), server
    )


SERVICE = ServiceSpec(
    name="conversion",
    grpc_services=tuple(
        conversion_pb2.DESCRIPTOR.services_by_name[name].full_name
        for name in ("SpeakerEncoder", "VoiceConversion", "AudioRestoration")
    ),
    add_servicers=_add_servicers,
)
