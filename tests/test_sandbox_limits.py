"""The sandbox a user runs in their kernel (``%scnet_sandbox``) holds up against hostile
clients: it keeps nothing per request, checks the token before reading a body, answers a
nested body with the platform's error, and neither idle nor excess connections pile up
threads."""

from __future__ import annotations

import gc
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest
import requests

from scnet_magic.sandbox import Sandbox
from scnet_magic.sandbox import server as sandbox_server

START = "/ai/openapi/v2/notebook/customize-service/actions/start"
MIB = 1024 * 1024
NESTED = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        yield session


def _connect(sb: Sandbox) -> socket.socket:
    port = int(sb.base_url.rsplit(":", 1)[1])
    return socket.create_connection(("127.0.0.1", port), timeout=10)


@pytest.mark.parametrize(
    ("with_token", "code"),
    [(False, "10009"), (True, "10003")],  # refused for the token; refused for missing fields
)
def test_bodies_are_not_kept(
    sb: Sandbox, session: requests.Session, with_token: bool, code: str
) -> None:
    body = b'{"pad": "' + b"x" * (MIB - 20) + b'"}'
    headers = {"token": sb.token} if with_token else {}
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            answer = session.post(sb.base_url + START, data=body, headers=headers, timeout=10)
            assert answer.json()["code"] == code
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 20 MiB came in; what stays is the sandbox's bookkeeping, not the bodies.
    assert kept < 4 * MIB, f"{kept / MIB:.1f} MiB kept after 20 MiB of bodies"


def test_a_nested_body_without_a_token_is_refused_for_the_token(
    sb: Sandbox, session: requests.Session
) -> None:
    answer = session.post(sb.base_url + START, data=NESTED, timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {"code": "10009", "msg": "没有权限访问接口", "data": None}


def test_a_nested_body_gets_the_platforms_invalid_parameter_answer(
    sb: Sandbox, session: requests.Session
) -> None:
    answer = session.post(sb.base_url + START, data=NESTED, headers={"token": sb.token}, timeout=10)
    assert answer.status_code == 200
    envelope = answer.json()
    assert (envelope["code"], envelope["data"]) == ("10004", None)
    assert "参数无效" in envelope["msg"]
    # The handler lived through it: the next call on the same server is answered.
    listing = session.get(
        sb.base_url + "/ai/openapi/v2/notebook/list", headers={"token": sb.token}, timeout=10
    )
    assert listing.json()["code"] == "0"


def test_an_idle_connection_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_server, "IDLE_TIMEOUT", 0.5)
    with Sandbox() as sb, _connect(sb) as idle:
        started = time.monotonic()
        assert idle.recv(1) == b""  # closed by the sandbox, not by our 10 s timeout
        assert time.monotonic() - started < 5


def test_a_connection_that_stops_sending_its_head_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sandbox_server, "IDLE_TIMEOUT", 0.5)
    with Sandbox() as sb, _connect(sb) as slow:
        slow.sendall(b"GET /ai/openapi/v2/notebook/list HTTP/1.1\r\nHost: x\r\n")
        assert slow.recv(1) == b""


def test_connections_beyond_the_limit_get_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_server, "MAX_CONNECTIONS", 4)
    with Sandbox() as sb:
        before = threading.active_count()
        held = [_connect(sb) for _ in range(12)]
        try:
            time.sleep(0.5)
            assert threading.active_count() - before <= 4
            # One over the limit is told so at once rather than left waiting.
            with _connect(sb) as extra:
                assert extra.recv(64).startswith(b"HTTP/1.1 503")
        finally:
            for conn in held:
                conn.close()
        # Once they are gone the sandbox answers again.
        deadline = time.monotonic() + 5
        while True:
            answer = requests.get(
                sb.base_url + "/ai/openapi/v2/notebook/list",
                headers={"token": sb.token},
                timeout=5,
            )
            if answer.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert answer.json()["code"] == "0"
