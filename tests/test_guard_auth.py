"""The guard's rules on their own: where a browser may be sent back to, which language it
gets, how Basic credentials and cookies are read, and how the throttle and sessions count
(with a clock of the test's own: no waiting, no timing); the turns for password checks, on
an event loop with a fraction of a second between turns."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from tornado import httputil
from tornado.httputil import HTTPHeaders

from scnet_magic.guard import auth
from scnet_magic.guard.base import Guard
from scnet_magic.guard.hop_by_hop import connection_tokens, end_to_end
from scnet_magic.guard.relay import framing_problem, origin_form
from scnet_magic.guard.websocket_relay import same_origin


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/", "/"),
        ("/lab/tree?x=1#y", "/lab/tree?x=1#y"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/a\\b", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("/\t/evil.example", "/"),
        ("/\n/evil.example", "/"),
        ("", "/"),
        (None, "/"),
        ("/" + "a" * 5000, "/"),
    ],
)
def test_safe_next(value: str | None, expected: str) -> None:
    assert auth.safe_next(value) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "en"),
        ("zh-CN,zh;q=0.9", "zh"),
        ("en-US,zh-CN;q=0.8", "en"),
        ("fr-FR,zh;q=0.5,en;q=0.4", "zh"),
        ("zh;q=0,en", "en"),
        ("de", "en"),
    ],
)
def test_preferred_language(header: str | None, expected: str) -> None:
    assert auth.preferred_language(header) == expected


def test_basic_password_takes_everything_after_the_first_colon() -> None:
    assert auth.basic_password("Basic dXNlcjpwYTpzcw==") == "pa:ss"  # user:pa:ss
    assert auth.basic_password("basic OnNlY3JldA==") == "secret"  # no user name
    assert auth.basic_password("Bearer token") is None
    assert auth.basic_password("Basic not-base64!") is None
    assert auth.basic_password("Basic bm9jb2xvbg==") is None  # "nocolon"
    assert auth.basic_password(None) is None
    assert auth.basic_password("Basic \xe9") is None  # not ASCII: not base64 either


@pytest.mark.parametrize("origin", ["http://[", "http://[::1", "https://x]"])
def test_a_malformed_origin_is_not_this_site(origin: str) -> None:
    request = httputil.HTTPServerRequest(
        start_line=httputil.RequestStartLine("POST", "/", "HTTP/1.1"),
        headers=httputil.HTTPHeaders({"Origin": origin, "Host": "x"}),
    )
    assert not same_origin(request)


def test_the_guard_cookie_is_found_and_removed_among_others() -> None:
    name = auth.COOKIE_NAME
    header = f"a=1; {name}=abc; b=2"
    assert auth.cookie_values(header) == ["abc"]
    assert auth.without_guard_cookie(header) == "a=1; b=2"
    assert auth.without_guard_cookie(f"{name}=abc") is None
    assert auth.cookie_values("a=1") == []
    # Every value is read: a junk one planted first does not hide the real one.
    assert auth.cookie_values(f"{name}=junk; {name}=abc") == ["junk", "abc"]
    assert auth.without_guard_cookie(f"{auth.VISITOR_COOKIE}=v; a=1") == "a=1"


def test_bearer_and_token_offer_the_password_too() -> None:
    assert auth.authorization_password("Bearer s3cret") == "s3cret"
    assert auth.authorization_password("token s3cret") == "s3cret"
    assert auth.authorization_password("Basic OnNlY3JldA==") == "secret"
    assert auth.authorization_password("Bearer ") is None
    assert auth.authorization_password("Digest x") is None
    # A UTF-8 header value arrives as Latin-1: read back as the client meant it.
    assert auth.authorization_password("Bearer " + "电池".encode().decode("latin-1")) == "电池"


def test_the_password_hash_matches_only_the_password_and_hides_itself() -> None:
    hashed = auth.PasswordHash.of("s3cret")
    assert hashed.matches("s3cret")
    assert not hashed.matches("s3cret ")
    assert "s3cret" not in repr(hashed) and hashed.salt.hex() not in repr(hashed)
    assert auth.PasswordHash.of("s3cret").digest != hashed.digest  # salted


def test_the_accepted_password_is_recognised_and_nothing_else() -> None:
    accepted = auth.Accepted()
    assert not accepted.recognises("s3cret")  # nothing accepted yet
    accepted.remember("s3cret")
    assert accepted.recognises("s3cret")
    assert not accepted.recognises("s3cret ") and not accepted.recognises("")
    assert "s3cret" not in repr(vars(accepted))


class CountingHash(auth.PasswordHash):
    """A real scrypt hash that counts its checks."""

    checks = 0

    def matches(self, candidate: str) -> bool:
        CountingHash.checks += 1
        return super().matches(candidate)


def test_scrypt_runs_once_for_the_right_password_and_every_time_for_a_wrong_one() -> None:
    hashed = auth.PasswordHash.of("s3cret")
    guard = Guard(1, "id", CountingHash(hashed.salt, hashed.digest))

    async def checks() -> list[bool]:
        return [await guard.password_matches(p) for p in ("s3cret", "s3cret", "x", "x", "s3cret")]

    CountingHash.checks = 0
    # In a thread of its own: another test of the session may have left this thread's event
    # loop running (asyncio.run refuses to start inside one).
    try:
        with ThreadPoolExecutor(1) as thread:
            answers = thread.submit(asyncio.run, checks()).result()
    finally:
        guard.close()
    assert answers == [True, True, False, False, True]
    # The right password: scrypt the first time only. Wrong ones: scrypt every time, so a
    # guesser is as slow as ever.
    assert CountingHash.checks == 3


def test_the_throttle_locks_after_ten_failures_for_a_minute() -> None:
    clock = Clock()
    throttle = auth.Throttle(clock)
    for _ in range(9):
        throttle.reserve("10.0.0.1")
    assert not throttle.locked("10.0.0.1")
    throttle.reserve("10.0.0.1")
    assert throttle.locked("10.0.0.1")
    assert not throttle.locked("10.0.0.2")  # per address
    clock.now += auth.LOCKOUT
    assert not throttle.locked("10.0.0.1")


def test_failures_older_than_the_window_do_not_count() -> None:
    clock = Clock()
    throttle = auth.Throttle(clock)
    for _ in range(9):
        throttle.reserve("10.0.0.1")
    clock.now += auth.FAILURE_WINDOW + 1
    throttle.reserve("10.0.0.1")
    assert not throttle.locked("10.0.0.1")


def test_a_success_takes_back_its_own_reservation_only() -> None:
    throttle = auth.Throttle(Clock())
    for _ in range(9):
        throttle.reserve("10.0.0.1")
    assert throttle.reserve("10.0.0.1")  # the tenth check, counted before it runs
    assert throttle.locked("10.0.0.1") and not throttle.reserve("10.0.0.1")
    throttle.succeeded("10.0.0.1")  # ... and it succeeded
    assert not throttle.locked("10.0.0.1") and throttle.trusted("10.0.0.1")
    throttle.reserve("10.0.0.1")  # the nine earlier failures still count
    assert throttle.locked("10.0.0.1")


def test_visitors_are_told_apart_by_the_last_forwarded_address_and_their_cookie() -> None:
    cookie = f"{auth.VISITOR_COOKIE}=abc"
    keys = {
        auth.visitor_key("10.0.0.1", [], None),
        auth.visitor_key("10.0.0.1", ["1.1.1.1, 2.2.2.2"], None),
        auth.visitor_key("10.0.0.1", ["1.1.1.1", "3.3.3.3"], None),
        auth.visitor_key("10.0.0.1", [], cookie),
    }
    assert len(keys) == 4
    assert auth.visitor_key("10.0.0.1", ["9.9.9.9, 2.2.2.2"], None) == auth.visitor_key(
        "10.0.0.1", ["2.2.2.2"], None
    )
    assert len(auth.visitor_key("p", ["x" * 5000], f"{auth.VISITOR_COOKIE}={'y' * 5000}")) < 200


def test_sessions_expire_and_end() -> None:
    clock = Clock()
    sessions = auth.Sessions(lifetime=100, clock=clock)
    first, second = sessions.start(), sessions.start()
    assert first != second and sessions.valid(first) and sessions.valid(second)
    assert not sessions.valid(first + "x") and not sessions.valid(None)
    sessions.end(second)
    assert not sessions.valid(second)
    clock.now += 100
    assert not sessions.valid(first)


@pytest.mark.parametrize(
    ("headers", "ambiguous"),
    [
        ({"Content-Length": "5"}, False),
        ({"Transfer-Encoding": "chunked"}, False),
        ({}, False),
        ({"Content-Length": "5", "Transfer-Encoding": "chunked"}, True),
        ({"Transfer-Encoding": "gzip, chunked"}, True),
        ({"Transfer-Encoding": "identity"}, True),
        ({"Content-Length": "5, 6"}, True),
        ({"Content-Length": "5, 5"}, False),
        ({"Content-Length": "+5"}, True),
        ({"Content-Length": "0x5"}, True),
    ],
)
def test_framing_problem(headers: dict[str, str], ambiguous: bool) -> None:
    assert framing_problem(HTTPHeaders(headers)) is ambiguous


def test_two_content_length_headers_that_differ_are_ambiguous() -> None:
    headers = HTTPHeaders()
    headers.add("Content-Length", "5")
    headers.add("Content-Length", "6")
    assert framing_problem(headers)


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("/a?b=c", "/a?b=c"),
        ("http://evil.example:81/a?b=c", "/a?b=c"),
        ("http://evil.example", "/"),
        ("*", "*"),
    ],
)
def test_origin_form_never_keeps_a_host(uri: str, path: str) -> None:
    assert origin_form(uri) == path


def test_connection_tokens_are_read_from_lists_and_repeated_headers() -> None:
    listed = HTTPHeaders({"Connection": "keep-alive, Close"})
    assert connection_tokens(listed.get_list("Connection")) == {"keep-alive", "close"}
    repeated = HTTPHeaders()
    repeated.add("Connection", "X-Private")
    repeated.add("Connection", "close")
    assert connection_tokens(repeated.get_list("Connection")) == {"x-private", "close"}
    assert connection_tokens(HTTPHeaders().get_list("Connection")) == frozenset()


def test_end_to_end_keeps_what_a_proxy_passes_on() -> None:
    headers = [("Connection", "X-Private"), ("X-Private", "1"), ("Keep-Alive", "5")]
    headers += [("X-Scnet-Guard", "id"), ("Accept", "*/*"), ("accept", "text/html")]
    passed = end_to_end(headers, ["X-Private"], {"X-Scnet-Guard"})
    assert passed == [("Accept", "*/*"), ("accept", "text/html")]


def test_turns_go_round_the_visitors_and_end_for_those_who_wait_too_long() -> None:
    async def order() -> tuple[list[str], list[bool]]:
        turns = auth.Turns(burst=1, per_minute=600, wait_limit=0.5)  # one every 0.1 s
        served: list[str] = []

        async def take(visitor: str) -> bool:
            granted = await turns.take(visitor)
            if granted:
                served.append(visitor)
            return granted

        assert await take("first")  # the burst
        # "a" floods (two waiting, its limit; the third is refused at once), then "b" comes.
        flood = [asyncio.ensure_future(take("a")) for _ in range(3)]
        await asyncio.sleep(0)
        later = asyncio.ensure_future(take("b"))
        results = await asyncio.gather(*flood, later)
        slow = auth.Turns(burst=0, per_minute=1, wait_limit=0.2)  # a turn a minute: none in time
        return served, [*results, await slow.take("c")]

    with ThreadPoolExecutor(1) as thread:
        served, results = thread.submit(asyncio.run, order()).result()
    assert served == ["first", "a", "b", "a"]  # b's one request comes before a's second
    assert results == [True, True, False, True, False]
