"""Which replica serves which model: discovery, health and round-robin choice.

A backend is a config target: `host:port` (one replica) or `dns:///name:port`, whose
every resolved address is a replica (a headless Service in Kubernetes). Every refresh
interval each backend is resolved again, and each replica is asked for its health and
its ListModels. A call picks, round-robin, a healthy replica on which the requested
model is READY; a replica whose call fails with UNAVAILABLE is marked down at once,
so new calls skip it without waiting for the next refresh.

A model belongs to the gRPC service of its main task (ModelInfo.service), but a server
may take it by id on another of its services too: SpeakerEncoder/Embed takes any model
of its server that embeds speakers (TASK_SPEAKER_EMBEDDING among its tasks, e.g. an
OpenVoice converter's tone-colour encoder). Such a model is routed there by id; it is
never that service's default.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from speechmesh.gateway.access import BackendAccess
from speechmesh.models.v1 import models_pb2, models_pb2_grpc
from speechmesh.runtime.config import BackendConfig
from speechmesh.runtime.errors import FailedPrecondition, NotFound, Unavailable

log = logging.getLogger(__name__)
SPEAKER_ENCODER = "speechmesh.conversion.v1.SpeakerEncoder"
BY_TASK = {SPEAKER_ENCODER: models_pb2.TASK_SPEAKER_EMBEDDING}
"""gRPC service → the task of other services' models that it also takes by id."""


def offers(info: models_pb2.ModelInfo, service: str) -> bool:
    """Whether a call of `service` naming this model can go to the model's server."""
    return info.service == service or (service in BY_TASK and BY_TASK[service] in info.tasks)


PROBE_TIMEOUT_S = 2.0
READY = models_pb2.MODEL_STATE_READY
FAILED = models_pb2.MODEL_STATE_FAILED


@dataclass
class Replica:
    """One server of a backend."""

    backend: str
    address: str
    channel: grpc.aio.Channel
    healthy: bool = False
    reason: str = "not probed yet"
    models: dict[str, models_pb2.ModelInfo] = field(default_factory=dict)
    _callables: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def callable(self, kind: str, path: str) -> Any:
        """The channel's multi-callable for a method (made once: they are not free). Each
        is registered with the channel, as generated stubs do, so that gRPC core prepares
        the method's path once rather than on every call."""
        key = (kind, path)
        if key not in self._callables:
            self._callables[key] = getattr(self.channel, kind)(path, _registered_method=True)
        return self._callables[key]

    def serves(self, service: str, model_id: str) -> bool:
        if model_id:
            info = self.models.get(model_id)
            return info is not None and offers(info, service) and info.state == READY
        return any(m.service == service and m.state == READY for m in self.models.values())

    def mark_down(self, reason: str) -> None:
        if self.healthy:
            log.warning("replica %s (%s) marked down: %s", self.address, self.backend, reason)
        self.healthy, self.reason = False, reason


class Backend:
    """The replicas behind one configured target."""

    def __init__(self, config: BackendConfig, access: BackendAccess) -> None:
        self.name = config.name
        self.target = config.target
        self.access = access
        self.replicas: dict[str, Replica] = {}

    async def addresses(self) -> list[str]:
        if not self.target.startswith("dns:"):
            return [self.target]
        host_port = self.target.split("///", 1)[-1].split("/", 1)[-1]
        host, _, port = host_port.rpartition(":")
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, int(port), type=socket.SOCK_STREAM
            )
        except (OSError, ValueError) as error:
            log.warning("backend %s: cannot resolve %s: %s", self.name, self.target, error)
            return list(self.replicas)  # keep what we had rather than drop everything
        found = {
            f"[{info[4][0]}]:{port}" if info[0] == socket.AF_INET6 else f"{info[4][0]}:{port}"
            for info in infos
        }
        return sorted(found)

    async def refresh(self) -> None:
        addresses = await self.addresses()
        for gone in set(self.replicas) - set(addresses):
            replica = self.replicas.pop(gone)
            await replica.channel.close(grace=None)
        for address in addresses:
            if address not in self.replicas:
                channel = self.access.channel(address)
                self.replicas[address] = Replica(self.name, address, channel)
        metadata = self.access.probe_metadata()
        await asyncio.gather(*(probe(r, metadata) for r in self.replicas.values()))


async def probe(replica: Replica, metadata: list[tuple[str, str]]) -> None:
    """Health and models of one replica; any failure marks it down with the reason."""
    try:
        health = await health_pb2_grpc.HealthStub(replica.channel).Check(
            health_pb2.HealthCheckRequest(), timeout=PROBE_TIMEOUT_S
        )
        listed = await models_pb2_grpc.ModelsStub(replica.channel).ListModels(
            models_pb2.ListModelsRequest(), timeout=PROBE_TIMEOUT_S, metadata=metadata
        )
    except grpc.aio.AioRpcError as error:
        replica.mark_down(f"{error.code().name}: {error.details()}")
        return
    replica.models = {m.id: m for m in listed.models}
    # A replica still loading models is reachable: it serves what is READY.
    replica.healthy = True
    replica.reason = "" if health.status == health_pb2.HealthCheckResponse.SERVING else "loading"


class Router:
    """All backends, refreshed in the background; picks a replica per call."""

    def __init__(
        self,
        backends: Iterable[BackendConfig],
        refresh_interval_s: float,
        access: BackendAccess | None = None,
    ) -> None:
        self.access = access or BackendAccess()
        self.backends = [Backend(config, self.access) for config in backends]
        self._interval = refresh_interval_s
        self._turns: dict[tuple[str, str], itertools.count[int]] = {}
        self._task: asyncio.Task[None] | None = None
        self.refreshed = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def refresh(self) -> None:
        await asyncio.gather(*(backend.refresh() for backend in self.backends))
        self.refreshed.set()

    async def _refresh_forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # a refresh must never stop the loop
                log.exception("backend refresh failed")
            await asyncio.sleep(self._interval)

    def replicas(self) -> list[Replica]:
        return [r for backend in self.backends for r in backend.replicas.values()]

    def pick(self, service: str, model_id: str, exclude: set[str] = frozenset()) -> Replica:  # type: ignore[assignment]
        """A healthy replica serving `model_id` of `service`, round-robin; else a clear error."""
        candidates = [
            r
            for r in self.replicas()
            if r.healthy and r.address not in exclude and r.serves(service, model_id)
        ]
        if candidates:
            turn = next(self._turns.setdefault((service, model_id), itertools.count()))
            return candidates[turn % len(candidates)]
        raise self._why_none(service, model_id)

    def _why_none(self, service: str, model_id: str) -> Exception:
        known = {
            m.id: m
            for r in self.replicas()
            for m in r.models.values()
            if (offers(m, service) if model_id else m.service == service)
        }
        if model_id and model_id not in known:
            available = ", ".join(sorted(known)) or "none"
            down = [f"{r.address} ({r.reason})" for r in self.replicas() if not r.healthy]
            hint = f"; unreachable replicas: {', '.join(down)}" if down else ""
            return NotFound(
                f"model {model_id!r} is not served by the mesh for {service} "
                f"(available: {available}){hint}"
            )
        if not model_id and not known and all(r.healthy for r in self.replicas()):
            # Every backend answered and none hosts a model of this service: retrying
            # cannot help, so this is NOT_FOUND, not UNAVAILABLE.
            deployed = ", ".join(sorted(self.services())) or "none"
            return NotFound(
                f"no model for {service} is deployed in the mesh (services with a ready "
                f"model: {deployed})"
            )
        what = f"model {model_id!r}" if model_id else f"a model for {service}"
        failed = self._failed_everywhere(service, model_id)
        if failed:
            # Every replica answered and the model failed to load on each: retrying cannot
            # help, and the backends themselves would say FAILED_PRECONDITION.
            return FailedPrecondition(f"{what} failed to load on every replica: {failed}")
        states = sorted(
            {
                f"{r.address}: {r.reason or models_pb2.ModelState.Name(r.models[model_id].state)}"
                for r in self.replicas()
                if model_id in r.models or (not model_id and not r.healthy)
            }
        )
        detail = "; ".join(states) or "no backend serves it"
        return Unavailable(f"no replica can serve {what} right now ({detail}); retry shortly")

    def _failed_everywhere(self, service: str, model_id: str) -> str:
        """The load errors when every replica is up and lists the model (or, with no
        model named, every model of the service) as FAILED; "" otherwise."""
        if not all(r.healthy for r in self.replicas()):
            return ""
        listed = [
            m
            for r in self.replicas()
            for m in r.models.values()
            if (m.id == model_id and offers(m, service)) or (not model_id and m.service == service)
        ]
        if not listed or any(m.state != FAILED for m in listed):
            return ""
        return "; ".join(sorted({f"{m.id}: {m.state_message}" for m in listed}))

    def services(self) -> set[str]:
        """gRPC services some healthy replica serves."""
        return {
            m.service
            for r in self.replicas()
            if r.healthy
            for m in r.models.values()
            if m.state == READY
        }
