"""What a start says about the user's own service must be true: a command that died at once is
not a slow service, a dead service behind a guard is not "up", and an old process still on the
port is not the new app."""

from __future__ import annotations

import html
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from protect_helpers import web_server

from scnet_magic import display, start_service
from scnet_magic.errors import CommandEnded, InvalidInput, NotReady
from scnet_magic.sandbox import Sandbox
from scnet_magic.startform import StartForm

from conftest import free_port
from frontends import run_scnet

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


# -- 3. re-running the start after editing the app ---------------------------------------------


def _until_it_answers(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("the old app did not listen")


@pytest.fixture
def old_app(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes], Path]]:
    """An old app left listening on a port by a first run, and a folder holding the edited
    app's page."""
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "page.txt").write_text("old app")
    (new / "page.txt").write_text("new app")
    port = free_port()
    with web_server(old, port) as process:
        _until_it_answers(port)
        yield port, process, new


def _new_app(port: int, folder: Path) -> str:
    return f"cd {shlex.quote(str(folder))} && exec {PY} -m http.server {port} --bind 127.0.0.1"


def test_a_port_in_use_is_refused_before_sending(
    gateway_env: Sandbox, old_app: tuple[int, subprocess.Popen[bytes], Path]
) -> None:
    port, process, new = old_app
    with pytest.raises(InvalidInput) as caught:
        start_service(None, port, _new_app(port, new), wait=20)
    assert gateway_env.start_requests() == []  # nothing sent
    message = caught.value.user_message()
    assert f"port {port} is already in use" in message
    assert f"pid {process.pid}" in message
    assert "--replace" in message
    assert process.poll() is None  # the old app is left alone


def test_replace_ends_the_old_app_and_the_url_serves_the_new_one(
    gateway_env: Sandbox, old_app: tuple[int, subprocess.Popen[bytes], Path]
) -> None:
    port, process, new = old_app
    result = start_service(None, port, _new_app(port, new), wait=20, replace=True)
    assert process.wait(timeout=10) is not None
    assert result.ready and result.url is not None
    assert requests.get(result.url + "page.txt", timeout=10).text == "new app"


def test_without_a_command_the_running_app_is_exposed(
    gateway_env: Sandbox, old_app: tuple[int, subprocess.Popen[bytes], Path]
) -> None:
    port, process, _new = old_app
    result = start_service(None, port, None, wait=20)
    assert result.ready and process.poll() is None


def test_the_magic_offers_and_takes_replace(
    gateway_env: Sandbox,
    old_app: tuple[int, subprocess.Popen[bytes], Path],
    ip: InteractiveShell,
) -> None:
    port, process, new = old_app
    command = _new_app(port, new)
    with capture_output(), pytest.raises(UsageError) as refused:
        ip.run_line_magic("scnet_start", f"--port {port} --command {shlex.quote(command)}")
    assert "already in use" in str(refused.value) and "--replace" in str(refused.value)
    assert gateway_env.start_requests() == []
    with capture_output():
        result = ip.run_line_magic(
            "scnet_start", f"--port {port} --command {shlex.quote(command)} --replace --wait 20"
        )
    assert result.ready
    assert process.wait(timeout=10) is not None


def test_the_command_offers_and_takes_replace(
    gateway_env: Sandbox, old_app: tuple[int, subprocess.Popen[bytes], Path]
) -> None:
    port, process, new = old_app
    words = ["start", "--port", str(port), "--command", _new_app(port, new), "--wait", "20"]
    refused = run_scnet(words)
    assert refused.returncode == 2, refused.stderr
    assert "already in use" in refused.stderr and "--replace" in refused.stderr
    replaced = run_scnet([*words, "--replace", "--json"])
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads(replaced.stdout)["ready"] is True
    assert process.wait(timeout=10) is not None


def test_the_form_offers_and_takes_replace(
    gateway_env: Sandbox, old_app: tuple[int, subprocess.Popen[bytes], Path]
) -> None:
    port, process, new = old_app
    form = StartForm()
    form.port.value = str(port)
    form.command.value = _new_app(port, new)
    form.start_button.click()
    assert form.wait(30)
    assert isinstance(form.error, InvalidInput)
    assert "End what already listens on the port" in html.unescape(form.result_area.value)
    form.replace_box.value = True
    form.start_button.click()
    assert form.wait(30)
    assert form.error is None and form.result is not None and form.result.ok
    assert process.wait(timeout=10) is not None
