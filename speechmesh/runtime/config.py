"""The mesh's configuration: one typed, validated YAML file declaring servers and models.

Loaded once at start and passed down. Validation errors name the offending field
(`services.vad.models[0].max_batch_size: ...`) so a bad config never half-starts.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ServiceName = Literal["vad", "stt", "tts", "conversion", "indextts", "gateway"]
EMBEDDED_CONFIG = "embedded.yaml"


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid; the message names the field."""


class _Strict(BaseModel):
    # Unknown keys are typos more often than not: reject them instead of ignoring them.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """One served model: which family runs it, where its weights are, how it batches."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=128)
    family: str
    source: str | None = None
    """Local path or hub repo id ("org/name[@revision]"); None: the family's embedded default."""
    device: str = "cpu"
    dtype: Literal["float32", "float16", "bfloat16", "int8", "int8_float16", "auto"] = "float32"
    max_batch_size: int = Field(default=64, ge=1, le=4096)
    max_batch_wait_ms: float = Field(default=1.0, ge=0, le=1000)
    max_queue_size: int = Field(default=4096, ge=1)
    threads: int = Field(default=1, ge=1, le=256)
    parallel_batches: int = Field(default=1, ge=1, le=64)
    """Batches of this model that run at once, each on its own worker thread with
    `threads` threads: where one call cannot use every core, more clients get more
    throughput. Only for families whose model takes concurrent calls."""
    languages: list[str] = []
    voices: list[str] = []
    default: bool = False
    """The model used when a request names none (else the first of the service's models)."""
    optional: bool = False
    """Served only from weights at hand (a local path or the cache, where `speechmesh models
    pull <id>` puts them): it never downloads when the server starts, and when it cannot
    load it is FAILED with the reason (calls to it FAILED_PRECONDITION) while its service's
    health follows the other models."""
    options: dict[str, Any] = {}
    """Family-specific settings, validated by the family's engine."""

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value != "cpu" and not value.startswith("cuda"):
            raise ValueError("must be 'cpu', 'cuda' or 'cuda:N'")
        return value


class ServiceConfig(_Strict):
    """One gRPC server of the mesh and the models it hosts."""

    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)
    models: list[ModelConfig] = []

    @field_validator("models")
    @classmethod
    def _unique_ids(cls, models: list[ModelConfig]) -> list[ModelConfig]:
        seen: set[str] = set()
        for model in models:
            if model.id in seen:
                raise ValueError(f"model id {model.id!r} appears twice")
            seen.add(model.id)
        if sum(m.default for m in models) > 1:
            raise ValueError("at most one model may be the default")
        return models


class LimitsConfig(_Strict):
    """Per-server limits; each one is named in the error a client gets when it hits it."""

    max_message_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_concurrent_streams: int = Field(default=2000, ge=1)
    max_audio_seconds: float = Field(default=3600.0, gt=0)
    """Longest audio accepted in one unary request."""
    max_stream_seconds: float = Field(default=4 * 3600.0, gt=0)
    """Longest audio accepted over one stream."""
    max_held_audio_seconds: float = Field(default=4 * 3600.0, gt=0)
    """Most audio one server process holds at once over all its calls (decoded unary
    requests, stream_held_audio_seconds per request stream); past it, RESOURCE_EXHAUSTED."""
    stream_held_audio_seconds: float = Field(default=5.0, ge=0)
    """What each open request stream counts against max_held_audio_seconds."""
    max_text_chars: int = Field(default=20_000, ge=1)
    stream_idle_timeout_s: float = Field(default=60.0, gt=0)
    """A stream whose client sends nothing for this long is ended (DEADLINE_EXCEEDED)."""


class AuthConfig(_Strict):
    """API-key auth. When enabled and no key can be read, the server refuses to start."""

    enabled: bool = False
    keys_file: Path | None = None
    """A file with one key per line; a line "sha256:<hex>" holds a key's digest instead."""
    keys_env: str = "SPEECHMESH_API_KEYS"
    """An environment variable with comma-separated keys (or sha256:<hex> digests)."""


class TlsConfig(_Strict):
    """Serve over TLS; with client_ca_file, also require client certificates (mutual TLS)."""

    cert_file: Path
    """PEM certificate chain of the server."""
    key_file: Path
    """PEM private key of the server."""
    client_ca_file: Path | None = None
    """PEM CA bundle that client certificates must chain to; unset: no client certificates."""


class TelemetryConfig(_Strict):
    """Prometheus metrics and OpenTelemetry tracing."""

    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """Port of the Prometheus /metrics endpoint; None: no endpoint."""
    tracing: Literal["none", "console", "otlp"] = "none"
    otlp_endpoint: str | None = None


class BackendConfig(_Strict):
    """Where the gateway finds replicas of one service."""

    name: str
    target: str
    """host:port (one replica), or dns:///name:port: every address the name resolves to is a
    replica (a headless Service in Kubernetes)."""


class BackendTlsConfig(_Strict):
    """How the gateway reaches backends that serve TLS (or mutual TLS)."""

    ca_file: Path
    """PEM CA bundle that the backends' certificates chain to."""
    cert_file: Path | None = None
    """PEM client certificate chain, for backends that require client certificates."""
    key_file: Path | None = None
    """PEM private key of cert_file."""
    server_name: str | None = None
    """The name to check the backends' certificates against, when not their host."""


class HttpConfig(_Strict):
    """The gateway's OpenAI-compatible HTTP listener (docs/http.md): the same calls as
    gRPC, the same keys and limits; request bodies are capped at limits.max_message_bytes."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    timeout_s: float = Field(default=300.0, gt=0)
    """The deadline of the gRPC call behind each HTTP request (504 when it passes)."""
    model_aliases: dict[str, str] = {}
    """Names clients may use for a mesh model (OpenAI's "tts-1", "whisper-1", ...)."""
    cors_origins: list[str] = []
    """Web origins whose pages may call the routes ("https://app.example.com", or "*");
    empty: no cross-origin calls."""


class GatewayConfig(_Strict):
    """The front door: its backends, how often it looks at them, and named graphs."""

    backends: list[BackendConfig] = []
    """Empty: every other service of this config, at its host and port (the embedded mesh)."""
    refresh_interval_s: float = Field(default=2.0, gt=0)
    """How often each backend's replicas are resolved, health-checked and asked ListModels."""
    graphs: dict[str, dict[str, Any]] = {}
    """Named orchestrator graphs (speechmesh.orchestrator.v1.Graph, as YAML)."""
    backend_key_env: str = "SPEECHMESH_BACKEND_KEY"
    """An environment variable holding the API key the gateway presents to its backends."""
    backend_key_file: Path | None = None
    """A file whose first line is that key (read before backend_key_env)."""
    forward_caller_key: bool = False
    """Pass each caller's own key on to the backends instead of the gateway's, so that
    backends authorise every caller themselves; the gateway's key still serves its probes."""
    backend_tls: BackendTlsConfig | None = None
    """Reach the backends over TLS; unset: plaintext."""
    http: HttpConfig = HttpConfig()


class MeshConfig(_Strict):
    """The whole file."""

    services: dict[ServiceName, ServiceConfig]
    limits: LimitsConfig = LimitsConfig()
    auth: AuthConfig = AuthConfig()
    tls: TlsConfig | None = None
    """Unset: plaintext (inside a cluster, behind a mesh sidecar, or on localhost)."""
    telemetry: TelemetryConfig = TelemetryConfig()
    drain_grace_s: float = Field(default=30.0, ge=0)
    """On SIGTERM: how long in-flight calls may run before the server stops."""
    gateway: GatewayConfig = GatewayConfig()

    def backends(self) -> list[BackendConfig]:
        """The gateway's backends: configured, or every other service of this config."""
        if self.gateway.backends:
            return self.gateway.backends
        return [
            BackendConfig(name=name, target=f"{service.host}:{service.port}")
            for name, service in self.services.items()
            if name != "gateway"
        ]

    def service(self, name: str) -> ServiceConfig:
        if name not in self.services:
            known = ", ".join(sorted(self.services)) or "none"
            raise ConfigError(f"services.{name}: not in the config (configured: {known})")
        return self.services[name]  # type: ignore[index]


def _format_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        path = ""
        for part in item["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        lines.append(f"{path or '<root>'}: {item['msg']}")
    return "\n".join(lines)


def parse_config(data: Any, origin: str = "<config>") -> MeshConfig:
    """Validates an already-parsed YAML document."""
    try:
        return MeshConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"invalid config {origin}:\n{_format_errors(error)}") from None


def load_config(path: str | Path | None = None) -> MeshConfig:
    """Reads and validates a config file; None reads the embedded default config."""
    if path is None:
        text = resources.files("speechmesh").joinpath(EMBEDDED_CONFIG).read_text()
        origin = f"(embedded {EMBEDDED_CONFIG})"
    else:
        try:
            text = Path(path).read_text()
        except OSError as error:
            raise ConfigError(f"cannot read config {path}: {error.strerror}") from None
        origin = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"config {origin} is not valid YAML: {error}") from None
    return parse_config(data, origin)
