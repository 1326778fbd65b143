"""``--protect`` end to end against the sandbox with execution on: the magic, the cell magic,
the ``scnet`` command and Python start a real web server behind a real guard process, and the
sandbox's gateway (the external URL) leads to the guard's port, as the platform's would."""

from __future__ import annotations

import getpass
import json
import shlex
import sys
from pathlib import Path

import pytest
import requests
import websocket
from guard_helpers import FOREIGN_ORIGIN, SERVICE, basic, big_down_and_up, refused_websocket
from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from protect_helpers import (
    PASSWORD,
    plain_server,
    serve_command,
    sign_in,
    visit,
    write_page,
)

from scnet_magic import display, i18n, service
from scnet_magic.errors import GuardFailed, GuardUnreachable, InvalidInput
from scnet_magic.guard import list_guards, start_guard
from scnet_magic.models import StartResult
from scnet_magic.sandbox import Sandbox
from scnet_magic.startform import StartForm

from conftest import free_port
from frontends import run_scnet

ID = Sandbox.notebook_id
TERMINATED = "1896050410550136834"
WAIT = "30"


@pytest.fixture
def instance(exec_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The sandbox with execution on, the environment pointing at it, a page to serve."""
    assert exec_sandbox.workdir is not None
    write_page(exec_sandbox.workdir)
    monkeypatch.setenv("SCNET_BASE_URL", exec_sandbox.base_url)
    monkeypatch.setenv("SCNET_TOKEN", exec_sandbox.token)
    return exec_sandbox


def typed_password(monkeypatch: pytest.MonkeyPatch, *answers: str) -> list[str]:
    """The hidden prompt answers these in turn; the prompts asked are returned."""
    prompts: list[str] = []
    queue = list(answers)

    def ask(prompt: str = "") -> str:
        prompts.append(prompt)
        return queue.pop(0)

    monkeypatch.setattr(getpass, "getpass", ask)
    return prompts


def check_started(sandbox: Sandbox, result: StartResult, port: int) -> None:
    """The platform was asked to expose the guard's port, the command went as written."""
    (guard,) = list_guards()
    assert result.protected and result.ready
    assert result.port == port == guard.upstream_port
    assert result.guard_port == guard.port and result.guard_id == guard.guard_id
    assert result.to_dict()["protected"] is True
    assert result.to_dict()["guard_port"] == guard.port
    (sent,) = sandbox.start_requests()
    assert isinstance(sent.body, dict)
    assert sent.body["customizePort"] == str(guard.port)
    assert sent.body["command"] == serve_command(port)
    assert result.url is not None
    visit(result.url)


# -- every front end, end to end --------------------------------------------------------------


def test_line_magic(
    ip: InteractiveShell, instance: Sandbox, guard_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = typed_password(monkeypatch, PASSWORD, PASSWORD)
    port = free_port()
    line = f'--id {ID} --port {port} --command "{serve_command(port)}" --protect --wait {WAIT}'
    with capture_output() as shown:
        result = ip.run_line_magic("scnet_start", line)
    assert len(prompts) == 2 and all("hidden" in prompt for prompt in prompts[:1])
    check_started(instance, result, port)
    everything = shown.stdout + shown.stderr + "".join(str(o.data) for o in shown.outputs)
    assert "\N{LOCK} asks for a password" in everything
    assert PASSWORD not in everything


@pytest.mark.slow
def test_cell_magic_with_the_password_from_the_environment(
    ip: InteractiveShell, instance: Sandbox, guard_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = typed_password(monkeypatch)  # no answer: asking would fail the test
    monkeypatch.setenv("SCNET_GUARD_PASSWORD", PASSWORD)
    port = free_port()
    result = ip.run_cell_magic(
        "scnet_start", f"--id {ID} --port {port} --protect --wait {WAIT}", serve_command(port)
    )
    assert prompts == []
    check_started(instance, result, port)


@pytest.mark.slow
def test_python(instance: Sandbox, guard_dir: Path) -> None:
    port = free_port()
    result = service.start_service(ID, port, serve_command(port), protect=PASSWORD, wait=30)
    check_started(instance, result, port)
    # Started again for the same port with the same password: the running guard is reused.
    again = service.start_service(ID, port, None, protect=PASSWORD, wait=30)
    assert again.guard_port == result.guard_port and len(list_guards()) == 1
    with pytest.raises(GuardFailed, match="another password"):
        service.start_service(ID, port, None, protect=PASSWORD + "2")


@pytest.mark.slow
def test_command(instance: Sandbox, guard_dir: Path) -> None:
    port = free_port()
    words = ["start", "--id", ID, "--port", str(port), "--command", serve_command(port)]
    words += ["--protect", "--password-stdin", "--token-stdin", "--wait", WAIT, "--json"]
    run = run_scnet(words, {"SCNET_TOKEN": ""}, f"{instance.token}\n{PASSWORD}\n")
    assert run.returncode == 0, run.stderr
    fields = json.loads(run.stdout)
    (guard,) = list_guards()  # the command has ended; its guard runs on
    assert fields["protected"] is True and fields["guard_port"] == guard.port
    assert fields["port"] == port and fields["status"] == "ready"
    visit(fields["url"])
    assert PASSWORD not in run.stdout + run.stderr


@pytest.mark.slow
def test_form(instance: Sandbox, guard_dir: Path) -> None:
    port = free_port()
    form = StartForm()
    form.notebook_id.value, form.port.value = ID, str(port)
    form.command.value = serve_command(port)
    form.wait_ready.value, form.wait_seconds.value = True, 30
    assert form.protect.password.layout.display == "none"
    form.protect.checkbox.value = True
    assert form.protect.password.layout.display is None
    form.start_button.click()  # ticked, but no password typed: refused next to the fields
    assert form.wait(10) and "No password to protect" in form.problems.value
    assert instance.start_requests() == [] and list_guards() == []
    form.protect.password.value = PASSWORD
    assert form.protect.password.value == "" and "ready" in form.protect.note.value
    form.start_button.click()
    assert form.wait(60) and form.error is None, form.error
    assert form.result is not None
    check_started(instance, form.result, port)
    assert display.LOCK_ICON in form.result_area.value
    assert "ready" not in form.protect.note.value  # the typed password was used once


@pytest.mark.slow
def test_guard_magic_and_verb_list_and_stop(
    ip: InteractiveShell, instance: Sandbox, guard_dir: Path
) -> None:
    port = free_port()
    result = service.start_service(ID, port, serve_command(port), protect=PASSWORD)
    assert not result.ready  # no wait asked for
    with capture_output() as listed:
        assert ip.run_line_magic("scnet_guard", "--list") is None
    assert f"port {result.guard_port} guards port {port}" in listed.stdout
    verb = run_scnet(["guard", "--list"])
    assert verb.returncode == 0 and f"port {result.guard_port} guards port {port}" in verb.stdout
    with capture_output() as stopped:
        ip.run_line_magic("scnet_guard", f"--stop {result.guard_port}")
    assert "stopped the guard" in stopped.stdout and list_guards() == []
    with pytest.raises(UsageError, match=r"No guard runs on port \d+; %scnet_guard --list shows"):
        ip.run_line_magic("scnet_guard", f"--stop {result.guard_port}")
    again = run_scnet(["guard", "--stop", str(result.guard_port)])
    assert again.returncode == 1 and "No guard runs on port" in again.stderr
    assert "no guard runs here" in run_scnet(["guard", "--list"]).stdout


@pytest.mark.parametrize("value", ["-3", "x" * 5000, "٣"])
def test_guard_magic_checks_the_stop_port_as_the_verb_does(
    ip: InteractiveShell, guard_dir: Path, value: str
) -> None:
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("scnet_guard", f"--stop={value}")
    assert "--stop takes a guard's port or 'all'" in str(info.value)
    assert len(str(info.value)) < 200  # a long value is cut short, not quoted whole


# -- WebSockets through the external URL -----------------------------------------------------


@pytest.fixture
def protected_echo(instance: Sandbox, guard_dir: Path) -> tuple[str, int]:
    """A WebSocket echo service (tests/guard_service.py) started with --protect: its external
    URL (the sandbox's gateway, leading to the guard) and the service's own port."""
    port = free_port()
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(SERVICE))} {port}"
    result = service.start_service(ID, port, command, protect=PASSWORD, wait=30)
    assert result.ready and result.protected and result.url is not None
    return result.url.rstrip("/"), port


def ws(url: str) -> str:
    assert url.startswith("http://")
    return "ws://" + url.removeprefix("http://") + "/ws"


def service_websockets(port: int) -> int:
    """How many WebSockets the service opened (asked on its own port, not through the guard)."""
    seen: list[str] = requests.get(f"http://127.0.0.1:{port}/log", timeout=5).json()
    return seen.count("WEBSOCKET /ws")


@pytest.mark.slow
@pytest.mark.parametrize("credential", ["cookie", "basic"])
def test_websocket_through_the_external_url_with_a_credential(
    protected_echo: tuple[str, int], credential: str
) -> None:
    url, port = protected_echo
    if credential == "cookie":
        header = [f"Cookie: {sign_in(url)}; a=b"]
    else:
        header = [f"Authorization: {basic(PASSWORD)['Authorization']}"]
    connection = websocket.create_connection(
        ws(url), header=header, subprotocols=["chat.v2", "chat.v1"], timeout=10
    )
    try:
        greeting = json.loads(connection.recv())
        assert greeting["subprotocol"] == connection.subprotocol == "chat.v2"
        assert greeting["authorization"] is None  # the guard's credential stays with it
        assert greeting["cookie"] == ("a=b" if credential == "cookie" else None)
        connection.send("ping ☃")
        assert connection.recv() == "ping ☃"
        connection.send_binary(b"\x00\x01" * 50_000)
        assert connection.recv() == b"\x00\x01" * 50_000
        connection.send_close(websocket.STATUS_NORMAL)
        opcode, _ = connection.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
    finally:
        connection.close()
    assert service_websockets(port) == 1


@pytest.mark.slow
def test_websocket_through_the_external_url_without_credentials_is_refused(
    protected_echo: tuple[str, int],
) -> None:
    url, port = protected_echo
    assert refused_websocket(ws(url)) == 401
    wrong = basic(PASSWORD + "x")["Authorization"]
    assert refused_websocket(ws(url), header=[f"Authorization: {wrong}"]) == 401
    assert service_websockets(port) == 0


@pytest.mark.slow
def test_websocket_through_the_external_url_from_another_site_is_refused(
    protected_echo: tuple[str, int],
) -> None:
    url, port = protected_echo
    signed = basic(PASSWORD)["Authorization"]
    refused = refused_websocket(ws(url), header=[f"Authorization: {signed}"], origin=FOREIGN_ORIGIN)
    assert refused == 403
    assert service_websockets(port) == 0


# -- streams and large bodies through the external URL ---------------------------------------


@pytest.mark.slow
def test_server_sent_events_through_the_external_url_arrive_one_by_one(
    protected_echo: tuple[str, int],
) -> None:
    url, port = protected_echo
    cookie = {"Cookie": sign_in(url)}
    with requests.get(f"{url}/sse/outside", headers=cookie, stream=True, timeout=10) as stream:
        lines = stream.iter_lines()
        # The service holds its second event until released (on its own port): the first one
        # has come through the gateway and the guard while the stream is still open.
        assert next(lines) == b"data: first"
        released = requests.get(f"http://127.0.0.1:{port}/release/outside", timeout=5)
        assert released.status_code == 200
        rest = [line for line in lines if line]
    assert rest == [b"data: second"]


@pytest.mark.slow
def test_200_mb_down_and_up_through_the_external_url_in_bounded_memory(
    protected_echo: tuple[str, int],
) -> None:
    url, _port = protected_echo
    cookie = sign_in(url)  # scrypt's 16 MiB are in the baseline
    (guard,) = list_guards()
    big_down_and_up(url, cookie, guard.pid)


# -- a kernel outside the instance -----------------------------------------------------------


def test_a_url_that_leads_to_another_guard_stops_ours(
    ip: InteractiveShell, instance: Sandbox, guard_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The instance is another machine: its port G is somebody else's guard (the sandbox's
    gateway goes to an impostor). The front end says so and stops the guard it started."""
    typed_password(monkeypatch, PASSWORD, PASSWORD)
    with plain_server(guard_dir.parent, free_port()) as service_port:
        impostor = start_guard(service_port, "another password", host="127.0.0.1")
        instance.elsewhere = impostor.port
        port = free_port()
        line = f'--id {ID} --port {port} --command "{serve_command(port)}" --protect --wait 20'
        with pytest.raises(UsageError) as info:
            ip.run_line_magic("scnet_start", line)
    message = str(info.value)
    assert "does not reach this machine's guard" in message
    assert "kernel running inside the instance" in message and "another guard" in message
    assert list_guards() == [impostor]  # ours is stopped, the other one left alone


def test_a_url_that_leads_to_no_guard_stops_ours(instance: Sandbox, guard_dir: Path) -> None:
    with plain_server(guard_dir.parent, free_port()) as other:
        instance.elsewhere = other
        port = free_port()
        with pytest.raises(GuardUnreachable, match="does not reach this machine's guard") as info:
            service.start_service(ID, port, serve_command(port), protect=PASSWORD, wait=20)
    assert "something that is not a guard" in info.value.hint
    assert list_guards() == []


def test_a_failed_start_leaves_no_guard_behind(instance: Sandbox, guard_dir: Path) -> None:
    with pytest.raises(Exception, match="716866"):
        service.start_service(TERMINATED, free_port(), "true", protect=PASSWORD)
    assert list_guards() == []


# -- bad input: refused before anything starts -----------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        f"--id {ID} --port 8000 --protect {PASSWORD!r}",
        f"--id {ID} --port 8000 --protect={PASSWORD!r}",
        f"--protect hunter2 --id {ID} --port 8000",
        f"--id {ID} --port 8000 --protect -hunter2",  # a password may start with "-"
        f"--id {ID} --port 8000 --protect --hunter2",
    ],
)
def test_a_password_on_the_line_is_refused_unquoted(
    ip: InteractiveShell, instance: Sandbox, guard_dir: Path, line: str
) -> None:
    with capture_output() as shown, pytest.raises(UsageError) as info:
        ip.run_line_magic("scnet_start", line)
    assert "--protect takes no value" in str(info.value)
    for secret in (PASSWORD, "hunter2"):
        assert secret not in str(info.value) + shown.stdout + shown.stderr
    assert instance.requests == [] and list_guards() == []


@pytest.mark.parametrize(
    ("answers", "problem"),
    [
        (("",), "The password is empty"),
        ((PASSWORD, PASSWORD + "x"), "The two passwords differ"),
        (("two\nlines",), "line breaks"),
    ],
)
def test_bad_passwords_are_refused(
    ip: InteractiveShell,
    instance: Sandbox,
    guard_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    answers: tuple[str, ...],
    problem: str,
) -> None:
    typed_password(monkeypatch, *answers)
    with pytest.raises(UsageError, match=problem) as info:
        ip.run_line_magic("scnet_start", f"--id {ID} --port 8000 --protect")
    assert PASSWORD not in str(info.value)
    # Asked once the instance is known to run: its record was read, nothing was started.
    assert instance.start_requests() == [] and list_guards() == []


def test_no_port_is_refused_before_the_password_is_asked(
    ip: InteractiveShell, instance: Sandbox, guard_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = typed_password(monkeypatch)
    with pytest.raises(UsageError, match="--port is required"):
        ip.run_line_magic("scnet_start", f"--id {ID} --protect")
    assert prompts == [] and instance.requests == []


def test_an_empty_password_from_the_environment_or_python(
    ip: InteractiveShell, instance: Sandbox, guard_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCNET_GUARD_PASSWORD", "")
    with pytest.raises(UsageError, match="The password is empty"):
        ip.run_line_magic("scnet_start", f"--id {ID} --port 8000 --protect")
    with pytest.raises(InvalidInput, match="the password is empty"):
        service.start_service(ID, 8000, None, protect="")
    with pytest.raises(InvalidInput, match="the password is empty"):
        service.start_service(ID, 8000, None, protect=True)
    assert instance.requests == [] and list_guards() == []


def test_where_no_prompt_can_ask_the_environment_is_named(
    ip: InteractiveShell, instance: Sandbox, guard_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_stdin(prompt: str = "") -> str:
        raise StdinNotImplementedError("no stdin")

    monkeypatch.setattr(getpass, "getpass", no_stdin)
    with pytest.raises(UsageError, match="SCNET_GUARD_PASSWORD"):
        ip.run_line_magic("scnet_start", f"--id {ID} --port 8000 --protect")
    assert instance.start_requests() == []


@pytest.mark.parametrize(
    ("words", "stdin", "problem"),
    [
        (["--protect=hunter2"], "", "--protect takes no value"),
        (["--protect", "hunter2"], "", "--protect takes no value"),
        (["--protect", "-hunter2"], "", "--protect takes no value"),
        (["--protect", "--hunter2"], "", "--protect takes no value"),
        (["--protect", "--password-stdin=hunter2"], "", "--password-stdin takes no value"),
        (["--protect", "--password-stdin"], "\n", "The password is empty"),
        (["--password-stdin"], "hunter2\n", "--password-stdin goes with --protect"),
        (["--protect"], "", "No password for --protect"),  # no terminal, no variable
    ],
)
def test_command_bad_input(
    instance: Sandbox, guard_dir: Path, words: list[str], stdin: str, problem: str
) -> None:
    run = run_scnet(["start", "--id", ID, "--port", "8000", *words], {}, stdin)
    assert run.returncode == 2 and problem in run.stderr, run.stderr
    assert "hunter2" not in run.stdout + run.stderr
    assert instance.requests == [] and list_guards() == []


# -- how a protected result looks ------------------------------------------------------------


@pytest.mark.parametrize(("language", "line"), [("en", "asks for a password"), ("zh", "密码")])
def test_a_protected_result_shows_a_lock_and_one_line(language: str, line: str) -> None:
    result = StartResult(
        code="0",
        msg="success",
        exec_success=True,
        error_msg=None,
        output=None,
        url="https://c-1.ksai.scnet.cn:58043/",
        notebook_id=ID,
        port=7860,
        raw={},
    ).guarded_by(41234, "abc123", 7860)
    with i18n.using(language):
        text, page = display.start_text(result), display.start_html(result)
    # An icon on the page: no emoji font needed there.
    assert "\N{LOCK} " in text and display.LOCK_ICON in page and "\N{LOCK}" not in page
    for shown in (text, page):
        assert line in shown and "41234" in shown
        assert "abc123" not in shown  # the guard's id is a detail for the wait, not the user
    assert "abc123" not in repr(result)
