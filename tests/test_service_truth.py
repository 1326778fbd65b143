"""What a start says about the user's own service must be true: a command that died at once is
not a slow service, a dead service behind a guard is not "up", and an old process still on the
port is not the new app."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from scnet_magic import display, start_service
from scnet_magic.errors import CommandEnded, NotReady
from scnet_magic.sandbox import Sandbox

from conftest import free_port

PY = shlex.quote(sys.executable)


# -- 1. a command that dies at once ---------------------------------------------------------


def test_a_pending_start_shows_the_commands_output_open(gateway_env: Sandbox) -> None:
    port = free_port()
    result = start_service(None, port, f"{PY} no_such_app.py --port {port}")
    assert result.pending
    html = display.start_html(result)
    assert "<details open>" in html
    assert "no_such_app.py" in html


def test_wait_stops_when_the_command_has_died(gateway_env: Sandbox) -> None:
    port = free_port()
    with pytest.raises(CommandEnded) as caught:
        start_service(None, port, f"{PY} no_such_app.py --port {port}", wait=20)
    error = caught.value
    assert isinstance(error, NotReady)  # a front end handles it as a wait that failed
    assert "No such file or directory" in error.last_lines
    assert "no_such_app.py" in error.user_message()
    assert error.result is not None and error.result.pending  # the result still shows


def test_wait_stops_when_the_log_shows_the_command_ended(
    gateway_env: Sandbox, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "app.log"
    command = f"{PY} no_such_app.py --port {port} > {log} 2>&1"
    with pytest.raises(CommandEnded) as caught:
        start_service(None, port, command, wait=20)
    assert caught.value.log == str(log)
    assert "No such file or directory" in caught.value.last_lines
    assert str(log) in caught.value.user_message()


@pytest.mark.parametrize(
    "command",
    [
        "sleep 2 && {py} -m http.server {port} --bind 127.0.0.1",
        "{py} -c 'import time; time.sleep(2)' && exec {py} -m http.server {port} > {log} 2>&1",
        "nohup {py} -m http.server {port} --bind 127.0.0.1 > /dev/null 2>&1 &",
    ],
)
def test_a_slow_service_is_still_waited_for(
    gateway_env: Sandbox, tmp_path: Path, command: str
) -> None:
    port = free_port()
    line = command.format(py=PY, port=port, log=tmp_path / "slow.log")
    result = start_service(None, port, line, wait=20)
    assert result.ready


# -- 2. --protect without --wait --------------------------------------------------------------


def test_a_protected_start_with_nothing_on_the_port_is_not_up(
    gateway_env: Sandbox, guard_dir: Path
) -> None:
    port = free_port()
    result = start_service(None, port, None, protect="a long enough password")
    assert result.protected
    assert not result.ok and result.pending
    assert result.status == "pending"
    assert "Service is up" not in display.start_text(result)


def test_a_protected_start_with_the_service_listening_is_up(
    gateway_env: Sandbox, guard_dir: Path
) -> None:
    port = free_port()
    command = f"{PY} -m http.server {port} --bind 127.0.0.1"
    result = start_service(None, port, command, protect="a long enough password", wait=20)
    assert result.protected and result.ready
    again = start_service(None, port, None, protect="a long enough password")
    assert again.ok and again.status == "ok"
