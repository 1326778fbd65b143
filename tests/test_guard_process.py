"""Guard processes: large bodies in bounded memory, reuse, list and stop, and a password that
shows nowhere outside the guard's memory (arguments, environment, logs, records)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from guard_helpers import (
    PASSWORD,
    Guarded,
    basic,
    big_down_and_up,
    free_port,
    guard_in_front_of,
    raw_exchange,
    running_service,
)

from scnet_magic.errors import InvalidInput
from scnet_magic.guard import (
    GuardError,
    GuardRecord,
    find_guard,
    guarded_ports,
    list_guards,
    start_guard,
    stop_guard,
    write_record,
)


@pytest.fixture(scope="module")
def service_port() -> Iterator[int]:
    with running_service() as port:
        yield port


@pytest.fixture
def guarded(service_port: int, guard_dir: Path) -> Iterator[Guarded]:
    with guard_in_front_of(service_port, guard_dir) as guard:
        yield guard


@pytest.mark.slow
def test_200_mb_down_and_up_in_bounded_memory(guarded: Guarded) -> None:
    cookie = guarded.session_cookie()  # scrypt's 16 MiB are in the baseline
    big_down_and_up(guarded.url, cookie, guarded.record.pid)


LONG_CUT = 3 * 2**20  # long enough for the guard to copy the body itself, past tornado's reader


@pytest.mark.slow
@pytest.mark.parametrize(
    ("query", "length", "sent"),
    [
        ("?chunked=1", None, b"0123456789"),
        ("", 1000, b"0123456789"),
        (f"?sent={LONG_CUT}", 2 * LONG_CUT, b"x" * LONG_CUT),
    ],
)
def test_a_download_cut_short_by_the_service_is_not_passed_off_as_whole(
    guarded: Guarded, query: str, length: int | None, sent: bytes
) -> None:
    # The service drops the connection partway: the guard must not end the response cleanly
    # for it (no final empty chunk, no short body under its length).
    request = (
        f"GET /cut{query} HTTP/1.1\r\nHost: x\r\nAuthorization: {basic()['Authorization']}\r\n\r\n"
    ).encode()
    answer = raw_exchange(guarded.record.port, request)
    head, _sep, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    if length is None:
        assert b"Transfer-Encoding: chunked" in head
        assert not body.endswith(b"0\r\n\r\n")
    else:
        assert f"Content-Length: {length}".encode() in head
        assert body == sent  # and then the guard closed the connection


def test_long_downloads_leave_both_connections_fit_for_more(guarded: Guarded) -> None:
    cookie = {"Cookie": guarded.session_cookie()}
    size = 5 * 2**20 + 3  # not a whole number of the guard's buffers
    with requests.Session() as session:
        for _ in range(3):
            download = session.get(f"{guarded.url}/big/{size}", headers=cookie, timeout=30)
            assert (download.status_code, len(download.content)) == (200, size)
            assert download.content == b"x" * size
            echo = session.get(f"{guarded.url}/echo", headers=cookie, timeout=30)
            assert echo.json()["method"] == "GET"
        # A visitor that leaves mid-download does not disturb the next one.
        with session.get(
            f"{guarded.url}/big/{100 * 2**20}", headers=cookie, stream=True, timeout=30
        ) as partial:
            next(partial.iter_content(1 << 20))
    head = requests.head(f"{guarded.url}/big/{size}", headers=cookie, timeout=30)
    assert (head.status_code, head.headers["Content-Length"], head.content) == (
        200,
        str(size),
        b"",
    )
    again = requests.get(f"{guarded.url}/big/{size}", headers=cookie, timeout=30)
    assert (again.status_code, len(again.content)) == (200, size)


@pytest.mark.slow
def test_a_restarted_service_is_reached_again(guard_dir: Path) -> None:
    # The guard keeps connections to the service alive between requests; those to a service
    # that has since stopped must not fail the next request.
    port = free_port()
    with guard_in_front_of(port, guard_dir) as guard:
        cookie = guard.session_cookie()
        for _ in range(2):
            with running_service(port):
                for _ in range(3):
                    response = requests.get(
                        f"{guard.url}/echo", headers={"Cookie": cookie}, timeout=10
                    )
                    assert response.status_code == 200


def test_a_running_guard_is_reused_for_the_same_port(guarded: Guarded) -> None:
    again = start_guard(guarded.service_port, PASSWORD, host="127.0.0.1")
    assert again.reused
    assert (again.port, again.pid, again.guard_id) == (
        guarded.record.port,
        guarded.record.pid,
        guarded.record.guard_id,
    )
    assert not guarded.record.reused
    assert find_guard(guarded.service_port) == guarded.record


def test_another_password_for_a_guarded_port_is_an_error_not_a_silent_change(
    guarded: Guarded,
) -> None:
    with pytest.raises(GuardError, match="another password"):
        start_guard(guarded.service_port, "another password")


def test_list_and_stop(service_port: int, guard_dir: Path) -> None:
    assert list_guards() == []
    record = start_guard(service_port, PASSWORD, host="127.0.0.1")
    assert list_guards() == [record]
    assert stop_guard(record.port)
    assert list_guards() == []
    assert not Path(f"/proc/{record.pid}").exists() or "Z" in _state(record.pid)
    assert not stop_guard(record.port)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{record.port}/", timeout=5)


# On SIGTERM it becomes another program (its command line no longer names a guard, as a guard's
# reads empty while it tears down) and runs on for a moment before exiting.
SLOW_TO_EXIT = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: os.execv("/bin/sleep", ["sleep", "0.7"]))
print("ready", flush=True)
time.sleep(60)
"""


def test_stop_returns_once_the_process_has_exited(guard_dir: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_TO_EXIT, "scnet_magic.guard"], stdout=subprocess.PIPE
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
        record = GuardRecord(free_port(), free_port(), process.pid, "0" * 16, time.time())
        write_record(record)
        assert stop_guard(record.port)
        assert process.poll() is not None or _state(process.pid) == "Z"
        assert list_guards() == []
    finally:
        process.kill()
        process.wait()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return "gone"


def test_records_of_dead_guards_are_dropped(guarded: Guarded) -> None:
    os.kill(guarded.record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _state(guarded.record.pid) not in ("gone", "Z") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert find_guard(guarded.service_port) is None
    assert not (guarded.folder / f"{guarded.record.port}.json").exists()


def test_bad_arguments_are_refused_before_starting(service_port: int, guard_dir: Path) -> None:
    with pytest.raises(ValueError):
        start_guard(service_port, "")
    with pytest.raises(ValueError):
        start_guard(0, PASSWORD)
    with pytest.raises(ValueError):
        start_guard(service_port, PASSWORD, port=70000)
    assert list_guards() == []


def test_the_guard_takes_passwords_and_ports_by_the_front_ends_rules(
    service_port: int, guard_dir: Path
) -> None:
    """``start_guard`` itself refuses what ``--protect`` refuses, so ``scnet guard`` and Python
    callers cannot start a guard the front ends would not."""
    with pytest.raises(InvalidInput, match="line breaks or NUL"):
        start_guard(service_port, "two\rlines")
    with pytest.raises(InvalidInput, match="port must be from 1 to 65535"):
        start_guard(service_port, PASSWORD, port=-1)
    with pytest.raises(InvalidInput, match="port must be a whole number"):
        start_guard(True, PASSWORD)  # type: ignore[arg-type]
    assert list_guards() == []


def test_a_port_already_taken_is_a_clear_error(service_port: int, guard_dir: Path) -> None:
    with pytest.raises(GuardError, match="did not start"):
        start_guard(service_port, PASSWORD, host="127.0.0.1", port=service_port)


def test_the_password_shows_nowhere_but_in_the_guard_s_memory(guarded: Guarded) -> None:
    # Give the guard every chance to write it down: a good and a bad login, Basic, a password
    # in the query string, a refused smuggling attempt.
    guarded.login()
    guarded.login(PASSWORD + "x")
    requests.get(f"{guarded.url}/echo", headers=basic(), timeout=10)
    requests.get(f"{guarded.url}/echo?password={PASSWORD}", timeout=10)
    requests.get(f"{guarded.url}/status/500?password={PASSWORD}", headers=basic(), timeout=10)
    secret = PASSWORD.encode()
    pid = guarded.record.pid
    assert secret not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert secret not in Path(f"/proc/{pid}/environ").read_bytes()
    for path in guarded.folder.iterdir():
        assert secret not in path.read_bytes(), path.name
        assert b"password=" not in path.read_bytes(), path.name


def test_records_are_private(guarded: Guarded) -> None:
    assert stat.S_IMODE(guarded.folder.stat().st_mode) == 0o700
    files = list(guarded.folder.iterdir())
    assert any(path.suffix == ".json" for path in files)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_a_guard_found_dead_is_remembered_at_the_first_look(guard_dir: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    record = GuardRecord(free_port(), 7860, gone.pid, "1" * 16, time.time())
    write_record(record)
    assert guarded_ports().get(record.port) == 7860  # the user's port, not the guard's


ENDS = (
    "import sys; from scnet_magic.guard import *; remove_record(GuardRecord.from_json(sys.argv[1]))"
)


def test_guards_that_end_together_are_all_remembered(guard_dir: Path) -> None:
    records = [GuardRecord(40000 + n, 7000 + n, 1, f"{n:016d}", 0.0) for n in range(8)]
    for record in records:
        write_record(record)
    ending = [
        subprocess.Popen([sys.executable, "-c", ENDS, record.to_json()]) for record in records
    ]
    assert [process.wait(timeout=60) for process in ending] == [0] * 8
    assert {record.port: record.upstream_port for record in records}.items() <= (
        guarded_ports().items()
    )
