"""The guard attacked as a stranger would, and used as API clients use it: parallel guessing,
a shared address, slow and silent connections, a log under load, cookies planted, framing and
cross-site forms, the guard's environment, racing starts, Bearer through the real ``openai``
client, a page's fetch after its session is lost, the fragment kept across sign-in.

Each guard here is a real process in front of a real service, reached over loopback.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import openai
import pytest
import requests
import websocket
from guard_helpers import (
    PASSWORD,
    Guarded,
    basic,
    guard_in_front_of,
    raw_exchange,
    refused_websocket,
    running_service,
)
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from scnet_magic.guard import GuardError, auth, list_guards, process, start_guard

from conftest import free_port
from frontends import run_scnet

# The figures the README documents: per visitor, at most this many failed checks a minute ...
PER_VISITOR = 10
# ... and overall, whatever the visitors, at most this many at once and this many a minute.
BURST = 5
PER_MINUTE = 30
# An ASCII password: the openai client (httpx) sends header values as ASCII.
API_PASSWORD = "api-password-42 with spaces"


@pytest.fixture(scope="module")
def service_port() -> Iterator[int]:
    with running_service() as port:
        yield port


def guessed(guard: Guarded, how: str, headers: dict[str, str] | None = None) -> int:
    """One wrong guess, on the sign-in form or with HTTP Basic; the status it got."""
    if how == "form":
        response = requests.post(
            f"{guard.url}/.scnet-guard/login",
            data={"password": "wrong", "next": "/"},
            headers=headers or {},
            allow_redirects=False,
            timeout=60,
        )
    else:
        response = requests.get(
            f"{guard.url}/echo", headers={**basic("wrong"), **(headers or {})}, timeout=60
        )
    return response.status_code


def checked(statuses: list[int]) -> int:
    """How many guesses were checked: the ones answered "wrong" rather than "not now"."""
    assert set(statuses) <= {401, 429}, statuses
    return statuses.count(401)


# 1. Parallel guessing


@pytest.mark.slow
@pytest.mark.parametrize("how", ["form", "basic"])
def test_200_parallel_guesses_from_one_visitor_get_at_most_ten_checks(
    service_port: int, tmp_path: Path, how: str
) -> None:
    with guard_in_front_of(service_port, tmp_path) as guard, ThreadPoolExecutor(100) as pool:
        statuses = list(pool.map(lambda _: guessed(guard, how), range(200)))
    assert checked(statuses) <= PER_VISITOR


@pytest.mark.slow
def test_200_parallel_guesses_from_200_claimed_addresses_stay_within_the_overall_bound(
    service_port: int, tmp_path: Path
) -> None:
    with guard_in_front_of(service_port, tmp_path) as guard, ThreadPoolExecutor(100) as pool:
        began = time.monotonic()
        statuses = list(
            pool.map(
                lambda n: guessed(
                    guard, "basic", {"X-Forwarded-For": f"10.1.{n // 250}.{n % 250}"}
                ),
                range(200),
            )
        )
        elapsed = time.monotonic() - began
    assert checked(statuses) <= BURST + PER_MINUTE * elapsed / 60 + 1


# 2. A shared address: strangers cannot shut the owner out


@pytest.mark.slow
def test_a_stranger_guessing_from_the_owner_s_address_does_not_shut_the_owner_out(
    service_port: int, tmp_path: Path
) -> None:
    with guard_in_front_of(service_port, tmp_path) as guard:
        signed_in = guard.session_cookie()
        # An API client already accepted, from a visitor the gateway tells apart.
        api = {**basic(), "X-Forwarded-For": "203.0.113.7"}
        assert requests.get(f"{guard.url}/echo", headers=api, timeout=10).status_code == 200
        stop = threading.Event()

        def stranger() -> None:
            while not stop.is_set():
                guessed(guard, "form")

        attackers = [threading.Thread(target=stranger) for _ in range(8)]
        for attacker in attackers:
            attacker.start()
        try:
            time.sleep(3)  # the stranger's visitor is locked out by now
            cookie = {"Cookie": signed_in}
            assert requests.get(f"{guard.url}/echo", headers=cookie, timeout=10).status_code == 200
            assert requests.get(f"{guard.url}/echo", headers=api, timeout=10).status_code == 200
            # A new browser of the owner: it got the sign-in page first, as browsers do.
            browser = requests.Session()
            page = browser.get(f"{guard.url}/", headers={"Accept": "text/html"}, timeout=10)
            assert page.status_code == 401
            visitor = page.cookies[auth.VISITOR_COOKIE]
            began = time.monotonic()
            login = requests.post(
                f"{guard.url}/.scnet-guard/login",
                data={"password": PASSWORD, "next": "/"},
                headers={"Cookie": f"{auth.VISITOR_COOKIE}={visitor}"},
                allow_redirects=False,
                timeout=60,
            )
            waited = time.monotonic() - began
        finally:
            stop.set()
            for attacker in attackers:
                attacker.join()
        assert login.status_code == 303, login.text
        print(f"the owner's new sign-in under attack took {waited:.1f} s")


@pytest.mark.slow
def test_a_browser_that_signed_in_before_signs_in_at_once_while_strangers_invent_visitors(
    service_port: int, tmp_path: Path
) -> None:
    with guard_in_front_of(service_port, tmp_path) as guard:
        page = requests.get(f"{guard.url}/", headers={"Accept": "text/html"}, timeout=10)
        browser = {"Cookie": f"{auth.VISITOR_COOKIE}={page.cookies[auth.VISITOR_COOKIE]}"}

        def sign_in() -> requests.Response:
            return requests.post(
                f"{guard.url}/.scnet-guard/login",
                data={"password": PASSWORD, "next": "/"},
                headers=browser,
                allow_redirects=False,
                timeout=60,
            )

        assert sign_in().status_code == 303  # then the session ends (signed out, expired)
        stop = threading.Event()
        invented = iter(range(10**6))

        def stranger() -> None:
            while not stop.is_set():
                guessed(guard, "basic", {"X-Forwarded-For": f"10.3.0.{next(invented) % 250}"})

        strangers = [threading.Thread(target=stranger) for _ in range(20)]
        for thread in strangers:
            thread.start()
        try:
            time.sleep(3)  # every turn is taken by now, and the queue is full
            again = sign_in()
        finally:
            stop.set()
            for thread in strangers:
                thread.join()
        assert again.status_code == 303, again.text


@pytest.mark.slow
def test_one_good_request_does_not_reset_the_strangers_count(
    service_port: int, tmp_path: Path
) -> None:
    with guard_in_front_of(service_port, tmp_path) as guard:
        for _ in range(PER_VISITOR - 1):
            assert guessed(guard, "basic") == 401
        visitor = requests.get(f"{guard.url}/", headers={"Accept": "text/html"}, timeout=10)
        owner = f"{auth.VISITOR_COOKIE}={visitor.cookies[auth.VISITOR_COOKIE]}"
        login = requests.post(
            f"{guard.url}/.scnet-guard/login",
            data={"password": PASSWORD, "next": "/"},
            headers={"Cookie": owner},
            allow_redirects=False,
            timeout=30,
        )
        assert login.status_code == 303
        assert guessed(guard, "basic") == 401  # the tenth failure ...
        assert guessed(guard, "basic") == 429  # ... locks the stranger out, not the owner


@pytest.mark.slow
def test_a_visitor_already_accepted_learns_nothing_free_while_the_checks_are_all_taken(
    service_port: int, tmp_path: Path
) -> None:
    """An accepted visitor's password passes without waiting for a turn; its wrong guesses
    must then be counted too, not answered "busy" (which would tell them apart for free)."""
    with guard_in_front_of(service_port, tmp_path) as guard:
        accepted = {"X-Forwarded-For": "203.0.113.9"}
        ok = requests.get(f"{guard.url}/echo", headers={**basic(), **accepted}, timeout=10)
        assert ok.status_code == 200
        with ThreadPoolExecutor(40) as pool:  # invented visitors take every turn there is
            crowd = pool.map(
                lambda n: guessed(guard, "basic", {"X-Forwarded-For": f"10.2.0.{n}"}), range(40)
            )
            answers = []
            for _ in range(PER_VISITOR + 2):
                response = requests.get(
                    f"{guard.url}/echo", headers={**basic("wrong"), **accepted}, timeout=60
                )
                answers.append((response.status_code, response.headers.get("Retry-After")))
            list(crowd)
    assert answers == [(401, None)] * PER_VISITOR + [(429, "60")] * 2


# 3. Bounded everything


@pytest.fixture
def quick_guard(
    service_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Guarded]:
    """A guard that waits 2 s for a request's head and allows 20 connections."""
    monkeypatch.setenv("SCNET_GUARD_IDLE_TIMEOUT", "2")
    monkeypatch.setenv("SCNET_GUARD_MAX_CONNECTIONS", "20")
    with guard_in_front_of(service_port, tmp_path) as guard:
        yield guard


def closed_by_guard(connection: socket.socket, within: float) -> bool:
    connection.settimeout(within)
    try:
        while connection.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


@pytest.mark.slow
def test_silent_and_slow_connections_are_dropped(quick_guard: Guarded) -> None:
    silent = socket.create_connection(("127.0.0.1", quick_guard.record.port))
    slow = socket.create_connection(("127.0.0.1", quick_guard.record.port))
    began = time.monotonic()
    for piece in (b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"X-A: 1\r\n", b"X-B: 2\r\n"):
        try:
            slow.sendall(piece)  # a header line a second: never a whole head
        except (BrokenPipeError, ConnectionResetError):
            break  # closed already: what the test wants
        time.sleep(1)
    assert closed_by_guard(slow, 10) and closed_by_guard(silent, 10)
    assert time.monotonic() - began < 15
    silent.close()
    slow.close()


@pytest.mark.slow
def test_a_trickling_sign_in_body_is_dropped_and_a_signed_in_upload_is_not(
    quick_guard: Guarded,
) -> None:
    # Sign-in bodies sent a byte a second would hold connections until the cap is reached and
    # the owner is kept out: the guard's own forms get the same bound as a request's head.
    slow = socket.create_connection(("127.0.0.1", quick_guard.record.port))
    slow.sendall(
        b"POST /.scnet-guard/login HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
    )
    began = time.monotonic()
    for _ in range(8):
        try:
            slow.sendall(b"p")
        except (BrokenPipeError, ConnectionResetError):
            break  # closed already: what the test wants
        time.sleep(1)
    assert closed_by_guard(slow, 10)
    assert time.monotonic() - began < 15
    slow.close()

    def trickle() -> Iterator[bytes]:
        for byte in b"hello":
            time.sleep(1)  # five seconds in all, beyond the two of the bound
            yield bytes([byte])

    # The owner's upload to the service takes as long as it takes.
    upload = http.client.HTTPConnection("127.0.0.1", quick_guard.record.port, timeout=30)
    upload.request("POST", "/echo", body=trickle(), headers={**basic(), "Content-Length": "5"})
    answer = upload.getresponse()
    assert answer.status == 200
    assert json.loads(answer.read())["body_length"] == 5
    upload.close()


def test_connections_beyond_the_cap_are_closed_and_the_guard_serves_on(
    quick_guard: Guarded,
) -> None:
    held = [socket.create_connection(("127.0.0.1", quick_guard.record.port)) for _ in range(20)]
    try:
        time.sleep(0.5)
        extra = socket.create_connection(("127.0.0.1", quick_guard.record.port))
        assert closed_by_guard(extra, 1.5)
        extra.close()
    finally:
        for connection in held:
            connection.close()
    time.sleep(0.5)
    assert requests.get(f"{quick_guard.url}/.scnet-guard/status", timeout=10).status_code == 200


def guard_log_bytes(guard: Guarded) -> int:
    return sum(path.stat().st_size for path in guard.folder.glob(f"{guard.record.guard_id}.log*"))


@pytest.mark.slow
def test_unauthenticated_load_on_a_service_still_loading_leaves_the_log_as_it_was(
    tmp_path: Path,
) -> None:
    with guard_in_front_of(free_port(), tmp_path) as guard:  # nothing listens there yet
        before = guard_log_bytes(guard)
        for _ in range(200):
            status = requests.get(f"{guard.url}/.scnet-guard/status", timeout=10)
            assert status.status_code == 503
            assert requests.get(f"{guard.url}/x", timeout=10).status_code == 401
        assert guard_log_bytes(guard) - before < 1024


@pytest.mark.slow
def test_malformed_credentials_and_origins_are_refused_without_a_log_line(
    quick_guard: Guarded,
) -> None:
    before = guard_log_bytes(quick_guard)
    for path in ("/echo", "/.scnet-guard/check"):
        for _ in range(20):
            answer = requests.get(
                f"{quick_guard.url}{path}", headers={"Authorization": "Basic \xe9"}, timeout=10
            )
            assert answer.status_code == 401
    for path in ("/.scnet-guard/login", "/.scnet-guard/logout"):
        for _ in range(20):
            answer = requests.post(
                f"{quick_guard.url}{path}",
                data={"password": PASSWORD},
                headers={"Origin": "http://["},
                allow_redirects=False,
                timeout=10,
            )
            assert answer.status_code == 403
    assert guard_log_bytes(quick_guard) - before < 1024


@pytest.mark.slow
def test_running_out_of_file_descriptors_leaves_the_log_small(quick_guard: Guarded) -> None:
    pid = quick_guard.record.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    in_use = len(os.listdir(f"/proc/{pid}/fd"))
    before = guard_log_bytes(quick_guard)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (in_use + 2, hard))
    held = []
    try:
        held = [socket.create_connection(("127.0.0.1", quick_guard.record.port)) for _ in range(15)]
        time.sleep(4)
        grown = guard_log_bytes(quick_guard) - before
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        for connection in held:
            connection.close()
    assert grown < 4096, f"the log grew by {grown} bytes in 4 s"
    time.sleep(0.5)
    assert requests.get(f"{quick_guard.url}/.scnet-guard/status", timeout=10).status_code == 200


def test_the_guard_s_log_is_rotated_at_a_bounded_size(tmp_path: Path) -> None:
    """The guard process's logging, as it sets it up: 5 MiB of warnings leave at most two
    files of about LOG_BYTES each."""
    log = tmp_path / "guard.log"
    script = (
        "import logging, sys\n"
        "from scnet_magic.guard import process\n"
        "process._log_to(__import__('pathlib').Path(sys.argv[1]))\n"
        "for n in range(5 * 1024):\n"
        "    logging.getLogger('scnet_magic.guard').warning('x' * 1000)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(log)], check=True, timeout=60)
    sizes = [path.stat().st_size for path in tmp_path.glob("guard.log*")]
    assert len(sizes) == 2 and max(sizes) <= process.LOG_BYTES + 2048, sizes


# 6. Cookies


def test_a_junk_cookie_with_the_guard_s_name_planted_first_does_not_sign_out(
    service_port: int, tmp_path: Path
) -> None:
    with guard_in_front_of(service_port, tmp_path) as guard:
        login = guard.login()
        set_cookie = login.headers["Set-Cookie"]
        assert set_cookie.startswith("__Host-")
        assert "Secure" in set_cookie and "Path=/;" in set_cookie and "Domain" not in set_cookie
        name = set_cookie.split("=", 1)[0]
        planted = f"{name}=junk; {guard.session_cookie()}"
        response = requests.get(f"{guard.url}/echo", headers={"Cookie": planted}, timeout=10)
        assert response.status_code == 200
        assert name not in json.dumps(response.json()["headers"])


# 7. Framing, cross-site forms, WebSocket scheme


def test_the_sign_in_page_cannot_be_framed(service_port: int, tmp_path: Path) -> None:
    with guard_in_front_of(service_port, tmp_path) as guard:
        for page in (
            requests.get(f"{guard.url}/.scnet-guard/login", timeout=10),
            requests.get(f"{guard.url}/x", headers={"Accept": "text/html"}, timeout=10),
        ):
            assert page.headers["X-Frame-Options"] == "DENY"
            assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_sign_in_and_out_from_another_site_are_refused(service_port: int, tmp_path: Path) -> None:
    with guard_in_front_of(service_port, tmp_path) as guard:
        foreign = {"Origin": "https://evil.example"}
        login = requests.post(
            f"{guard.url}/.scnet-guard/login",
            data={"password": PASSWORD, "next": "/"},
            headers=foreign,
            allow_redirects=False,
            timeout=10,
        )
        assert login.status_code == 403 and "Set-Cookie" not in login.headers
        cookie = guard.session_cookie()
        out = requests.post(
            f"{guard.url}/.scnet-guard/logout",
            headers={**foreign, "Cookie": cookie},
            allow_redirects=False,
            timeout=10,
        )
        assert out.status_code == 403
        assert requests.get(f"{guard.url}/echo", headers={"Cookie": cookie}, timeout=10).ok
        own = {"Origin": guard.url, "Cookie": cookie}
        out = requests.post(
            f"{guard.url}/.scnet-guard/logout", headers=own, allow_redirects=False, timeout=10
        )
        assert out.status_code == 303


def test_a_websocket_origin_must_have_the_scheme_the_visitor_used(
    service_port: int, tmp_path: Path
) -> None:
    with guard_in_front_of(service_port, tmp_path) as guard:
        cookie = guard.session_cookie()
        host = f"127.0.0.1:{guard.record.port}"
        url = f"ws://{host}/ws"
        headers = [f"Cookie: {cookie}", "X-Forwarded-Proto: https"]
        assert refused_websocket(url, header=headers, origin=f"http://{host}") == 403
        connection = websocket.create_connection(
            url, timeout=10, header=headers, origin=f"https://{host}"
        )
        assert json.loads(connection.recv())["subprotocol"] is None  # the service's greeting
        connection.send("hi")
        assert connection.recv() == "hi"
        connection.close()


# 8. and 12. Authorization: the guard's, or the service's


def echoed_headers(guard: Guarded, headers: dict[str, str]) -> dict[str, list[str]]:
    response = requests.get(f"{guard.url}/echo", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    seen: dict[str, list[str]] = response.json()["headers"]
    return seen


def test_the_guard_s_password_never_reaches_the_service_whichever_way_it_came(
    service_port: int, tmp_path: Path
) -> None:
    with guard_in_front_of(service_port, tmp_path, API_PASSWORD) as guard:
        login = guard.login(API_PASSWORD)
        cookie = {"Cookie": f"{auth.COOKIE_NAME}={login.cookies[auth.COOKIE_NAME]}"}
        for credential in (
            basic(API_PASSWORD),
            {"Authorization": f"Bearer {API_PASSWORD}"},
            {"Authorization": f"token {API_PASSWORD}"},
            {"X-Scnet-Guard-Password": API_PASSWORD},
        ):
            for extra in ({}, cookie):
                seen = echoed_headers(guard, {**credential, **extra})
                assert API_PASSWORD not in json.dumps(seen), (credential, extra)
        # The service's own Authorization passes, beside the cookie or the guard's header.
        for own in (cookie, {"X-Scnet-Guard-Password": API_PASSWORD}):
            for value in ("Bearer service-key", "token jupyter-token"):
                seen = echoed_headers(guard, {**own, "Authorization": value})
                assert seen["authorization"] == [value]
                assert "x-scnet-guard-password" not in seen
        wrong = requests.get(
            f"{guard.url}/echo", headers={"Authorization": "Bearer wrong"}, timeout=10
        )
        assert wrong.status_code == 401


class FakeOpenAI(BaseHTTPRequestHandler):
    """Just enough of an OpenAI-compatible server: /v1/models and /v1/chat/completions; it
    remembers the Authorization it was sent."""

    seen: ClassVar[list[str | None]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def answer(self, body: dict[str, Any]) -> None:
        FakeOpenAI.seen.append(self.headers.get("Authorization"))
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.answer(
            {
                "object": "list",
                "data": [{"id": "tiny", "object": "model", "created": 0, "owned_by": "test"}],
            }
        )

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        message = {"role": "assistant", "content": "hello"}
        self.answer(
            {
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": "tiny",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            }
        )


@pytest.fixture
def openai_service() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeOpenAI.seen = []
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_the_openai_client_gets_in_with_the_password_as_its_api_key(
    openai_service: int, tmp_path: Path
) -> None:
    with guard_in_front_of(openai_service, tmp_path, API_PASSWORD) as guard:
        client = openai.OpenAI(base_url=f"{guard.url}/v1", api_key=API_PASSWORD, max_retries=0)
        assert [model.id for model in client.models.list()] == ["tiny"]
        chat = client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "hi"}]
        )
        assert chat.choices[0].message.content == "hello"
        assert FakeOpenAI.seen == [None, None]  # the password stayed with the guard
        # A service with an API key of its own: the guard's password in the guard's header.
        own = openai.OpenAI(
            base_url=f"{guard.url}/v1",
            api_key="service-key",
            default_headers={"X-Scnet-Guard-Password": API_PASSWORD},
            max_retries=0,
        )
        assert [model.id for model in own.models.list()] == ["tiny"]
        assert FakeOpenAI.seen[-1] == "Bearer service-key"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{guard.url}/v1", api_key="wrong", max_retries=0).models.list()


# 13. A page's fetch after its session is lost


def test_a_page_s_fetch_without_a_session_gets_json_and_no_password_dialog(
    service_port: int, tmp_path: Path
) -> None:
    with guard_in_front_of(service_port, tmp_path) as guard:
        fetch = {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty", "Accept": "*/*"}
        response = requests.get(f"{guard.url}/api/predict?x=1", headers=fetch, timeout=10)
        assert response.status_code == 401
        assert "WWW-Authenticate" not in response.headers
        body = response.json()
        assert body["login"] == "/.scnet-guard/login?next=%2Fapi%2Fpredict%3Fx%3D1"
        assert body["error"]
        # Other clients keep their challenge.
        plain = requests.get(f"{guard.url}/api/predict", timeout=10)
        assert plain.headers["WWW-Authenticate"].startswith("Basic")


# 15. The fragment kept across sign-in; every guard stopped at once


def test_the_sign_in_page_keeps_the_fragment_with_a_script_its_policy_allows(
    service_port: int, tmp_path: Path
) -> None:
    with guard_in_front_of(service_port, tmp_path) as guard:
        page = requests.get(f"{guard.url}/.scnet-guard/login?next=/board", timeout=10)
        nonce = re.search(r'<script nonce="([^"]+)">', page.text)
        assert nonce is not None and "location.hash" in page.text
        assert f"'nonce-{nonce.group(1)}'" in page.headers["Content-Security-Policy"]
        again = requests.get(f"{guard.url}/.scnet-guard/login", timeout=10)
        assert nonce.group(1) not in again.text  # a new one each time
        login = guard.login(next_path="/board#scalars")
        assert login.headers["Location"] == "/board#scalars"


@pytest.mark.slow
def test_stop_all_stops_every_guard(guard_dir: Path) -> None:
    with running_service() as first, running_service() as second:
        for port in (first, second):
            started = run_scnet(["guard", "--port", str(port), "--password-stdin"], stdin=PASSWORD)
            assert started.returncode == 0, started.stderr
        assert len(list_guards()) == 2
        stopped = run_scnet(["guard", "--stop", "all"])
        assert stopped.returncode == 0, stopped.stderr
        assert list_guards() == []
        assert "stopped 2 guards" in stopped.stdout
        none = run_scnet(["guard", "--stop", "all"])
        assert none.returncode == 0 and "no guard runs here" in none.stdout
        started = run_scnet(["guard", "--port", str(first), "--password-stdin"], stdin=PASSWORD)
        port = list_guards()[0].port
        stopped = run_scnet(["guard", "--stop", "all", "--json"])
        assert json.loads(stopped.stdout) == {"stopped": True, "ports": [port]}


def test_stop_all_in_the_magic(ip: InteractiveShell, guard_dir: Path) -> None:
    with running_service() as port:
        started = run_scnet(["guard", "--port", str(port), "--password-stdin"], stdin=PASSWORD)
        assert started.returncode == 0, started.stderr
        with capture_output() as out:
            ip.run_line_magic("scnet_guard", "--stop all")
        assert "stopped 1 guard" in out.stdout and list_guards() == []


# 9. and 10. The guard process


def test_the_guard_process_keeps_no_secret_of_the_shell_that_started_it(
    service_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "SCNET_TOKEN": "tok-CANARY",
        "SCNET_ACCESS_KEY": "ak-CANARY",
        "SCNET_SECRET_KEY": "sk-CANARY",
        "AWS_SECRET_ACCESS_KEY": "aws-CANARY",
        "OPENAI_API_KEY": "oai-CANARY",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    with guard_in_front_of(service_port, tmp_path) as guard:
        environ = Path(f"/proc/{guard.record.pid}/environ").read_bytes()
    assert b"CANARY" not in environ
    names = {entry.split(b"=", 1)[0] for entry in environ.split(b"\0") if entry}
    assert b"PATH" in names and b"SCNET_GUARD_DIR" in names


def test_three_simultaneous_starts_with_three_passwords_start_one_guard(guard_dir: Path) -> None:
    ready = threading.Barrier(3)

    def start(password: str) -> str:
        ready.wait()
        try:
            return f"started {start_guard(port, password, host='127.0.0.1').port}"
        except GuardError as refused:
            return str(refused)

    with running_service() as port, ThreadPoolExecutor(3) as pool:
        outcomes = list(pool.map(start, [f"password number {n}" for n in range(3)]))
        assert len(list_guards()) == 1, outcomes
    assert sum(outcome.startswith("started") for outcome in outcomes) == 1, outcomes
    refused = [outcome for outcome in outcomes if not outcome.startswith("started")]
    assert all("with another password" in outcome for outcome in refused), outcomes


def test_a_refusal_keeps_the_connection_of_a_request_without_a_body(
    service_port: int, tmp_path: Path
) -> None:
    """A 401 for a GET leaves the kept-alive connection usable (a client that reuses it, as
    requests and browsers do, met a reset); a refused request with a body says it closes."""
    request = b"GET / HTTP/1.1\r\nHost: guarded\r\nAccept: */*\r\n\r\n"
    with guard_in_front_of(service_port, tmp_path) as guard:
        with socket.create_connection(("127.0.0.1", guard.record.port), timeout=5) as connection:
            answers = b""
            for _attempt in range(3):
                connection.sendall(request)
                while answers.count(b"Authentication required.") <= _attempt:
                    chunk = connection.recv(65536)
                    assert chunk, "the guard closed the connection after a refusal"
                    answers += chunk
        assert answers.count(b"HTTP/1.1 401") == 3
        assert b"Connection: close" not in answers

        with_body = b"POST / HTTP/1.1\r\nHost: guarded\r\nContent-Length: 5\r\n\r\nhello"
        answer = raw_exchange(guard.record.port, with_body)
        assert answer.startswith(b"HTTP/1.1 401")
        assert b"\r\nConnection: close\r\n" in answer
