"""The sandbox and the user's own account and folders: where commands run, what a sign-in
saves, how to sign out, and what the errors say about where settings came from."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from scnet_magic import ScnetClient
from scnet_magic.sandbox import Sandbox

from conftest import free_port


def wait_for(path: Path, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.05)
    return False


# -- one folder rule: the folder the sandbox was started from ----------------------------------


def test_sandbox_object_runs_commands_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with Sandbox(execute=True, ready_timeout=0.2) as sb:
        assert sb.workdir == tmp_path
        with ScnetClient(base_url=sb.base_url, token=sb.token) as client:
            client.start_service(sb.notebook_id, free_port(), "touch ran-here")
        assert wait_for(tmp_path / "ran-here")
    assert tmp_path.is_dir()  # the user's folder is never removed


def test_sandbox_command_runs_commands_in_the_folder_it_was_started_from(
    tmp_path: Path,
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scnet_magic", "sandbox", "--execute"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        exports = dict(line[len("export ") :].strip().split("=", 1) for line in lines)
        with ScnetClient(
            base_url=exports["SCNET_BASE_URL"], token=exports["SCNET_TOKEN"]
        ) as client:
            client.start_service(exports["SCNET_NOTEBOOK_ID"], free_port(), "touch ran-here")
        assert wait_for(tmp_path / "ran-here")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_sandbox_magic_takes_a_workdir(
    ip: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with capture_output():
        sb = ip.run_line_magic("scnet_sandbox", f"--execute --workdir {elsewhere}")
    try:
        assert sb.workdir == elsewhere
        ip.run_line_magic("scnet_start", f'--port {free_port()} --command "touch ran-here"')
        assert wait_for(elsewhere / "ran-here")
        assert not (tmp_path / "ran-here").exists()
    finally:
        with capture_output():
            ip.run_line_magic("scnet_sandbox", "--stop")
