"""What a start says about the user's own service must be true: a command that died at once is
not a slow service, a dead service behind a guard is not "up", and an old process still on the
port is not the new app."""

from __future__ import annotations

import base64
import html
import json
import shlex
import socket
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

from scnet_magic import config, display, guard, local, service, start_service
from scnet_magic.client import ScnetClient
from scnet_magic.errors import CommandEnded, GuardFailed, InvalidInput, NotReady
from scnet_magic.guard import start_guard
from scnet_magic.magics.base import ShortError
from scnet_magic.sandbox import Sandbox
from scnet_magic.startform import StartForm
from scnet_magic.validation import StartRequest

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
@pytest.mark.slow
def test_a_slow_service_is_still_waited_for(
    gateway_env: Sandbox, tmp_path: Path, command: str
) -> None:
    port = free_port()
    line = command.format(py=PY, port=port, log=tmp_path / "slow.log")
    result = start_service(None, port, line, wait=20)
    assert result.ready


# -- 2. --protect without --wait --------------------------------------------------------------


@pytest.mark.slow
def test_a_protected_start_with_nothing_on_the_port_is_not_up(
    gateway_env: Sandbox, guard_dir: Path
) -> None:
    port = free_port()
    result = start_service(None, port, None, protect="a long enough password")
    assert result.protected
    assert not result.ok and result.pending
    assert result.status == "pending"
    assert "Service is up" not in display.start_text(result)


@pytest.mark.slow
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
    assert f"Port {port} is already in use" in message
    assert f"pid {process.pid}" in message
    assert "--replace" in message
    assert process.poll() is None  # the old app is left alone


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
    form.wait_ready.value = True
    form.wait_seconds.value = 20
    form.start_button.click()
    assert form.wait(30)
    assert form.error is None and form.result is not None and form.result.ready
    assert process.wait(timeout=10) is not None


# -- 4. the sandbox a newcomer is led to -------------------------------------------------------


def test_the_no_token_hint_names_the_executing_sandbox(ip: InteractiveShell) -> None:
    with capture_output(), pytest.raises(UsageError) as refused:
        ip.run_line_magic("scnet_start", f"--id {Sandbox.notebook_id} --port 8000")
    assert "%scnet_sandbox --execute" in str(refused.value)
    run = run_scnet(["start", "--id", Sandbox.notebook_id, "--port", "8000"])
    assert run.returncode != 0 and "scnet sandbox --execute" in run.stderr


def test_with_nothing_configured_the_first_error_leads_to_the_sandbox(
    ip: InteractiveShell,
) -> None:
    with capture_output(), pytest.raises(UsageError) as refused:
        ip.run_line_magic("scnet_start", "--port 8000")
    assert "No notebook id" in str(refused.value)
    assert "%scnet_sandbox --execute" in str(refused.value)
    run = run_scnet(["start", "--port", "8000"])
    assert "No notebook id" in run.stderr and "scnet sandbox --execute" in run.stderr


def test_a_sandbox_that_runs_nothing_says_so(ip: InteractiveShell) -> None:
    port = free_port()
    with capture_output():
        ip.run_line_magic("scnet_sandbox", "")
    try:
        with capture_output():
            result = ip.run_line_magic(
                "scnet_start", f"--port {port} --command 'python app.py' --wait 5"
            )
        assert result.nothing_ran and result.pending and not result.ready
        text = display.start_text(result)
        assert "no command ran" in text and "example" in text
        assert "The command ran" not in text
        assert "with --execute" in display.start_html(result)
    finally:
        with capture_output():
            ip.run_line_magic("scnet_sandbox", "--stop")


def test_an_executing_sandbox_does_not_say_nothing_ran(gateway_env: Sandbox) -> None:
    result = start_service(None, free_port(), "true")
    assert not result.nothing_ran


@pytest.mark.slow
def test_a_platform_reached_over_loopback_is_not_taken_for_the_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An SSH tunnel to the platform: a loopback address, with the platform's own token, and a
    # port this machine happens to use for something of its own.
    busy = socket.create_server(("127.0.0.1", 0))
    with Sandbox(token="a-platform-token") as tunnel, busy:
        monkeypatch.setenv("SCNET_BASE_URL", tunnel.base_url)
        monkeypatch.setenv("SCNET_TOKEN", tunnel.token)
        assert not local.sandbox_token(tunnel.token)
        result = start_service(tunnel.notebook_id, busy.getsockname()[1], "python app.py")
    # Sent, not refused for the local port; and the platform's answer is not "nothing ran".
    assert result.pending and not result.nothing_ran
    with Sandbox() as sandbox:
        assert local.sandbox_token(sandbox.token)


# -- 5. the guard's port is not the user's ----------------------------------------------------


@pytest.mark.slow
def test_a_start_after_the_guard_ended_names_the_users_port(
    gateway_env: Sandbox, guard_dir: Path
) -> None:
    # The instance's custom port is still the ended guard's: the replaced port named is the
    # one the user started, not the guard's.
    port, other = free_port(), free_port()
    command = f"{PY} -m http.server {port} --bind 127.0.0.1"
    result = start_service(None, port, command, protect="a long enough password", wait=20)
    assert result.guard_port is not None
    assert guard.stop_guard(result.guard_port)
    with ScnetClient(settings=config.resolve()) as client:
        record = client.notebook(gateway_env.notebook_id)
        assert record.custom_port == result.guard_port
        again = service.start(
            StartRequest(gateway_env.notebook_id, other, None), client, record=record
        )
    assert again.replaced_port == port
    assert str(result.guard_port) not in display.start_text(again)


@pytest.mark.slow
def test_the_guards_port_is_never_shown_as_the_users(gateway_env: Sandbox, guard_dir: Path) -> None:
    port, other = free_port(), free_port()
    command = f"{PY} -m http.server {port} --bind 127.0.0.1"
    result = start_service(None, port, command, protect="a long enough password", wait=20)
    guard_port = result.guard_port
    assert guard_port is not None and guard_port != port
    line = display.protected_line(result)
    assert f"port {port}" in line and f"guard's own port: {guard_port}" in line

    form = StartForm()
    assert form.wait(30)
    labels = [label for label, _value in form.notebook_menu.options]
    assert any(f"port {port}" in label for label in labels), labels
    assert not any(f"port {guard_port}" in label for label in labels), labels
    form.notebook_id.value = gateway_env.notebook_id
    form.port.value = str(port)
    assert "replaces" not in form.port_note.value
    form.port.value = str(other)
    assert f"on port {port}." in html.unescape(form.port_note.value)
    assert str(guard_port) not in form.port_note.value

    with ScnetClient(settings=config.resolve()) as client:
        record = client.notebook(gateway_env.notebook_id)
        assert record.custom_port == guard_port  # what the platform knows
        again = service.start(
            StartRequest(gateway_env.notebook_id, other, None), client, record=record
        )
    assert again.replaced_port == port
    assert f"port {port}:" in display.start_text(again)

    # %scnet_url and %scnet_notebooks: the user's port, the guard's named as the guard's.
    with ScnetClient(settings=config.resolve()) as client:
        client.start_service(gateway_env.notebook_id, guard_port)  # the guard's port again
        found = service.service_url(client, gateway_env.notebook_id)
        listed = service.notebooks(client)
    for shown in (display.service_url_text(found), display.notebooks_text(listed)):
        assert f"{port} (password; the guard's port: {guard_port})" in shown, shown
        assert shown.count(str(guard_port)) == 1, shown


# -- 6. a guard that fails inside a notebook --------------------------------------------------


@pytest.mark.slow
def test_a_guard_conflict_in_a_notebook_names_the_magic(
    gateway_env: Sandbox,
    guard_dir: Path,
    ip: InteractiveShell,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    existing = start_guard(port, "the first long password")
    monkeypatch.setenv("SCNET_GUARD_PASSWORD", "another long password")
    with capture_output(), pytest.raises(ShortError) as magic:
        ip.run_line_magic("scnet_start", f"--port {port} --protect")
    assert f"%scnet_guard --stop {existing.port}" in str(magic.value)
    with pytest.raises(GuardFailed) as python:
        start_service(None, port, None, protect=True)
    assert f"%scnet_guard --stop {existing.port}" in python.value.user_message()
    form = StartForm()
    form.port.value = str(port)
    form.protect.checkbox.value = True
    form.start_button.click()
    assert form.wait(30)
    assert isinstance(form.error, GuardFailed)
    assert f"%scnet_guard --stop {existing.port}" in form.error.user_message()
    run = run_scnet(["start", "--port", str(port), "--protect"])
    assert f"scnet guard --stop {existing.port}" in run.stderr
    assert "%scnet_guard" not in run.stderr


# -- 7. a broken config file ------------------------------------------------------------------


@pytest.mark.parametrize("locale", ["en_US.UTF-8", "zh_CN.UTF-8"])
def test_a_broken_config_file_gives_one_line_and_help_needs_none(
    isolated_config: Path, locale: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated_config.write_text('token = "unterminated\nlanguage = \n', encoding="utf-8")
    # No SCNET_LANG: the language would be looked for in the broken file first.
    monkeypatch.delenv("SCNET_LANG")
    env = {"LC_ALL": locale}
    version = run_scnet(["--version"], env)
    assert version.returncode == 0 and "scnet" in version.stdout, version.stderr
    for words in (["--help"], ["start", "--help"]):
        shown = run_scnet(words, env)
        assert shown.returncode == 0 and "[-h]" in shown.stdout, shown.stderr
    for words in (["notebooks"], ["url", "--id", Sandbox.notebook_id], ["start", "--port", "1"]):
        failed = run_scnet(words, env)
        assert failed.returncode == 2
        assert "Traceback" not in failed.stderr
        lines = failed.stderr.splitlines()
        assert len(lines) == 2, failed.stderr  # the error, and a hint
        assert str(isolated_config) in lines[0]
        assert "SCNET_CONFIG_FILE" in lines[1]


@pytest.mark.slow
def test_a_run_of_the_command_is_told_from_anything_else(
    old_app: tuple[int, subprocess.Popen[bytes], Path],
) -> None:
    port, _process, new = old_app
    # A kernel outside the instance may have anything of its own on the port: only an earlier
    # run of the same app (or the sandbox) shows that the command would run beside it.
    assert local.run_of(port, _new_app(port, new))
    assert local.run_of(port, f"{PY} -m http.server {port} --bind 127.0.0.1 > app.log 2>&1")
    assert not local.run_of(port, f"{PY} other_app.py --port {port}")


@pytest.mark.slow
def test_replace_never_ends_the_kernel_or_the_server_it_runs_under() -> None:
    port = free_port()
    # The server (a notebook's Jupyter) listens on the port; its child (the kernel) asks.
    script = f"""
import socket, subprocess, sys
server = socket.socket()
server.bind(("127.0.0.1", {port}))
server.listen()
asked = subprocess.run(
    [sys.executable, "-c", "from scnet_magic import local; print(local.end_listeners({port}, 2))"],
    capture_output=True, text=True,
)
print(asked.stdout.strip(), asked.returncode)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert run.stdout.split() == ["[]", "0"], run.stderr


@pytest.mark.slow
def test_the_commands_own_process_seen_here_shows_where_it_runs(tmp_path: Path) -> None:
    # A platform that is not on this machine runs the command beside the kernel (a kernel
    # inside the instance): seeing the process start, then go, ends the wait.
    command = f"{PY} -c 'import time; time.sleep(3)' --port 8010"
    since = time.monotonic()
    watch = local.CommandWatch(command, since, here=False, output="the last words")
    with subprocess.Popen(["/bin/sh", "-c", command], start_new_session=True) as proc:
        deadline = time.monotonic() + 20
        while watch.ended() is None and not watch.here and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watch.here and watch.ended() is None  # running: not ended
        proc.wait(timeout=20)
    deadline = time.monotonic() + 20
    while (ended := watch.ended()) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ended is not None and ended.last_lines == "the last words"


def test_a_command_never_seen_here_is_not_taken_for_ended() -> None:
    watch = local.CommandWatch(f"{PY} app_elsewhere.py --port 8010", time.monotonic(), here=False)
    time.sleep(local.GRACE + 0.2)
    assert watch.ended() is None and watch.ended() is None


def test_a_token_nested_past_the_stack_is_no_sandbox_token() -> None:
    payload = base64.urlsafe_b64encode(b"[" * 100_000).decode().rstrip("=")
    assert not local.sandbox_token(f"e30.{payload}.sig")


def test_a_dead_commands_output_is_not_called_its_log(tmp_path: Path) -> None:
    # The shell failed before the program could write its log: its output says why.
    command = "cd /nonexistent && python app.py > app.log 2>&1"
    watch = local.CommandWatch(
        command,
        time.monotonic(),
        here=True,
        output="sh: 1: cd: can't cd to /nonexistent\x1b]0;title\x07\x1b[31m",
        folders=(tmp_path,),
    )
    watch.created -= local.GRACE
    ended = None
    for _ in range(50):
        ended = watch.ended()
        if ended is not None:
            break
        time.sleep(0.1)
    assert ended is not None and ended.log is None
    assert ended.last_lines == "sh: 1: cd: can't cd to /nonexistent"
