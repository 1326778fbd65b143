"""Every bad answer the start endpoint can give, through every front end.

For each one the user gets one clear line that says what came back (the status, the start of
the body, or the TLS problem), no traceback, an answer within the timeout plus a second,
bounded memory, and the start request is sent exactly once.
"""

from __future__ import annotations

import datetime
import re
import ssl
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import trustme
from sandbox_faults import FAULTS
from sandbox_faults import FaultySandbox as Sandbox

from scnet_magic import (
    ApiError,
    HttpError,
    MalformedResponse,
    RequestTimeout,
    ScnetError,
    TransportError,
)
from scnet_magic.transport import MAX_BODY

from frontends import (
    FRONT_ENDS,
    FrontEnd,
    Outcome,
    Target,
    check_shown_as_failed,
    front_end_cases,
)

TIMEOUT = 1.5  # the client's timeout in these tests
STALL = 4.0  # how long the slow faults stall: well past the timeout
BOUND = TIMEOUT + 1.0  # every answer comes within this
MAY_HAVE_RUN = "may have reached the platform"
ORIGIN = r"http://127\.0\.0\.1:\d+"
COMMAND = "python app.py"  # the cell magic takes its command from the cell, so always give one


@dataclass(frozen=True)
class Expect:
    """What the user must be told about one bad answer."""

    error: type[ScnetError] | None  # what the Python API raises; None: a valid answer
    says: tuple[str, ...] = ()  # patterns the one line must match: what came back
    may_have_run: bool = False  # the hint must warn that the start may have run


EXPECTED: dict[str, Expect] = {
    "html502": Expect(
        HttpError,
        (r"^HTTP 502 Bad Gateway: <html> <head><title>502 Bad Gateway</title>", "nginx"),
    ),
    "truncated": Expect(
        MalformedResponse,
        (r'^Unexpected answer \(HTTP 200, not valid JSON\): \{"code": "0", "msg": "success"',),
    ),
    "data-null": Expect(
        MalformedResponse, (r"^Unexpected answer \(HTTP 200, 'data' is null, expected an object",)
    ),
    "data-list": Expect(
        MalformedResponse,
        (r"\(HTTP 200, 'data' is an array, expected an object\): \[\{\"execSuccess\"",),
    ),
    "code-missing": Expect(
        MalformedResponse, (r"\(HTTP 200, no 'code' field\): \{\"msg\": \"success\"",)
    ),
    "code-int": Expect(None),
    "exec-string": Expect(
        MalformedResponse,
        (r"\(HTTP 200, 'execSuccess' is a string, expected true or false\): \"false\"",),
    ),
    "401-json": Expect(
        ApiError, (r"^SCNet API error 10008 \(insufficient permission, HTTP 401\)",)
    ),
    "403-json": Expect(
        ApiError, (r"^SCNet API error 10008 \(insufficient permission, HTTP 403\)",)
    ),
    "500-json": Expect(
        ApiError, (r"^SCNet API error 10001 \(internal error, HTTP 500\): 内部错误",)
    ),
    "401-plain": Expect(HttpError, (r"^HTTP 401 Unauthorized: 401 Unauthorized",)),
    "403-plain": Expect(HttpError, (r"^HTTP 403 Forbidden: <html>", "403 Forbidden")),
    "500-plain": Expect(
        HttpError, (r"^HTTP 500 Internal Server Error: 500 Internal Server Error",)
    ),
    "huge": Expect(
        MalformedResponse,
        (r'^Unexpected answer \(HTTP 200, body larger than 2 MiB\): \{"code": "0", "msg": "xxx',),
    ),
    "slow-headers": Expect(
        RequestTimeout, (rf"^[Nn]o answer from {ORIGIN} within 1\.5 s",), may_have_run=True
    ),
    "trickle": Expect(
        RequestTimeout,
        (rf"^[Tt]he answer from {ORIGIN} \(HTTP 200\) did not finish within 1\.5 s",),
        may_have_run=True,
    ),
    "reset": Expect(
        TransportError,
        (
            rf"^[Tt]he answer from {ORIGIN} \(HTTP 200\) was cut off: "
            "connection reset by the server",
        ),
        may_have_run=True,
    ),
    "drop": Expect(
        TransportError,
        (rf"^[Rr]equest to {ORIGIN} failed: the server closed the connection without answering",),
        may_have_run=True,
    ),
    "redirect-http": Expect(
        HttpError,
        (r"^HTTP 307 Temporary Redirect: redirected to http://example\.invalid/ai/openapi/",),
    ),
    "redirect-loop": Expect(
        HttpError, (rf"^HTTP 307 Temporary Redirect: redirected to {ORIGIN}/ai/openapi/",)
    ),
}


# Each run of the command is a subprocess, so it takes a representative subset: one fault of
# each kind (an HTTP error page, a plain and an enveloped error status, not JSON, the wrong
# shape, the tolerated integer code, the body limit, a timeout, a cut and a dropped
# connection, a redirect), and one TLS failure. The client that reads the answers is shared
# with the other front ends, which run them all.
COMMAND_FAULTS = {
    "cli": [
        *["html502", "500-plain", "401-json", "truncated", "data-list", "code-int", "huge"],
        *["slow-headers", "reset", "drop", "redirect-loop"],
    ]
}
COMMAND_TLS = {"cli": ["untrusted"]}


@pytest.fixture(params=sorted(FRONT_ENDS))
def front_end(request: pytest.FixtureRequest) -> FrontEnd:
    return FRONT_ENDS[request.param](request)


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(shared_sandbox: Sandbox) -> Iterator[Sandbox]:
    """One sandbox for the module (starting one per test adds seconds), reset for each test."""
    shared_sandbox.clear_log()
    yield shared_sandbox
    shared_sandbox.fault = None


def check_error(front_end: FrontEnd, outcome: Outcome, expect: Expect) -> None:
    """One line, that says what came back, shown where the front end shows a failure, without
    a traceback."""
    assert outcome.result is None, outcome.result
    assert isinstance(outcome.error, front_end.user_error), outcome.shown
    if front_end.user_error is ScnetError:
        assert expect.error is not None and isinstance(outcome.error, expect.error)
    line = outcome.message
    assert "\n" not in line and "\r" not in line, line
    for pattern in expect.says:
        assert re.search(pattern, line), f"{pattern!r} not in {line!r}"
    check_shown_as_failed(outcome)
    assert (MAY_HAVE_RUN in outcome.shown) == expect.may_have_run, outcome.shown
    assert "Traceback" not in outcome.shown


def test_every_fault_mode_is_in_the_table() -> None:
    assert set(EXPECTED) == set(FAULTS)


@pytest.mark.parametrize(
    ("front_end", "fault"),
    # The two that wait for the client's timeout are slow.
    front_end_cases(FRONT_ENDS, EXPECTED, {}, COMMAND_FAULTS, slow={"slow-headers", "trickle"}),
    indirect=["front_end"],
)
def test_fault(front_end: FrontEnd, sandbox: Sandbox, fault: str) -> None:
    sandbox.fault = fault
    sandbox.fault_delay = STALL
    target = Target(sandbox.base_url, sandbox.token, TIMEOUT)
    outcome = front_end.start(target, sandbox.notebook_id, "1223", COMMAND)

    expect = EXPECTED[fault]
    if expect.error is None:
        # An integer 0 for "code" is tolerated: the contract documents a string, some
        # answers carry a number.
        assert outcome.error is None, outcome.shown
        assert outcome.result is not None and outcome.result.pending
        assert outcome.result.url == f"https://c-{sandbox.notebook_id}.ksai.scnet.cn:58043"
    else:
        check_error(front_end, outcome, expect)
    assert outcome.elapsed < BOUND
    assert len(sandbox.start_requests()) == 1
    if fault in ("slow-headers", "trickle"):
        assert outcome.elapsed > TIMEOUT - 0.3  # it did wait for the timeout


# The command too: it runs in this process (frontends.run_scnet), inside this tracemalloc.
@pytest.mark.parametrize("front_end", sorted(FRONT_ENDS), indirect=True)
def test_huge_body_is_not_read_whole(front_end: FrontEnd, sandbox: Sandbox) -> None:
    sandbox.fault = "huge"  # 10 MB
    target = Target(sandbox.base_url, sandbox.token, TIMEOUT)
    tracemalloc.start()
    try:
        outcome = front_end.start(target, sandbox.notebook_id, "1223", COMMAND)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    check_error(front_end, outcome, EXPECTED["huge"])
    # The client stops at its body limit; holding the limit once, plus slack, is the bound.
    assert peak < MAX_BODY + 2 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    assert len(sandbox.start_requests()) == 1


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trusted_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trust(
    trusted_ca: trustme.CA,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Make the client trust ``trusted_ca`` the way a user would (a CA bundle)."""
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    trusted_ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))


def tls_sandbox(cert: trustme.LeafCert) -> Sandbox:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return Sandbox(tls=context)


PAST = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)

TLS_CASES = {
    # A certificate from an authority the client does not know (self-signed, a proxy's).
    "untrusted": (
        lambda ca: trustme.CA().issue_cert("127.0.0.1"),
        r"certificate not trusted \(unable to get local issuer certificate\)",
        "not from an authority this machine trusts",
    ),
    "wrong-host": (
        lambda ca: ca.issue_cert("scnet.example.cn"),
        r"certificate not trusted \(IP address mismatch, certificate is not valid for "
        r"'127\.0\.0\.1'\.\)",
        "for another address; check the base URL",
    ),
    "expired": (
        lambda ca: ca.issue_cert(
            "127.0.0.1", not_before=PAST, not_after=PAST + datetime.timedelta(days=30)
        ),
        r"certificate not trusted \(certificate has expired\)",
        "out of date, or this machine's clock is wrong",
    ),
}


@pytest.fixture
def tls(request: pytest.FixtureRequest, trusted_ca: trustme.CA) -> Iterator[tuple[Sandbox, str]]:
    make_cert, says, advice = TLS_CASES[request.param]
    with tls_sandbox(make_cert(trusted_ca)) as sandbox:
        yield sandbox, says, advice


@pytest.mark.usefixtures("trust")
@pytest.mark.parametrize(
    ("front_end", "tls"),
    front_end_cases(FRONT_ENDS, TLS_CASES, {}, COMMAND_TLS),
    indirect=True,
)
def test_tls_failure_names_the_certificate_problem(
    front_end: FrontEnd, tls: tuple[Sandbox, str, str]
) -> None:
    sandbox, says, advice = tls
    began = time.monotonic()
    outcome = front_end.start(
        Target(sandbox.base_url, sandbox.token, TIMEOUT), sandbox.notebook_id, "1223", COMMAND
    )
    expect = Expect(
        TransportError, (r"^[Ss]ecure connection to https://127\.0\.0\.1:\d+ failed: ", says)
    )
    check_error(front_end, outcome, expect)
    assert advice in outcome.shown
    assert time.monotonic() - began < BOUND
    assert sandbox.requests == []  # the handshake failed: nothing was sent


@pytest.mark.usefixtures("trust")
def test_tls_with_a_trusted_certificate_works(front_end: FrontEnd, trusted_ca: trustme.CA) -> None:
    """The control for the cases above: the same set-up with a good certificate."""
    with tls_sandbox(trusted_ca.issue_cert("127.0.0.1")) as sandbox:
        outcome = front_end.start(
            Target(sandbox.base_url, sandbox.token, TIMEOUT), sandbox.notebook_id, "1223", COMMAND
        )
        assert outcome.result is not None and outcome.result.pending, outcome.shown
        assert len(sandbox.start_requests()) == 1
