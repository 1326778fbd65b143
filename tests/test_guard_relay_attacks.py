"""The relay attacked by the service behind it, by what a gateway adds, and by load: answers
that break HTTP's framing, interim answers, the forwarding headers of the platform's gateway,
visitors who leave or hold event streams open, and WebSocket messages large and many.

The misbehaving services here speak raw HTTP/1.1 over a real loopback socket, so that they can
send what no web framework would: bytes past their Content-Length, a ``103 Early Hints``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import websocket
from guard_helpers import Guarded, basic, guard_in_front_of, raw_exchange, running_service

# What a raw service answers to a request path: the bytes it writes back, whole.
Answers = Callable[[str], bytes]


@contextlib.contextmanager
def raw_service(answers: Answers) -> Iterator[int]:
    """A loopback HTTP/1.1 service that keeps connections open and answers each request
    (headers only: the tests send no bodies) with ``answers(path)`` as it is; yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stopping = threading.Event()

    def serve(connection: socket.socket) -> None:
        pending = b""
        with connection, contextlib.suppress(OSError):
            while not stopping.is_set():
                while b"\r\n\r\n" not in pending:
                    received = connection.recv(65536)
                    if not received:
                        return
                    pending += received
                head, _, pending = pending.partition(b"\r\n\r\n")
                path = head.split(b" ")[1].decode()
                connection.sendall(answers(path))

    def accept() -> None:
        while not stopping.is_set():
            try:
                connection, _address = listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(10)
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stopping.set()
        acceptor.join()
        listener.close()


def answer(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
def guarded_raw(tmp_path: Path) -> Iterator[Callable[[Answers], Guarded]]:
    """A guard in front of a raw service, made by the test with its answers."""
    with contextlib.ExitStack() as stack:

        def make(answers: Answers) -> Guarded:
            port = stack.enter_context(raw_service(answers))
            return stack.enter_context(guard_in_front_of(port, tmp_path))

        yield make


def test_bytes_past_a_content_length_never_reach_the_next_visitor(
    guarded_raw: Callable[[Answers], Guarded],
) -> None:
    # Alice's answer declares 5 bytes and carries, past them, what looks like a whole answer
    # with her session cookie: a buggy service, or one a visitor tricked into echoing input.
    stray = answer(b"alice's page", "Set-Cookie: session=alice-secret")

    def answers(path: str) -> bytes:
        if path == "/alice":
            return answer(b"alice") + stray
        return answer(b"bob's page")

    guard = guarded_raw(answers)
    for _round in range(3):
        alice = requests.get(f"{guard.url}/alice", headers=basic(), timeout=10)
        assert alice.content == b"alice"
        bob = requests.get(f"{guard.url}/bob", headers=basic(), timeout=10)
        assert (bob.status_code, bob.content) == (200, b"bob's page")
        assert "alice-secret" not in str(bob.headers)


def test_an_early_hints_answer_keeps_the_final_status_and_headers(
    guarded_raw: Callable[[Answers], Guarded],
) -> None:
    early = b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"

    def answers(path: str) -> bytes:
        if path == "/hinted":
            return early + answer(b"final", "X-Final: yes", status="201 Created")
        return answer(b"next")

    guard = guarded_raw(answers)
    with requests.Session() as visitor:  # one connection: the next answer must stand apart
        hinted = visitor.get(f"{guard.url}/hinted", headers=basic(), timeout=10)
        following = visitor.get(f"{guard.url}/next", headers=basic(), timeout=10)
    assert (hinted.status_code, hinted.headers.get("X-Final"), hinted.content) == (
        201,
        "yes",
        b"final",
    )
    assert (following.status_code, following.content) == (200, b"next")


@pytest.fixture(scope="module")
def echo_guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    with (
        running_service() as port,
        guard_in_front_of(port, tmp_path_factory.mktemp("guards")) as guard,
    ):
        yield guard


def forwarding_seen(guard: Guarded, **headers: str) -> dict[str, list[str]]:
    response = requests.get(f"{guard.url}/echo", headers={**basic(), **headers}, timeout=10)
    assert response.status_code == 200, response.text
    seen: dict[str, list[str]] = response.json()["headers"]
    return {name: value for name, value in seen.items() if name.startswith("x-forwarded")}


def test_the_gateway_s_scheme_and_host_reach_the_service(echo_guard: Guarded) -> None:
    # The platform's gateway ends TLS and says so: the service must build https:// links.
    seen = forwarding_seen(
        echo_guard,
        **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "c-abc.ksai.scnet.cn:58043"},
    )
    assert seen["x-forwarded-proto"] == ["https"]
    assert seen["x-forwarded-host"] == ["c-abc.ksai.scnet.cn:58043"]
    assert seen["x-forwarded-for"] == ["127.0.0.1"]  # the socket's peer, whatever came in


def test_without_a_gateway_the_guard_says_what_the_socket_and_host_say(
    echo_guard: Guarded,
) -> None:
    address = echo_guard.url.removeprefix("http://")
    seen = forwarding_seen(echo_guard)
    assert seen == {
        "x-forwarded-for": ["127.0.0.1"],
        "x-forwarded-proto": ["http"],
        "x-forwarded-host": [address],
    }


@pytest.mark.parametrize(
    ("proto", "host"),
    [
        ("javascript", "evil host"),
        ("https, http", "a.example,b.example"),
        ("ftp", "a.example/path"),
    ],
)
def test_forwarding_headers_that_are_not_a_scheme_or_a_host_are_replaced(
    echo_guard: Guarded, proto: str, host: str
) -> None:
    address = echo_guard.url.removeprefix("http://")
    seen = forwarding_seen(echo_guard, **{"X-Forwarded-Proto": proto, "X-Forwarded-Host": host})
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == [address]


def test_a_request_passes_as_the_visitor_sent_it(echo_guard: Guarded) -> None:
    # No User-Agent and a body without a Content-Type: nothing filled in on the way.
    request = (
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nAccept-Encoding: br\r\n"
        f"Authorization: {basic()['Authorization']}\r\nConnection: close\r\n\r\nhi"
    ).encode()
    answer_bytes = raw_exchange(echo_guard.record.port, request)
    assert answer_bytes.startswith(b"HTTP/1.1 200")
    seen = json.loads(answer_bytes.partition(b"\r\n\r\n")[2])
    assert "user-agent" not in seen["headers"]
    assert "content-type" not in seen["headers"]
    assert seen["headers"]["accept-encoding"] == ["br"]
    assert seen["body_length"] == 2


def service_connections(port: int) -> int:
    """How many established TCP connections the service listening on ``port`` has accepted."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rpartition(":")[2], 16)
        if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
            count += 1
    return count


def test_a_visitor_leaving_a_download_ends_it_at_the_service(tmp_path: Path) -> None:
    with running_service() as port, guard_in_front_of(port, tmp_path) as guard:
        endless = 100 * 2**30  # made as it is sent: only a cut connection ends it early
        with requests.get(
            f"{guard.url}/big/{endless}", headers=basic(), stream=True, timeout=10
        ) as download:
            assert len(next(download.iter_content(1 << 20))) > 0
            assert service_connections(port) == 1
        deadline = time.monotonic() + 10
        while service_connections(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert service_connections(port) == 0


def test_open_event_streams_do_not_hold_up_other_requests(echo_guard: Guarded) -> None:
    # More streams than an HTTP client's usual pool (tornado's max_clients is 10).
    with contextlib.ExitStack() as streams:
        readers = []  # kept: a reader dropped half way closes its connection
        for number in range(12):
            stream = streams.enter_context(
                requests.get(
                    f"{echo_guard.url}/sse/held{number}", headers=basic(), stream=True, timeout=10
                )
            )
            readers.append(stream.iter_lines())
            assert next(readers[-1]) == b"data: first"
        response = requests.get(f"{echo_guard.url}/echo", headers=basic(), timeout=5)
        assert response.status_code == 200


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc status")


def websocket_to(guard: Guarded, query: str = "") -> websocket.WebSocket:
    connection = websocket.create_connection(
        f"ws://127.0.0.1:{guard.record.port}/ws{query}",
        header=[f"Authorization: {basic()['Authorization']}"],
        timeout=30,
    )
    connection.recv()  # the service's greeting
    return connection


def test_a_websocket_message_above_the_limit_ends_the_connection(echo_guard: Guarded) -> None:
    connection = websocket_to(echo_guard)
    try:
        connection.send_binary(b"x" * (5 * 2**20))
        assert len(connection.recv()) == 5 * 2**20
        # The guard cuts the connection as soon as the message's size shows, mid-send.
        with pytest.raises((websocket.WebSocketException, OSError)):
            connection.send_binary(b"x" * (16 * 2**20))
            connection.recv()
    finally:
        connection.close()


def test_a_websocket_message_from_the_service_has_a_limit_too(echo_guard: Guarded) -> None:
    connection = websocket_to(echo_guard, "?send=" + str(20 * 2**20))
    with contextlib.closing(connection):
        assert len(connection.recv()) == 20 * 2**20  # a large output passes
    connection = websocket_to(echo_guard, "?send=" + str(40 * 2**20))
    with contextlib.closing(connection):
        try:
            received = connection.recv()  # the guard's close instead of the message
        except (websocket.WebSocketException, OSError):
            received = b""
    assert not received


@pytest.mark.slow
def test_websocket_clients_leave_the_guard_s_memory_as_it_was(echo_guard: Guarded) -> None:
    # Eight signed-in clients at once, 400 MiB through in messages of 9 MiB.
    pid = echo_guard.record.pid
    failures: list[BaseException] = []

    def client(size: int) -> None:
        message = b"x" * size
        try:
            connection = websocket_to(echo_guard)
            with contextlib.closing(connection):
                for _ in range(50 * 2**20 // size):
                    connection.send_binary(message)
                    assert len(connection.recv()) == size
        except BaseException as failure:  # reported below, in the test's thread
            failures.append(failure)

    clients = [threading.Thread(target=client, args=(9 * 2**20,)) for _ in range(8)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    assert not failures
    deadline = time.monotonic() + 5
    while resident_mib(pid) >= 100 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert resident_mib(pid) < 100
