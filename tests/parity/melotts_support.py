"""The MeloTTS parity tests' shared pieces: one reference run (its fixture folder and the
language it was run in) rebuilt, then served by a bare engine and by a real TTS server."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from support import start_server
from tts_support import tts_config

from parity.melotts_weights import rebuild_reference_model
from parity.support import ReferenceRun
from speechmesh.runtime.config import ModelConfig
from speechmesh.services.tts.melotts.engine import MeloTts
from speechmesh.tts.v1 import tts_pb2


def model_config(model: str, root, model_options: dict) -> dict:
    """The served config of a rebuilt reference model under root."""
    return {
        "id": model,
        "family": "melotts",
        "source": str(root / "model"),
        "threads": 1,
        "options": model_options,
    }


def synthesis_options(case: dict, language: str) -> tts_pb2.SynthesisOptions:
    """A reference case's speaker, seed, speed and scales as the request's options."""
    fields = {"voice": case["speaker"], "language": language, "seed": case["seed"]}
    if case["speed"] != 1.0:
        fields["speed"] = case["speed"]
    if case["scales"] is not None:
        fields["melo_tts"] = tts_pb2.MeloTtsOptions(**case["scales"])
    return tts_pb2.SynthesisOptions(**fields)


@dataclass(frozen=True)
class MeloParity:
    """One reference run: fixture is its folder under tests/parity/fixtures (also the
    served model's id, with "-parity"), language the tag its requests carry."""

    fixture: str
    language: str

    @property
    def model(self) -> str:
        return f"{self.fixture}-parity"

    def reference(self) -> ReferenceRun:
        return ReferenceRun(self.fixture)

    def cases(self, kind: str) -> list:
        try:
            found = [c for c in self.reference().cases if c["kind"] == kind]
        except FileNotFoundError:
            skip = pytest.mark.skip(reason=f"no {self.fixture} fixtures")
            return [pytest.param(None, marks=skip)]
        return [pytest.param(c, id=c["name"]) for c in found]

    def options(self, case: dict) -> tts_pb2.SynthesisOptions:
        return synthesis_options(case, self.language)

    def fixtures(self) -> tuple:
        """The module's snapshot, engine and server fixtures (assign them by those names)."""

        @pytest.fixture(scope="module", name="snapshot")
        def snapshot(tmp_path_factory):
            root = tmp_path_factory.mktemp(self.model)
            return root, rebuild_reference_model(self.reference(), root)

        @pytest.fixture(scope="module", name="engine")
        def engine(snapshot) -> MeloTts:
            loaded = MeloTts(ModelConfig(**model_config(self.model, *snapshot)))
            loaded.load()
            return loaded

        @pytest.fixture(scope="module", name="server")
        def server(snapshot, tmp_path_factory):
            config = tts_config([model_config(self.model, *snapshot)])
            running = start_server("tts", config, tmp_path_factory.mktemp(f"{self.fixture}-srv"))
            yield running
            running.stop()

        return snapshot, engine, server


def served_reference_fixtures(fixture: str, model: str) -> tuple:
    """A contract test module's model (the rebuilt reference model's config, skipped
    without the fixtures) and server fixtures (assign them by those names)."""

    @pytest.fixture(scope="module", name="model")
    def model_fixture(tmp_path_factory) -> dict:
        try:
            run = ReferenceRun(fixture)
        except FileNotFoundError:
            pytest.skip(f"no {fixture} fixtures")
        root = tmp_path_factory.mktemp(fixture)
        options = rebuild_reference_model(run, root)
        return {"id": model, "family": "melotts", "source": str(root / "model"), "options": options}

    @pytest.fixture(scope="module", name="server")
    def server(model, tmp_path_factory):
        config = tts_config([model], drain_grace_s=5)
        running = start_server("tts", config, tmp_path_factory.mktemp(f"{fixture}-srv"))
        yield running
        running.stop()

    return model_fixture, server
