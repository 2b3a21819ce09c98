"""A restoration-only conversion server never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys

TORCH_FREE = [
    "speechmesh.services.conversion.service",
    "speechmesh.services.conversion.restoration.rnnoise",
    "speechmesh.services.conversion.restoration.deepfilternet",
]


def test_the_service_and_the_native_denoisers_do_without_torch():
    code = "; ".join(f"import {name}" for name in TORCH_FREE)
    code += "; import sys; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_the_ge2e_encoder_imports_without_the_service():
    code = (
        "import json, sys; from speechmesh.services.conversion.encoder.ge2e import modules; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('speechmesh.services'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert "speechmesh.services.conversion.service" not in loaded
    assert all("servicer" not in name for name in loaded)
