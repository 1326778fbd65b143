"""The magics and the ``scnet`` command as a terminal user meets them: real ``ipython`` and
``scnet`` processes, some under a pseudo-terminal of 60 and 160 columns."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCNET_")}
    return {
        **env,
        "SCNET_CONFIG_FILE": str(tmp_path / "config.toml"),
        "SCNET_LANG": "en",
        "IPYTHONDIR": str(tmp_path / "ipython"),
        **extra,
    }


def _ipython(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ipython"), "--no-banner", "--colors=NoColor", *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_an_ipy_script_prints_the_start_result_and_its_url(tmp_path: Path) -> None:
    port = _free_port()
    script = tmp_path / "start.ipy"
    script.write_text(
        "%load_ext scnet_magic\n"
        "%scnet_sandbox --execute\n"
        f'%scnet_start --port {port} --command "{sys.executable} -m http.server {port}" --wait 30\n'
        "%scnet_url\n"
        "%scnet_sandbox --stop\n"
    )
    run = _ipython(tmp_path, str(script))
    assert "Waiting up to 30 s" in run.stdout, run.stdout + run.stderr
    after_wait = run.stdout.split("Waiting up to 30 s", 1)[1]
    assert "ready" in after_wait.lower(), run.stdout
    assert "http://" in after_wait  # the start's URL
    assert after_wait.count("http://") >= 2, run.stdout  # and %scnet_url's


def test_ipython_c_shows_an_earlier_result_before_a_later_error(tmp_path: Path) -> None:
    code = (
        "%load_ext scnet_magic\n%scnet_sandbox\nr = %scnet_start --port 8080\n%scnet_url --id 12\n"
    )
    run = _ipython(tmp_path, "-c", code)
    out = run.stdout + run.stderr
    start, error = out.find("port 8080 of notebook"), out.find("ApiError")
    assert -1 < start < error, out


def test_wait_counts_from_the_answer_not_from_the_send(tmp_path: Path) -> None:
    # The executing sandbox answers after up to ready_timeout seconds (as the platform checks
    # the port before answering): --wait 3 still polls for 3 s after that.
    from scnet_magic.sandbox import Sandbox

    from frontends import run_scnet

    port = _free_port()
    command = f"sleep 3 && {sys.executable} -m http.server {port}"
    with Sandbox(execute=True, workdir=tmp_path, ready_timeout=2.0) as sb:
        env = {"SCNET_BASE_URL": sb.base_url, "SCNET_TOKEN": sb.token}
        args = ["start", "--id", sb.notebook_id, "--port", str(port), "--command", command]
        run = run_scnet([*args, "--wait", "3"], env)
    assert run.returncode == 0, run.stderr
    assert "ready after" in run.stdout.lower(), run.stdout
