"""The conversion commands of the `speechmesh` CLI against a real server."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from support import piper_untrimmed

pytestmark = pytest.mark.xdist_group("conversion")
CLI = [sys.executable, "-m", "speechmesh.cli.main"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def test_embed_prints_and_saves_the_embedding(conversion_server, tmp_path):
    wav = tmp_path / "joe.wav"
    sf.write(wav, *piper_untrimmed("The quick brown fox jumps over the lazy dog"), subtype="PCM_16")
    saved = tmp_path / "joe.json"
    result = cli("embed", str(wav), "-o", str(saved), "--address", conversion_server.address)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed == json.loads(saved.read_text())
    assert printed["modelFamily"] == "ge2e-resemblyzer"
    assert abs(np.linalg.norm(printed["values"]) - 1) < 1e-4


def test_embed_reports_a_failed_call(conversion_server, tmp_path):
    raw = tmp_path / "silence.pcm"
    raw.write_bytes(b"\0\0" * 16000)
    result = cli("embed", str(raw), "--rate", "16000", "--address", conversion_server.address)
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr and "at least 1.20 s" in result.stderr


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_restore_writes_cleaner_audio(conversion_server, tmp_path, stream):
    from test_restore import RATE, noisy_speech, si_sdr

    clean, noisy = noisy_speech()
    source, output = tmp_path / "noisy.wav", tmp_path / "clean.wav"
    sf.write(source, noisy, RATE, subtype="FLOAT")
    args = ["restore", str(source), "-o", str(output), "-m", "rnnoise", "--output-rate", "16000"]
    result = cli(*args, *(["--stream"] if stream else []), "--address", conversion_server.address)
    assert result.returncode == 0, result.stderr
    restored, rate = sf.read(output, dtype="float32")
    assert rate == RATE and len(restored) == len(noisy)
    assert si_sdr(clean, restored) - si_sdr(clean, noisy) >= 3.0


def test_convert_to_a_reference_or_a_saved_embedding(conversion_server, tmp_path):
    source, reference = tmp_path / "source.wav", tmp_path / "reference.wav"
    sf.write(
        source, *piper_untrimmed("The quick brown fox jumps over the lazy dog"), subtype="PCM_16"
    )
    sf.write(reference, *piper_untrimmed("She sells sea shells by the sea shore"), subtype="PCM_16")
    address = ["--address", conversion_server.address]
    model = ["-m", "openvoice-v2-tiny", "--tau", "0"]
    saved = tmp_path / "target.json"
    result = cli("embed", str(reference), "-m", "openvoice-v2-tiny", "-o", str(saved), *address)
    assert result.returncode == 0, result.stderr
    outputs = []
    for target in (reference, saved):
        output = tmp_path / f"converted-{target.suffix[1:]}.wav"
        result = cli(
            "convert", str(source), "--target", str(target), "-o", str(output), *model, *address
        )
        assert result.returncode == 0, result.stderr
        outputs.append(sf.read(output, dtype="float32"))
    (by_audio, rate), (by_embedding, _) = outputs
    assert rate == 16000 and len(by_audio) == round(sf.info(source).duration * 16000)
    np.testing.assert_allclose(by_audio, by_embedding, atol=1e-4)
