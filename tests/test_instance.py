"""The instance around the service, end to end: from a Terminated sandbox instance to a live URL
and back, through Python, the magics, the form and the ``scnet`` command; and what goes wrong
(unknown id, a boot that fails, a stop of a stopped instance, timeouts)."""

from __future__ import annotations

import html
import itertools
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from sandbox_faults import FaultySandbox as Sandbox

from scnet_magic import InstanceError, InvalidInput, ScnetClient, service, start_service
from scnet_magic.errors import ApiError, InstanceTimeout, ScnetError
from scnet_magic.lifecycle import poll_intervals
from scnet_magic.models import InstanceProgress
from scnet_magic.startform import StartForm, confirm_box
from scnet_magic.validation import start_request

from conftest import Terminal, free_port
from frontends import run_scnet

STOPPED = "1896050410550136834"  # "old-experiment", Terminated in the sandbox
RUNNING = "1896050410550136833"
UNKNOWN = "1234567890123456789"
DETAIL = "/ai/openapi/v2/notebook/detail"
BOOT = "/ac/openapi/v2/notebook/actions/start"
STOP = "/ai/openapi/v2/notebook/actions/stop"
START = "/ai/openapi/v2/notebook/customize-service/actions/start"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Sandbox]:
    """Execution on, boots and stops that take a fraction of a second."""
    workdir = tmp_path / "instance"
    workdir.mkdir()
    with Sandbox(execute=True, workdir=workdir, ready_timeout=5.0) as sb:
        sb.boot_seconds = 0.6
        sb.stop_seconds = 0.3
        yield sb


@pytest.fixture
def live_env(monkeypatch: pytest.MonkeyPatch, live: Sandbox) -> Sandbox:
    monkeypatch.setenv("SCNET_BASE_URL", live.base_url)
    monkeypatch.setenv("SCNET_AC_URL", live.ac_url)
    monkeypatch.setenv("SCNET_TOKEN", live.token)
    monkeypatch.setenv("SCNET_NOTEBOOK_ID", STOPPED)
    return live


def client_of(sb: Sandbox) -> ScnetClient:
    return ScnetClient(base_url=sb.base_url, token=sb.token, ac_url=sb.ac_url)


def server_command(port: int) -> str:
    return f"{sys.executable} -m http.server {port} --bind 127.0.0.1 > server.log 2>&1"


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=3).status_code == 200
    except requests.ConnectionError:
        return False


def paths(sb: Sandbox) -> list[tuple[str, str]]:
    return [(r.role, r.path) for r in sb.requests]


# -- Python -----------------------------------------------------------------------------------


class BootSeen(service.StartObserver):
    """Records each status the boot went through ("boot sent" when it was sent)."""

    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    def booting(self, progress: InstanceProgress | None) -> None:
        self.seen.append(progress.status if progress else "boot sent")


@pytest.mark.slow
def test_python_boot_start_stop_loop(live: Sandbox) -> None:
    port = free_port()
    seen: list[str] = []
    with client_of(live) as client:
        assert client.notebook(STOPPED).status == "Terminated"
        result = service.start(
            start_request(STOPPED, port, server_command(port)),
            client,
            boot=True,
            wait=30,
            observer=BootSeen(seen),
        )
        assert result.ready and result.url is not None and answers(result.url)
        assert seen[0] == "boot sent" and "Creating" in seen
        detail = client.notebook(STOPPED)
        assert (detail.status, detail.custom_port) == ("Running", port)
        assert detail.command == server_command(port)
        listed = {n.id: n for n in client.list_notebooks().notebooks}
        assert listed[STOPPED].custom_port == port

        stopped = client.stop_notebook(STOPPED)
        assert not stopped.already_stopped and stopped.save_env
        assert client.wait_for_notebook(STOPPED, "Terminated", timeout=10).status == "Terminated"
        assert not answers(result.url)
    # The boot went to the platform host, once; the stop to the region's address.
    assert paths(live).count(("platform", BOOT)) == 1
    assert [r.body for r in live.requests if r.path == STOP] == [
        {"notebookId": STOPPED, "saveEnv": True}
    ]


def test_plain_start_in_a_stopped_instance_says_boot_and_sends_one_start(
    live: Sandbox,
) -> None:
    with client_of(live) as client, pytest.raises(ApiError) as caught:
        service.start(start_request(STOPPED, free_port()), client)
    assert caught.value.code == "716866"  # the platform's answer, with the way out
    assert (
        caught.value.hint
        == "The instance is Terminated. Start it first with --boot (boot=True from Python)."
    )
    assert len(live.start_requests()) == 1
    assert ("platform", BOOT) not in paths(live)


def test_a_start_on_another_port_replaces_the_first(live: Sandbox) -> None:
    first, second = free_port(), free_port()
    with client_of(live) as client:
        one = service.start(start_request(RUNNING, first, server_command(first)), client, wait=20)
        assert one.url is not None and answers(one.url)
        two = service.start(
            start_request(RUNNING, second, server_command(second)), client, boot=True, wait=20
        )
        # --boot had the record at hand: the result says what it replaced.
        assert two.replaced_port == first
        assert f"port {first}" in repr(two)
        assert two.url is not None and answers(two.url)
        assert not answers(one.url)
        assert client.notebook(RUNNING).custom_port == second


# -- the magics -------------------------------------------------------------------------------


@pytest.mark.slow
def test_magic_boot_wait_then_stop(ip: InteractiveShell, live_env: Sandbox) -> None:
    port = free_port()
    line = f'--boot --wait 30 --port {port} --command "{server_command(port)}"'
    result = ip.run_line_magic("scnet_start", line)
    assert result.ready and result.url is not None and answers(result.url)

    found = ip.run_line_magic("scnet_url", "")
    assert found.instance.custom_port == port and found.instance.status == "Running"
    assert f"custom port {port}" in repr(found)

    stopped = ip.run_line_magic("scnet_stop", "--yes")
    assert not stopped.already_stopped
    with client_of(live_env) as client:
        client.wait_for_notebook(STOPPED, "Terminated", timeout=10)
    assert not answers(result.url)
    again = ip.run_line_magic("scnet_stop", "--yes --discard-env")
    assert again.already_stopped


@pytest.mark.slow
def test_magic_boot_in_a_terminal_rewrites_one_line(
    ip: InteractiveShell, live_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    live_env.boot_seconds = 1.5  # a few looks at the instance while it boots
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    # The plain InteractiveShell prints displays as terminal IPython does.
    outcome = ip.run_cell(f"r = %scnet_start --boot --port {free_port()}")
    assert outcome.success, outcome.error_in_exec
    assert ip.user_ns["r"].pending
    written = screen.getvalue()
    # "Starting…", the boot sent and each status seen: one line, rewritten with \r.
    progress = [line for line in written.split("\n") if "Starting" in line or "Instance" in line]
    assert len(progress) == 1, written
    assert progress[0].count("Creating") >= 2
    assert "…\r\x1b[KStarting notebook instance" in progress[0]
    assert progress[0].count("\r\x1b[K") == progress[0].count("…") + 1  # each one written over
    assert written.count("Started, not answering yet") == 1


def test_magic_without_boot_is_refused_with_the_hint(
    ip: InteractiveShell, live_env: Sandbox
) -> None:
    with pytest.raises(UsageError, match=r"716866.*The instance is Terminated\. Add --boot"):
        ip.run_line_magic("scnet_start", f"--port {free_port()}")


def test_magic_stop_asks_for_the_name_in_a_terminal(
    ip: InteractiveShell,
    live_env: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SCNET_NOTEBOOK_ID", RUNNING)
    monkeypatch.setattr("builtins.input", lambda prompt: "not-the-name")
    assert ip.run_line_magic("scnet_stop", "") is None
    shown = capsys.readouterr().out
    assert "ends every process" in shown and "Not stopped." in shown
    assert STOP not in [p for _r, p in paths(live_env)]
    monkeypatch.setattr("builtins.input", lambda prompt: "sdxl-webui")
    assert ip.run_line_magic("scnet_stop", "").notebook_id == RUNNING


def test_the_confirm_button_stops_once(live: Sandbox) -> None:
    with client_of(live) as client:
        box = confirm_box(
            "ends every process",
            "Stop the instance",
            lambda: repr(client.stop_notebook(RUNNING)),
        )
        go, cancel = box.children[1].children
        # A card like the results, and a button wide enough for its label.
        assert 'class="scnet-result scnet-pending"' in box.children[0].value
        assert go.layout.width == "auto"
        go.click()
        go.click()  # disabled after the first: one request
    assert "is stopping" in box.children[2].value
    assert go.disabled and cancel.disabled
    assert sum(1 for _r, p in paths(live) if p == STOP) == 1


# -- the form -------------------------------------------------------------------------------


@pytest.mark.slow
def test_form_boots_then_starts(live_env: Sandbox) -> None:
    port = free_port()
    form = StartForm(port=str(port), command=server_command(port), wait=30)
    assert form.wait(20)
    assert f"old-experiment · Terminated · {STOPPED}" in [
        label for label, _value in form.notebook_menu.options
    ]
    form.notebook_id.value = STOPPED
    assert "The instance is Terminated." in html.unescape(form.port_note.value)
    form.start_button.click()
    assert form.wait(60)
    assert form.error is not None and "Start the instance if it is stopped" in form.error.hint
    assert len(live_env.start_requests()) == 1  # the platform refused it; nothing ran

    form.boot_box.value = True
    form.start_button.click()
    assert form.wait(60)
    assert form.error is None and form.result is not None and form.result.ready
    assert form.result.url is not None and answers(form.result.url)
    # The list said where the service was: another port now shows the note.
    form.port.value = str(port + 1)
    assert f"replaces the custom service on port {port}" in html.unescape(form.port_note.value)


# -- the scnet command ------------------------------------------------------------------------


@pytest.mark.slow
def test_scnet_boot_then_stop(live_env: Sandbox) -> None:
    port = free_port()
    run = run_scnet(
        ["start", "--boot", "--wait", "30", "--port", str(port), "--command", server_command(port)]
    )
    assert run.returncode == 0, run.stderr
    assert "Creating" in run.stderr and "Service is ready" in run.stdout
    url = next(w for w in run.stdout.split() if w.startswith("http://127.0.0.1"))
    assert answers(url)

    shown = run_scnet(["url"])
    assert f"custom port {port}" in shown.stdout

    refused = run_scnet(["stop"], stdin="wrong\n")
    assert refused.returncode == 1 and "type the instance's name" in refused.stderr.lower()
    run = run_scnet(["stop"], stdin="old-experiment\n")
    assert run.returncode == 0, run.stderr
    assert "is stopping" in run.stdout
    with client_of(live_env) as client:
        client.wait_for_notebook(STOPPED, "Terminated", timeout=10)
    assert not answers(url)
    run = run_scnet(["stop", "--yes", "--json"])
    assert run.returncode == 0 and '"already_stopped": true' in run.stdout


def test_scnet_start_without_boot(live_env: Sandbox) -> None:
    run = run_scnet(["start", "--port", str(free_port())])
    assert run.returncode == 1
    assert "716866" in run.stderr and "The instance is Terminated. Add --boot" in run.stderr


# -- what goes wrong ------------------------------------------------------------------------


def test_unknown_id_names_the_endpoint(live: Sandbox) -> None:
    with client_of(live) as client:
        for call, endpoint in (
            (lambda: client.notebook(UNKNOWN), DETAIL),
            (lambda: client.boot_notebook(UNKNOWN), BOOT),
            (lambda: client.stop_notebook(UNKNOWN), STOP),
        ):
            with pytest.raises(ApiError) as caught:
                call()
            assert caught.value.code == "10004" and endpoint in str(caught.value)


def test_boot_of_an_instance_that_fails(live: Sandbox) -> None:
    live.failing.add(STOPPED)
    with client_of(live) as client, pytest.raises(InstanceError) as caught:
        service.start(start_request(STOPPED, free_port()), client, boot=True)
    assert caught.value.status == "Failed" and "Failed" in str(caught.value)
    assert live.start_requests() == []  # nothing started in an instance that failed


def test_boot_wait_times_out_naming_the_last_status(live: Sandbox) -> None:
    live.boot_seconds = 30
    with client_of(live) as client:
        client.boot_notebook(STOPPED)
        with pytest.raises(InstanceTimeout) as caught:
            client.wait_for_notebook(STOPPED, timeout=0.8)
    assert caught.value.status == "Creating" and "Creating" in str(caught.value)


@pytest.mark.slow
def test_boot_waits_as_long_as_asked(ip: InteractiveShell, live_env: Sandbox) -> None:
    # --boot SECONDS bounds the wait for the instance (600 s when left out), in the magic, the
    # command and Python; a bad number is refused before anything is sent.
    live_env.boot_seconds = 30
    with pytest.raises(UsageError, match=r"not Running after 1\.5 s \(last status: Creating\)"):
        ip.run_line_magic("scnet_start", f"--boot 1.5 --port {free_port()}")
    run = run_scnet(["start", "--boot", "1.5", "--port", str(free_port())])
    assert run.returncode != 0 and "not Running after 1.5 s" in run.stderr
    with pytest.raises(InstanceTimeout, match=r"after 1\.5 s"):
        start_service(None, free_port(), boot=1.5)
    live_env.clear_log()
    with pytest.raises(UsageError, match="positive number of seconds"):
        ip.run_line_magic("scnet_start", f"--boot 0 --port {free_port()}")
    with pytest.raises(InvalidInput, match="positive number of seconds"):
        start_service(None, free_port(), boot=-1)
    assert live_env.requests == []


def test_a_start_in_an_instance_on_its_way_up_says_to_wait_not_to_boot(live: Sandbox) -> None:
    # The instance already boots: the hint is to wait for it (which --boot does), not to
    # "start it first", for the start refused and for the one that asks before a guard.
    live.boot_seconds = 30
    with client_of(live) as client:
        client.boot_notebook(STOPPED)
        for protect in (None, lambda: "a long password"):
            with pytest.raises(ScnetError) as caught:
                service.start(start_request(STOPPED, free_port()), client, protect=protect)
            assert "on its way to Running" in caught.value.user_message()
            assert "Start it first" not in caught.value.user_message()
    # The unprotected start was sent (and refused); the protected one asked first, sent nothing.
    assert len(live.start_requests()) == 1


def test_detail_read_tolerantly(live: Sandbox) -> None:
    live.answers[DETAIL] = {
        "code": 0,
        "msg": "success",
        "data": [{"id": STOPPED, "notebookStatus": "Running", "customsizePort": 7860}],
    }
    with client_of(live) as client:
        found = client.notebook(STOPPED)
    assert (found.status, found.custom_port, found.command, found.name) == (
        "Running",
        7860,
        None,
        "",
    )
    live.answers[DETAIL] = {"code": "0", "msg": "success", "data": "nope"}
    with client_of(live) as client, pytest.raises(Exception, match=DETAIL):
        client.notebook(STOPPED)


# -- readiness ------------------------------------------------------------------------------


def test_a_local_port_alone_never_makes_ready(live: Sandbox) -> None:
    """An unrelated service on this machine's port: the external URL still decides."""
    from scnet_magic.errors import NotReady
    from scnet_magic.readiness import wait_until_ready

    with socket.socket() as unrelated:
        unrelated.bind(("127.0.0.1", 0))
        unrelated.listen()
        port = unrelated.getsockname()[1]
        url = live.external_url(RUNNING, free_port())  # answers 502: nothing behind it
        with pytest.raises(NotReady):
            wait_until_ready(url, 1.0, local_port=port)


def test_cli_help_lists_stop() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "scnet_magic", "stop", "--help"], capture_output=True, text=True
    )
    assert run.returncode == 0 and "--discard-env" in run.stdout and "--yes" in run.stdout


def test_status_looks_start_at_half_a_second_and_grow_to_five() -> None:
    intervals = list(itertools.islice(poll_intervals(), 12))
    assert intervals[:3] == [0.5, 0.75, 1.125]
    assert intervals == sorted(intervals)
    assert intervals[-1] == max(intervals) == 5.0
