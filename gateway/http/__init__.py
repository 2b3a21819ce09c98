"""The gateway's OpenAI-compatible HTTP listener: FastAPI routes translated onto the
gateway's own gRPC calls (docs/http.md)."""
