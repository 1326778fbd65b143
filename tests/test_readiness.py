"""Waiting for readiness: real services behind the sandbox's gateway, over loopback."""

from __future__ import annotations

import itertools
import shlex
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import trustme
from sandbox_faults import FaultySandbox as Sandbox

from scnet_magic import InvalidInput, NotReady, ScnetClient, ScnetError, StartResult
from scnet_magic.readiness import (
    MAX_INTERVAL,
    WaitProgress,
    check_intervals,
    log_file_of,
    not_ready_hint,
    wait_until_ready,
)

from conftest import free_port

PYTHON = shlex.quote(sys.executable)

# Answers 500 to its first three requests, then 200: a service that is up but not healthy yet.
WARMING_UP_SERVER = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    answered = 0

    def do_GET(self):
        Handler.answered += 1
        status, body = (500, b"warming up") if Handler.answered <= 3 else (200, b"ok")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def client_for(sb: Sandbox) -> ScnetClient:
    return ScnetClient(base_url=sb.base_url, token=sb.token)


def start(sb: Sandbox, port: int, command: str | None) -> tuple[ScnetClient, StartResult]:
    client = client_for(sb)
    result = client.start_service(sb.notebook_id, port, command)
    assert result.pending and result.url, "the gateway sandbox answers pending at once"
    return client, result


# -- what counts as up -------------------------------------------------------------------------


@pytest.mark.slow
def test_up_after_a_while_goes_through_502s_and_never_resends_the_start(
    gateway_sandbox: Sandbox,
) -> None:
    port = free_port()
    # The sleep outlasts the start (0.3 s here) by a wide margin, even on a loaded machine, so
    # the first checks meet the gateway's 502.
    command = f"sleep 1.5 && {PYTHON} -m http.server {port} --bind 127.0.0.1"
    client, result = start(gateway_sandbox, port, command)
    seen: list[WaitProgress] = []

    ready = client.wait_until_ready(result, 30, command=command, on_progress=seen.append)

    assert ready.status == 200 and ready.url == result.url
    assert seen and all(p.last.status == 502 for p in seen), "the gateway answered 502 first"
    assert [p.attempts for p in seen] == list(range(1, len(seen) + 1))
    assert ready.attempts == len(seen) + 1
    assert requests.get(result.url, timeout=5).status_code == 200
    assert len(gateway_sandbox.start_requests()) == 1


def test_never_up_raises_not_ready_with_the_url_and_the_log_file(
    gateway_sandbox: Sandbox,
) -> None:
    port = free_port()
    command = "sleep 60 > never.log 2>&1"
    client, result = start(gateway_sandbox, port, command)
    with pytest.raises(NotReady) as info:
        client.wait_until_ready(result, 1, command=command)
    error = info.value
    assert isinstance(error, ScnetError) and isinstance(error, TimeoutError)
    assert error.url == result.url and error.timeout == 1
    assert "502" in error.last
    assert result.url in str(error) and "not ready after 1 s" in str(error)
    assert "never.log" in error.hint
    assert len(gateway_sandbox.start_requests()) == 1


@pytest.mark.slow
def test_a_500_counts_as_up(gateway_sandbox: Sandbox) -> None:
    # Ready means "not a gateway error": a 500 comes from the service itself, so it is up
    # (only unhealthy); waiting for a 200 would hang on services whose root answers 404 or 500.
    assert gateway_sandbox.workdir is not None
    (gateway_sandbox.workdir / "warming_up.py").write_text(WARMING_UP_SERVER)
    port = free_port()
    client, result = start(gateway_sandbox, port, f"sleep 1.5 && {PYTHON} warming_up.py {port}")
    seen: list[WaitProgress] = []

    ready = client.wait_until_ready(result, 30, on_progress=seen.append)

    assert ready.status == 500
    assert seen and seen[0].last.status == 502
    assert requests.get(result.url, timeout=5).status_code == 500  # still warming up
    assert len(gateway_sandbox.start_requests()) == 1


class _Recorder(BaseHTTPRequestHandler):
    requests: list[tuple[str, dict[str, str]]]

    def do_GET(self) -> None:
        self.requests.append((self.path, dict(self.headers)))
        self.send_response(302)
        self.send_header("Location", "/login")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def redirecting_server() -> Iterator[tuple[str, list[tuple[str, dict[str, str]]]]]:
    seen: list[tuple[str, dict[str, str]]] = []
    handler = type("Handler", (_Recorder,), {"requests": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/", seen
    server.shutdown()
    server.server_close()


def test_a_redirect_is_an_answer_and_is_not_followed_and_no_token_is_sent(
    sandbox: Sandbox, redirecting_server: tuple[str, list[tuple[str, dict[str, str]]]]
) -> None:
    url, seen = redirecting_server
    ready = client_for(sandbox).wait_until_ready(url, 5)
    assert ready.status == 302 and ready.attempts == 1
    ((path, headers),) = seen
    assert path == "/"
    assert "token" not in {name.lower() for name in headers}
    assert sandbox.token not in repr(headers)


def test_tls_is_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with Sandbox(tls=context) as https_server, ca.cert_pem.tempfile() as ca_file:
        url = https_server.base_url + "/"
        with pytest.raises(NotReady) as info:
            wait_until_ready(url, 0.5)
        assert "TLS" in info.value.last and "certificate" in info.value.last
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_file)  # now the certificate is trusted
        assert wait_until_ready(url, 5).status not in (502, 503, 504)


# -- the polling itself ------------------------------------------------------------------------


def test_interrupting_from_the_progress_callback_ends_the_wait(
    gateway_sandbox: Sandbox,
) -> None:
    client, result = start(gateway_sandbox, free_port(), None)
    calls: list[WaitProgress] = []

    def stop(progress: WaitProgress) -> None:
        calls.append(progress)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        client.wait_until_ready(result, 60, on_progress=stop)
    assert len(calls) == 1 and calls[0].attempts == 1
    assert len(gateway_sandbox.start_requests()) == 1


def test_at_least_one_check_even_when_the_time_is_already_up(gateway_sandbox: Sandbox) -> None:
    _client, result = start(gateway_sandbox, free_port(), None)
    progress: list[WaitProgress] = []
    assert result.url is not None
    with pytest.raises(NotReady, match="HTTP 502"):
        wait_until_ready(result.url, 1, since=time.monotonic() - 10, on_progress=progress.append)
    assert progress == []


def test_the_interval_starts_at_a_quarter_second_and_grows_to_two() -> None:
    intervals = list(itertools.islice(check_intervals(), 12))
    assert intervals[0] <= 0.25
    assert intervals == sorted(intervals)
    assert intervals[-1] == MAX_INTERVAL == 2.0
    assert max(intervals) == 2.0


@pytest.mark.parametrize("url", ["", "   ", "ftp://example.com/", "http://", "example.com"])
def test_a_url_that_cannot_be_polled_is_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="URL to wait for"):
        wait_until_ready(url, 1)


def test_a_bad_timeout_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(InvalidInput, match="timeout"):
        client_for(sandbox).wait_until_ready("http://127.0.0.1:9/", 0)


def test_a_result_without_url_cannot_be_waited_for(sandbox: Sandbox) -> None:
    result = StartResult("0", "success", False, None, None, None, sandbox.notebook_id, 1, {})
    with pytest.raises(ScnetError, match="no external URL"):
        client_for(sandbox).wait_until_ready(result, 1)


# -- the hint ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "log_file"),
    [
        (
            "python /root/SimpleSDXL/entry_with_update.py --port 1223 > /root/sd.log 2>&1",
            "/root/sd.log",
        ),
        ("cd app && python app.py >> logs/app.log", "logs/app.log"),
        ("python app.py &> 'my app.log'", "my app.log"),
        ("python app.py 2>&1 >out.log", "out.log"),
        ("python app.py", None),
        ("python app.py 2>&1 | tee out.log", None),
        ("echo 'unbalanced", None),
        (None, None),
    ],
)
def test_log_file_of_the_command(command: str | None, log_file: str | None) -> None:
    assert log_file_of(command) == log_file


def test_hints_name_what_to_look_at() -> None:
    assert "/root/sd.log" in not_ready_hint("python a.py > /root/sd.log 2>&1", 1223)
    without_log = not_ready_hint("python a.py", 1223)
    assert "> service.log 2>&1" in without_log and "port 1223" in without_log
    assert "No command was given" in not_ready_hint(None, 1223)
    assert "log" in not_ready_hint()
