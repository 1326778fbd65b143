"""What the guard's tests share: the service behind the guard, a guard process in front of
it, and ways to talk to both (requests, raw sockets, /proc)."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

from scnet_magic.guard import GuardRecord, auth, start_guard, stop_guard

# Not ASCII, with a colon and spaces: Basic auth and the form must carry it as it is.
PASSWORD = "correct horse: 电池 staple"
# Another user's service: a neighbouring host under the same domain.
FOREIGN_ORIGIN = "https://c-other.ksai.scnet.cn:58043"
SERVICE = Path(__file__).with_name("guard_service.py")


def basic(password: str = PASSWORD, user: str = "anyone") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


@contextlib.contextmanager
def running_service(port: int = 0) -> Iterator[int]:
    """The test service in a process of its own; yields its port."""
    process = subprocess.Popen(
        [sys.executable, str(SERVICE), str(port)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline())
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


@dataclass
class Guarded:
    """A guard process in front of a service."""

    record: GuardRecord
    service_port: int
    folder: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.record.port}"

    def login(self, password: str = PASSWORD, next_path: str = "/") -> requests.Response:
        return requests.post(
            f"{self.url}/.scnet-guard/login",
            data={"password": password, "next": next_path},
            allow_redirects=False,
            timeout=10,
        )

    def session_cookie(self) -> str:
        """A ``Cookie`` header value of a signed-in browser.

        Set by hand: requests keeps a Secure cookie for https only, and the tests speak http.
        """
        response = self.login()
        assert response.status_code == 303
        return f"{auth.COOKIE_NAME}={response.cookies[auth.COOKIE_NAME]}"


@contextlib.contextmanager
def guard_in_front_of(
    service_port: int, folder: Path, password: str = PASSWORD
) -> Iterator[Guarded]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCNET_GUARD_DIR", str(folder))
        record = start_guard(service_port, password, host="127.0.0.1")
        try:
            yield Guarded(record, service_port, folder)
        finally:
            stop_guard(record.port)


def refused_websocket(url: str, **options: Any) -> int:
    """The status with which a WebSocket handshake to ``url`` is refused."""
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, timeout=10, **options)
    return int(refused.value.status_code)


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes as they are and read the answer until the guard closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(data)
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := connection.recv(65536):
                received += chunk
    return received


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


BIG = 200 * 2**20
# The guard relays in pieces of at most 1 MiB and reads the next only once the previous has
# left: its peak memory must not follow the size of the body.
MEMORY_ALLOWANCE_KIB = 100 * 1024


class Zeros:
    """``size`` zero bytes to upload, made as they are sent; with a length, so requests sends
    a Content-Length rather than chunks."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        block = bytes(1 << 20)
        for start in range(0, self.size, len(block)):
            yield block[: min(len(block), self.size - start)]


def big_down_and_up(base_url: str, cookie: str, guard_pid: int) -> None:
    """A 200 MB download and upload of the test service at ``base_url``, signed in with
    ``cookie``: both pass whole, and the guard's peak memory does not grow with them."""
    baseline = peak_rss_kib(guard_pid)
    received = 0
    with requests.get(
        f"{base_url}/big/{BIG}", headers={"Cookie": cookie}, stream=True, timeout=60
    ) as download:
        assert download.status_code == 200
        assert download.headers["Content-Length"] == str(BIG)
        for chunk in download.iter_content(1 << 20):
            received += len(chunk)
    assert received == BIG

    upload = requests.put(
        f"{base_url}/echo", data=Zeros(BIG), headers={"Cookie": cookie}, timeout=60
    )
    assert upload.status_code == 200
    seen = upload.json()
    assert seen["body_length"] == BIG
    assert seen["headers"]["content-length"] == [str(BIG)]

    grown = peak_rss_kib(guard_pid) - baseline
    assert grown < MEMORY_ALLOWANCE_KIB, f"the guard's peak memory grew by {grown} KiB"
