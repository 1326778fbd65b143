"""``scnet guard``: a guard started by hand at a real terminal (the password typed twice at a
hidden prompt), and its errors in the words and exit codes of every other ``scnet`` verb."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from protect_helpers import PASSWORD

from scnet_magic.guard import list_guards, start_guard

from conftest import free_port
from frontends import SCNET, run_scnet


class PtySession:
    """A command on a pseudo-terminal of its own, its controlling terminal (what getpass
    opens): what it writes is read as a person would see it, and lines are typed into it."""

    def __init__(self, args: list[str]) -> None:
        pid, self.fd = pty.fork()
        if pid == 0:  # the child: become the command
            os.execv(args[0], args)
        self.pid = pid
        self.screen = ""

    def _read(self, timeout: float) -> bool:
        """Add what the command wrote within ``timeout`` to the screen; False once it closed
        the terminal."""
        if select.select([self.fd], [], [], timeout)[0]:
            try:
                self.screen += os.read(self.fd, 4096).decode(errors="replace")
            except OSError:  # the command ended
                return False
        return True

    def expect(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            left = deadline - time.monotonic()
            assert left > 0 and self._read(left), f"{text!r} did not show: {self.screen!r}"

    def type(self, line: str) -> None:
        os.write(self.fd, (line + "\n").encode())

    def exit_code(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._read(0.05)
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                self._read(0)
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"still running; the screen: {self.screen!r}")


def scnet_on_a_terminal(*words: str) -> PtySession:
    return PtySession([*SCNET, *words])


def test_a_guard_started_at_a_terminal_asks_twice_without_echo(guard_dir: Path) -> None:
    upstream = free_port()
    session = scnet_on_a_terminal("guard", "--port", str(upstream))
    session.expect("Password for the service (hidden): ")
    session.type(PASSWORD)
    session.expect("The same password again: ")
    session.type(PASSWORD)
    assert session.exit_code() == 0, session.screen
    (record,) = list_guards()
    assert record.upstream_port == upstream
    assert f"port {upstream} is now guarded on port {record.port}" in session.screen
    next_step = f"Expose port {record.port} rather than {upstream}: scnet start --port {upstream}"
    assert next_step in session.screen
    assert PASSWORD not in session.screen  # the terminal did not echo it
    assert start_guard(upstream, PASSWORD, host="127.0.0.1").reused  # what was typed opens it


def test_two_different_passwords_at_the_terminal_start_nothing(guard_dir: Path) -> None:
    session = scnet_on_a_terminal("guard", "--port", str(free_port()))
    session.expect("(hidden): ")
    session.type(PASSWORD)
    session.expect("again: ")
    session.type(PASSWORD + "x")
    assert session.exit_code() == 2
    assert "scnet: error: The two passwords differ." in session.screen
    assert list_guards() == []


@pytest.mark.parametrize(
    ("words", "error", "hint"),
    [
        (["--port", "0"], "Port must be from 1 to 65535, got 0.", "Give the port the service"),
        (
            ["--port", "8000"],  # no terminal, no variable, no --password-stdin
            "No password for the guard.",
            "Set SCNET_GUARD_PASSWORD, type it at the hidden prompt, or pipe it in with "
            "--password-stdin.",
        ),
        (
            ["--port", "8000", "--password-stdin"],
            "The password is empty.",
            "A service protected by an empty password is not.",
        ),
        (
            ["--list", "--listen-port", "9000"],
            "--listen-port, --host and --password-stdin go with --port.",
            "",
        ),
        (
            ["--stop", "abc"],
            "Port must be a whole number from 1 to 65535, got 'abc'.",
            "See scnet guard --list.",
        ),
    ],
)
def test_bad_input_is_a_usage_error_with_a_hint(
    guard_dir: Path, words: list[str], error: str, hint: str
) -> None:
    run = run_scnet(["guard", *words], {}, "\n")
    assert run.returncode == 2 and run.stdout == "", run.stderr
    shown = run.stderr.splitlines()
    assert shown[0] == f"scnet: error: {error}"
    if hint:
        assert len(shown) == 2 and shown[1].startswith(f"hint: {hint}"), shown
    else:
        assert len(shown) == 1, shown
    assert list_guards() == []


def test_stopping_a_guard_that_is_not_there_names_the_list(guard_dir: Path) -> None:
    port = free_port()
    run = run_scnet(["guard", "--stop", str(port)])
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"scnet: error: No guard runs on port {port}.",
        "hint: See scnet guard --list.",
    ]


def test_errors_speak_chinese_with_lang_zh(guard_dir: Path) -> None:
    run = run_scnet(["--lang", "zh", "guard", "--port", "8000"])
    assert run.returncode == 2
    assert run.stderr.splitlines()[0] == "scnet：错误：守卫没有密码。"


def test_the_guard_module_points_people_at_scnet_guard() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "scnet_magic.guard", "--list"], capture_output=True, text=True
    )
    assert run.returncode == 2
    assert run.stderr.strip() == "start, list and stop guards with: scnet guard --help"


@pytest.mark.slow
def test_json_for_scripts_start_reuse_list_and_stop(guard_dir: Path) -> None:
    upstream = free_port()
    words = ["guard", "--port", str(upstream), "--password-stdin", "--json"]
    first = run_scnet(words, {}, PASSWORD + "\n")
    assert first.returncode == 0, first.stderr
    started = json.loads(first.stdout)
    (record,) = list_guards()
    assert started == {
        "port": record.port,
        "upstream_port": upstream,
        "pid": record.pid,
        "host": "0.0.0.0",
        "started_at": record.started_at,
        "reused": False,
    }
    again = json.loads(run_scnet(words, {}, PASSWORD + "\n").stdout)
    assert again == {**started, "reused": True}
    listed = json.loads(run_scnet(["guard", "--list", "--json"]).stdout)
    assert listed == {"guards": [{k: v for k, v in started.items() if k != "reused"}]}
    stopped = run_scnet(["guard", "--stop", str(record.port), "--json"])
    assert json.loads(stopped.stdout) == {"stopped": True, "port": record.port}
    assert json.loads(run_scnet(["guard", "--list", "--json"]).stdout) == {"guards": []}
    for run in (first, stopped):
        assert PASSWORD not in run.stdout + run.stderr
