"""A guard process in front of a real service: who gets in, and that what passes is untouched.

One service and one guard for the module (the brute-force test has a guard of its own: its
lockout would refuse everyone else from this address).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import websocket
from guard_helpers import (
    FOREIGN_ORIGIN,
    PASSWORD,
    Guarded,
    basic,
    free_port,
    guard_in_front_of,
    raw_exchange,
    refused_websocket,
    running_service,
)

from scnet_magic.guard import auth


@pytest.fixture(scope="module")
def service_port() -> Iterator[int]:
    with running_service() as port:
        yield port


@pytest.fixture(scope="module")
def guarded(service_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    with guard_in_front_of(service_port, tmp_path_factory.mktemp("guards")) as guard:
        yield guard


@pytest.fixture(scope="module")
def cookie(guarded: Guarded) -> str:
    return guarded.session_cookie()


def echo(guarded: Guarded, path: str = "/echo", **kwargs: object) -> dict[str, object]:
    response = requests.get(f"{guarded.url}{path}", timeout=10, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


def service_log(service_port: int) -> list[str]:
    seen: list[str] = requests.get(f"http://127.0.0.1:{service_port}/log", timeout=5).json()
    return seen


# Who gets in


def test_a_client_without_credentials_gets_401_and_a_basic_challenge(guarded: Guarded) -> None:
    response = requests.get(f"{guarded.url}/echo", timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Basic realm="scnet-guard"')
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["X-Scnet-Guard"] == guarded.record.guard_id


@pytest.mark.parametrize(
    ("accept_language", "expected", "absent"),
    [
        ("en-US,en;q=0.9", "This service is protected by a password.", "密码"),
        ("zh-CN,zh;q=0.9,en;q=0.5", "此服务受密码保护", "protected by a password"),
    ],
)
def test_a_browser_gets_the_login_page_in_its_language(
    guarded: Guarded, accept_language: str, expected: str, absent: str
) -> None:
    response = requests.get(
        f"{guarded.url}/app?tab=2",
        headers={"Accept": "text/html,*/*", "Accept-Language": accept_language},
        timeout=10,
    )
    assert response.status_code == 401
    assert "WWW-Authenticate" not in response.headers  # no browser password dialog
    page = response.text
    assert expected in page and absent not in page
    assert 'action="/.scnet-guard/login"' in page
    assert 'name="next" value="/app?tab=2"' in page
    # Nothing about the service: neither its port nor anything it would have answered.
    assert str(guarded.service_port) not in page and "body_sha256" not in page


def test_signing_in_sets_a_session_cookie_and_returns_to_the_page(guarded: Guarded) -> None:
    response = guarded.login(next_path="/echo?after=login")
    assert response.status_code == 303
    assert response.headers["Location"] == "/echo?after=login"
    set_cookie = response.headers["Set-Cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")}
    assert {"httponly", "secure", "path", "max-age"} <= attributes
    assert "SameSite=Lax" in set_cookie
    assert PASSWORD not in set_cookie
    session = response.cookies[auth.COOKIE_NAME]
    assert len(session) >= 40

    cookie = f"theme=dark; {auth.COOKIE_NAME}={session}; other=1"
    seen = echo(guarded, "/echo?after=login", headers={"Cookie": cookie})
    assert seen["uri"] == "/echo?after=login"
    headers = seen["headers"]
    assert isinstance(headers, dict)
    # The service keeps its own cookies and never sees the guard's.
    assert headers["cookie"] == ["theme=dark; other=1"]


def test_signing_out_ends_the_session(guarded: Guarded) -> None:
    cookie = guarded.session_cookie()
    out = requests.post(
        f"{guarded.url}/.scnet-guard/logout",
        headers={"Cookie": cookie},
        allow_redirects=False,
        timeout=10,
    )
    assert out.status_code == 303
    assert "Max-Age=0" in out.headers["Set-Cookie"]
    after = requests.get(f"{guarded.url}/echo", headers={"Cookie": cookie}, timeout=10)
    assert after.status_code == 401


def test_basic_auth_passes_with_any_user_name_and_stays_with_the_guard(guarded: Guarded) -> None:
    seen = echo(guarded, headers=basic(user="whoever"))
    headers = seen["headers"]
    assert isinstance(headers, dict)
    assert "authorization" not in headers


def test_the_service_s_own_authorization_header_passes(guarded: Guarded, cookie: str) -> None:
    seen = echo(guarded, headers={"Cookie": cookie, "Authorization": "Bearer service-token"})
    headers = seen["headers"]
    assert isinstance(headers, dict)
    assert headers["authorization"] == ["Bearer service-token"]


def test_a_wrong_password_is_refused(guarded: Guarded) -> None:
    response = requests.get(f"{guarded.url}/echo", headers=basic("wrong"), timeout=10)
    assert response.status_code == 401
    page = guarded.login("wrong")
    assert page.status_code == 401
    assert "Wrong password." in page.text
    assert "Set-Cookie" not in page.headers


def test_a_forged_cookie_is_refused(guarded: Guarded) -> None:
    forged = f"{auth.COOKIE_NAME}=" + "A" * 43
    response = requests.get(f"{guarded.url}/echo", headers={"Cookie": forged}, timeout=10)
    assert response.status_code == 401


def test_a_password_in_the_query_string_is_never_accepted(guarded: Guarded) -> None:
    assert requests.get(f"{guarded.url}/echo?password={PASSWORD}", timeout=10).status_code == 401
    response = requests.post(
        f"{guarded.url}/.scnet-guard/login?password={PASSWORD}",
        data={"next": "/"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "/\t/evil.example", "evil"],
)
def test_next_cannot_send_a_browser_to_another_site(guarded: Guarded, target: str) -> None:
    response = guarded.login(next_path=target)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_a_path_of_the_site_is_a_valid_next(guarded: Guarded) -> None:
    assert guarded.login(next_path="/a/b?c=d#e").headers["Location"] == "/a/b?c=d#e"


@pytest.mark.slow
def test_ten_failures_lock_the_address_out(service_port: int, tmp_path: Path) -> None:
    with guard_in_front_of(service_port, tmp_path) as guard:
        answers = [guard.login("wrong").status_code for _ in range(5)]
        for _ in range(5):
            response = requests.get(f"{guard.url}/echo", headers=basic("wrong"), timeout=10)
            answers.append(response.status_code)
        assert answers == [401] * 10
        # Locked: even the right password, by either way, waits.
        locked = guard.login()
        assert locked.status_code == 429 and "Set-Cookie" not in locked.headers
        response = requests.get(f"{guard.url}/echo", headers=basic(), timeout=10)
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) == 60


# What passes, and how


def test_spoofed_host_and_forwarding_headers_cannot_choose_another_upstream(
    guarded: Guarded,
) -> None:
    with socket.socket() as decoy:
        decoy.bind(("127.0.0.1", 0))
        decoy.listen(8)
        decoy.setblocking(False)
        decoy_address = f"127.0.0.1:{decoy.getsockname()[1]}"
        spoofed = {
            "Host": decoy_address,
            "X-Forwarded-Host": decoy_address,
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https",
            "Forwarded": f"for=203.0.113.9;host={decoy_address}",
        }
        seen = echo(guarded, headers={**basic(), **spoofed})
        request = (
            f"GET http://{decoy_address}/echo HTTP/1.1\r\nHost: {decoy_address}\r\n"
            f"Authorization: {basic()['Authorization']}\r\nConnection: close\r\n\r\n"
        ).encode()
        absolute = raw_exchange(guarded.record.port, request)
        with pytest.raises(BlockingIOError):
            decoy.accept()  # nobody ever connected to the decoy
    headers = seen["headers"]
    assert isinstance(headers, dict)
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    # The scheme a gateway says the visitor used passes on (it chooses no upstream either).
    assert headers["x-forwarded-proto"] == ["https"]
    assert "forwarded" not in headers
    assert absolute.startswith(b"HTTP/1.1 200")
    assert b'"uri": "/echo"' in absolute


def test_the_service_s_status_cookies_and_redirects_pass_untouched(
    guarded: Guarded, cookie: str
) -> None:
    response = requests.get(
        f"{guarded.url}/redirect", headers={"Cookie": cookie}, allow_redirects=False, timeout=10
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/elsewhere?from=service"
    assert response.headers["Set-Cookie"] == "service_session=abc; Path=/; HttpOnly"
    teapot = requests.get(f"{guarded.url}/status/418", headers={"Cookie": cookie}, timeout=10)
    assert teapot.status_code == 418
    # The guard's header is the guard's: the service cannot forge it.
    assert teapot.headers["X-Scnet-Guard"] == guarded.record.guard_id


def test_methods_and_bodies_pass_including_chunked_ones(guarded: Guarded, cookie: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"hello "
        yield b"world"

    for method in ("POST", "PUT", "PATCH", "DELETE", "PROPFIND"):
        response = requests.request(
            method,
            f"{guarded.url}/echo",
            data=chunks(),
            headers={"Cookie": cookie},
            timeout=10,
        )
        assert response.status_code == 200, (method, response.text)
        seen = response.json()
        assert (seen["method"], seen["body_length"]) == (method, 11)
    head = requests.head(f"{guarded.url}/big/1000", headers={"Cookie": cookie}, timeout=10)
    assert (head.status_code, head.headers["Content-Length"]) == (200, "1000")


def test_server_sent_events_arrive_one_by_one(guarded: Guarded, cookie: str) -> None:
    with requests.get(
        f"{guarded.url}/sse/one", headers={"Cookie": cookie}, stream=True, timeout=10
    ) as stream:
        lines = stream.iter_lines()
        # The service holds its second event until released: the first one is here before the
        # stream could have ended.
        assert next(lines) == b"data: first"
        released = requests.get(f"{guarded.url}/release/one", headers={"Cookie": cookie})
        assert released.status_code == 200
        rest = [line for line in lines if line]
    assert rest == [b"data: second"]


def test_request_smuggling_with_both_lengths_is_refused(guarded: Guarded) -> None:
    authorization = basic()["Authorization"]
    ambiguous = [
        "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 6\r\n",
        "Content-Length: 6\r\nContent-Length: 40\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
    ]
    for framing in ambiguous:
        request = (
            f"POST /smuggle-outer HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\n"
            f"{framing}\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
        ).encode()
        answer = raw_exchange(guarded.record.port, request)
        assert answer.startswith(b"HTTP/1.1 400"), (framing, answer[:200])
        assert answer.count(b"HTTP/1.1") == 1
    seen = service_log(guarded.service_port)
    assert not any("smuggl" in entry for entry in seen)


def test_the_service_being_down_is_a_502_for_signed_in_visitors(tmp_path: Path) -> None:
    with guard_in_front_of(free_port(), tmp_path) as guard:
        response = requests.get(f"{guard.url}/echo", headers=basic(), timeout=10)
        assert response.status_code == 502


# The status endpoint


def test_status_says_up_without_a_password(guarded: Guarded) -> None:
    response = requests.get(f"{guarded.url}/.scnet-guard/status", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"upstream": "up"}
    assert response.headers["X-Scnet-Guard"] == guarded.record.guard_id


def test_status_says_down_when_nothing_listens(tmp_path: Path) -> None:
    with guard_in_front_of(free_port(), tmp_path) as guard:
        response = requests.get(f"{guard.url}/.scnet-guard/status", timeout=10)
        assert response.status_code == 503
        assert response.json() == {"upstream": "down"}
        assert response.headers["X-Scnet-Guard"] == guard.record.guard_id


# WebSockets


def ws_url(guarded: Guarded) -> str:
    return f"ws://127.0.0.1:{guarded.record.port}/ws"


@pytest.mark.parametrize("credential", ["cookie", "basic"])
def test_websocket_echo_passes_with_a_credential(
    guarded: Guarded, cookie: str, credential: str
) -> None:
    header = [f"Cookie: {cookie}; theme=dark"] if credential == "cookie" else []
    if credential == "basic":
        header = [f"Authorization: {basic()['Authorization']}"]
    connection = websocket.create_connection(
        ws_url(guarded), header=header, subprotocols=["chat.v2", "chat.v1"], timeout=10
    )
    try:
        greeting = json.loads(connection.recv())
        assert greeting["subprotocol"] == "chat.v2"
        assert connection.subprotocol == "chat.v2"
        assert greeting["authorization"] is None  # the guard's credential stays with it
        if credential == "cookie":
            assert greeting["cookie"] == "theme=dark"
        connection.send("ping ☃")
        assert connection.recv() == "ping ☃"
        connection.send_binary(b"\x00\x01" * 50_000)
        assert connection.recv() == b"\x00\x01" * 50_000
    finally:
        connection.close()


def test_websocket_without_credentials_is_refused_before_the_upgrade(guarded: Guarded) -> None:
    before = service_log(guarded.service_port).count("WEBSOCKET /ws")
    assert refused_websocket(ws_url(guarded)) == 401
    assert service_log(guarded.service_port).count("WEBSOCKET /ws") == before


def test_websocket_from_a_page_of_another_site_is_refused(guarded: Guarded, cookie: str) -> None:
    refused = refused_websocket(
        ws_url(guarded), header=[f"Cookie: {cookie}"], origin=FOREIGN_ORIGIN
    )
    assert refused == 403
