"""What a command started in the executing sandbox finds in its environment."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from scnet_magic import ScnetClient
from scnet_magic.sandbox import Sandbox

from conftest import CANARY, SECRET_CANARY, free_port

ACCESS_CANARY = "AK-CANARY-7d1e4b"
PASSWORD_CANARY = "guard password canary 9c2f"


def test_a_started_command_gets_no_credential_and_the_kernels_python_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCNET_TOKEN", CANARY)
    monkeypatch.setenv("SCNET_ACCESS_KEY", ACCESS_CANARY)
    monkeypatch.setenv("SCNET_SECRET_KEY", SECRET_CANARY)
    monkeypatch.setenv("SCNET_GUARD_PASSWORD", PASSWORD_CANARY)
    monkeypatch.setenv("SCNET_KEPT_FOR_THE_COMMAND", "kept")
    with Sandbox(execute=True, workdir=tmp_path, ready_timeout=0.2) as sb:
        client = ScnetClient(base_url=sb.base_url, token=sb.token)
        client.start_service(sb.notebook_id, free_port(), "env > seen.env; sleep 5")
        seen = tmp_path / "seen.env"
        deadline = time.monotonic() + 10
        while not (seen.exists() and seen.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        environment = dict(
            line.split("=", 1) for line in seen.read_text().splitlines() if "=" in line
        )
        # The reaper that ends the services when the kernel dies holds none either.
        reapers = [
            Path(f"/proc/{pid}/environ").read_bytes()
            for pid in os.listdir("/proc")
            if pid.isdigit() and _is_reaper(pid)
        ]
    assert reapers
    for secret in (CANARY, ACCESS_CANARY, SECRET_CANARY, PASSWORD_CANARY):
        assert secret not in seen.read_text()
        assert all(secret.encode() not in reaper for reaper in reapers)
    assert environment["SCNET_KEPT_FOR_THE_COMMAND"] == "kept"
    assert environment["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)


def _is_reaper(pid: str) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        parent = Path(f"/proc/{pid}/stat").read_text().split()[3]
    except OSError:
        return False
    return command.endswith(b"sandbox/processes.py\0") and parent == str(os.getpid())
