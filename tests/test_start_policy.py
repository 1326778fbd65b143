"""One start policy for every front end: a start interrupted before the platform's answer may
have run (each front end says how to check before starting again), and a failure or an
interruption after the answer carries the result, so that it is shown before the error."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from scnet_magic import NotReady, ScnetClient, service
from scnet_magic.models import StartResult
from scnet_magic.sandbox import Sandbox
from scnet_magic.validation import start_request

from conftest import free_port
from frontends import SCNET

ID = Sandbox.notebook_id


def client_of(sb: Sandbox) -> ScnetClient:
    return ScnetClient(base_url=sb.base_url, token=sb.token)


def wait_for_start_request(sb: Sandbox) -> None:
    deadline = time.monotonic() + 30
    while not sb.start_requests():
        assert time.monotonic() < deadline, "the start request never arrived"
        time.sleep(0.02)


@contextmanager
def interrupted_in_flight(sb: Sandbox, pid: int | None = None) -> Iterator[None]:
    """SIGINT to ``pid`` (this process by default) once the sandbox holds the start request
    without answering, as Ctrl-C or Jupyter's "interrupt kernel" would come."""
    sb.delay = 600

    def interrupt() -> None:
        wait_for_start_request(sb)
        os.kill(os.getpid() if pid is None else pid, signal.SIGINT)

    thread = threading.Thread(target=interrupt, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(30)


class StopAtFirstCheck(service.StartObserver):
    def waiting(self, progress: service.Progress) -> None:
        if progress.check is not None:
            raise KeyboardInterrupt


# -- Python -----------------------------------------------------------------------------------


def test_a_wait_that_runs_out_carries_the_result(gateway_sandbox: Sandbox) -> None:
    with client_of(gateway_sandbox) as client, pytest.raises(NotReady) as caught:
        service.start(start_request(ID, free_port()), client, wait=1)
    result = caught.value.result
    assert isinstance(result, StartResult) and result.pending and not result.ready
    assert result.url is not None and result.url in str(caught.value)
    assert len(gateway_sandbox.start_requests()) == 1


def test_an_interruption_during_the_wait_carries_the_result(gateway_sandbox: Sandbox) -> None:
    with client_of(gateway_sandbox) as client, pytest.raises(service.StartInterrupted) as caught:
        service.start(start_request(ID, free_port()), client, wait=60, observer=StopAtFirstCheck())
    assert isinstance(caught.value, KeyboardInterrupt)  # what an uncaught Ctrl-C always was
    result = caught.value.result
    assert isinstance(result, StartResult) and result.pending and result.url
    assert len(gateway_sandbox.start_requests()) == 1


def test_an_interruption_before_the_answer_carries_no_result(sandbox: Sandbox) -> None:
    with (
        client_of(sandbox) as client,
        pytest.raises(service.StartInterrupted) as caught,
        interrupted_in_flight(sandbox),
    ):
        service.start(start_request(ID, free_port()), client)
    assert caught.value.result is None  # the request may have run all the same
    assert len(sandbox.start_requests()) == 1


# -- the front ends ---------------------------------------------------------------------------


def test_the_magic_interrupted_in_flight_says_it_may_have_run(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    with (
        capture_output() as out,
        pytest.raises(UsageError) as caught,
        interrupted_in_flight(sandbox_env),
    ):
        ip.run_line_magic("scnet_start", f"--id {ID} --port {free_port()}")
    assert "it may already have run. Check with %scnet_url before starting again" in str(
        caught.value
    )
    assert "Traceback" not in out.stdout + out.stderr
    assert len(sandbox_env.start_requests()) == 1


def test_the_command_interrupted_in_flight_says_it_may_have_run(sandbox_env: Sandbox) -> None:
    sandbox_env.delay = 600
    proc = subprocess.Popen(
        [*SCNET, "start", "--id", ID, "--port", str(free_port())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_start_request(sandbox_env)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert stdout == ""
    assert (
        "scnet: interrupted while the start request was in flight: it may already have run. "
        "Check with scnet url before starting again" in stderr
    )
    assert "Traceback" not in stderr
    assert len(sandbox_env.start_requests()) == 1
