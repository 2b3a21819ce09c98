"""A server that cannot listen names the process holding its port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import yaml
from support import vad_config


def test_a_busy_port_names_its_holder(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = vad_config()
        config["services"]["vad"]["port"] = port
        path = tmp_path / "busy.yaml"
        path.write_text(yaml.safe_dump(config))
        result = subprocess.run(
            [sys.executable, "-m", "speechmesh.cli.main", "serve", "vad", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    output = " ".join((result.stdout + result.stderr).split())  # the console wraps lines
    assert result.returncode == 2, output
    assert f"cannot listen on 127.0.0.1:{port} (in use by pid {os.getpid()} (" in output
