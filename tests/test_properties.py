"""Property-based tests: whatever a user gives, the result is either a well-formed request the
sandbox received or one clear user-facing line; never any other exception.

Runs are reproducible (``derandomize=True``, no example database) and each property tries
``EXAMPLES`` inputs. One sandbox serves the module; its log is cleared for every example.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from sandbox_faults import FaultySandbox as Sandbox

from scnet_magic import (
    ApiError,
    ConfigError,
    InvalidInput,
    ScnetClient,
    StartResult,
)
from scnet_magic.validation import is_loopback_host

from conftest import CANARY

# Thousands of generated examples, seconds a test: not in the inner loop.
pytestmark = pytest.mark.slow

EXAMPLES = 2000
PROPERTY = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # The function-scoped fixtures (environment, shell) hold nothing an example changes.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

RUNNING = Sandbox.notebook_id
TERMINATED = "1896050410550136834"
UNKNOWN = "1234567890123456789"
# What ends a line for IPython (str.splitlines): a line magic's line never holds these.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


@pytest.fixture(scope="module")
def shared_sandbox() -> Iterator[Sandbox]:
    with Sandbox(token=CANARY) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(shared_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The sandbox, with the environment pointing at it and a default notebook id."""
    monkeypatch.setenv("SCNET_BASE_URL", shared_sandbox.base_url)
    monkeypatch.setenv("SCNET_TOKEN", CANARY)
    monkeypatch.setenv("SCNET_NOTEBOOK_ID", RUNNING)
    return shared_sandbox


def one_line(message: str) -> None:
    assert message.strip(), "empty message"
    assert "\n" not in message and "\r" not in message, message
    assert len(message) < 600, message
    assert CANARY not in message


def received(sandbox: Sandbox) -> dict[str, Any] | None:
    """The start request the sandbox received, checked for shape; None if none came."""
    starts = sandbox.start_requests()
    assert len(starts) <= 1, "sent more than once"
    if not starts:
        return None
    body = starts[0].body
    assert isinstance(body, dict), body
    assert {"id", "customizePort"} <= set(body) <= {"id", "customizePort", "command"}, body
    notebook_id, port = body["id"], body["customizePort"]
    assert isinstance(notebook_id, str) and notebook_id.isascii() and notebook_id.isdigit()
    assert isinstance(port, str) and port == str(int(port)) and 1 <= int(port) <= 65535
    if "command" in body:
        command = body["command"]
        assert isinstance(command, str) and command.strip() and "\x00" not in command
    return body


def check_result(result: object, body: dict[str, Any] | None) -> None:
    assert isinstance(result, StartResult), result
    assert body is not None, "a result without a request"
    assert (result.notebook_id, str(result.port)) == (body["id"], body["customizePort"])


# -- the magic line -------------------------------------------------------------------------


def run_magic(ip: InteractiveShell, sandbox: Sandbox, line: str, cell: str | None) -> None:
    """Run the magic; check it sent a well-formed request or failed with one clear line."""
    sandbox.clear_log()
    try:
        with capture_output() as shown:
            if cell is None:
                result = ip.run_line_magic("scnet_start", line)
            else:
                result = ip.run_cell_magic("scnet_start", line, cell)
    except UsageError as exc:
        one_line(str(exc))
        if received(sandbox) is not None:
            # It reached the platform, which refused it (an unknown or stopped notebook).
            assert str(exc).startswith("SCNet API error"), str(exc)
            event("sent; the platform refused it")
        else:
            event("refused before sending")
        return
    check_result(result, received(sandbox))
    event("sent; started")
    assert CANARY not in shown.stdout + shown.stderr


line_text = st.text(st.characters(exclude_characters=LINE_BREAKS), max_size=60)


@PROPERTY
@given(line=line_text)
def test_any_magic_line(ip: InteractiveShell, sandbox: Sandbox, line: str) -> None:
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        words = [line]  # unbalanced quotes: the magic says so
    if not words:
        # A blank line, or only a comment, opens the form: another front end, with its own
        # tests.
        return
    run_magic(ip, sandbox, line, None)


def mixed(*parts: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Draw from each strategy in proportion to its weight (one_of would weigh each of the
    branches inside nested one_ofs equally)."""
    return st.sampled_from([strategy for weight, strategy in parts for _ in range(weight)]).flatmap(
        lambda strategy: strategy
    )


# Good values most often, so that a good share of the examples goes all the way to the
# sandbox; the values of the bad-input tables; and anything at all.
ids = mixed(
    (6, st.sampled_from([RUNNING, RUNNING, RUNNING, TERMINATED, UNKNOWN, f"00{RUNNING}"])),
    (1, st.sampled_from(["", " ", "-1", "0", "1.8e18", "١٢٣", "1" * 200])),
    (1, st.integers(-(10**20), 10**20).map(str)),
    (2, st.text(max_size=24)),
)
ports = mixed(
    (6, st.integers(1, 65_535).map(str)),
    (1, st.integers(-5, 70_000).map(str)),
    (1, st.sampled_from(["0", "65536", "1e3", "12.5", " 80", "0080", "", "９９", "9" * 5000])),
    (2, st.text(max_size=8)),
)
commands = mixed(
    (3, st.sampled_from(["python app.py", "a && b > log 2>&1", "echo 'a b'", "x  \\"])),
    (3, st.text(min_size=1, max_size=40)),
    (1, st.sampled_from(["", "   ", "\t", "a\x00b"])),
    (1, st.text()),
)
noise = st.one_of(
    st.sampled_from(["--", "-", "-p", "--bogus", "--token", "--id", "--port", "--command", "--po"]),
    st.text(max_size=10),
)


@st.composite
def magic_inputs(draw: st.DrawFn) -> tuple[str, str | None]:
    """A line (options in any order, given, left out or written oddly, sometimes with noise)
    and, for the cell magic, a cell."""
    cell = draw(st.none()) if draw(st.integers(0, 4)) else draw(commands)
    parts = []
    for name, values in (("--id", ids), ("--port", ports), ("--command", commands)):
        left_out = draw(st.integers(0, 5)) == 0 or (name == "--command" and cell is not None)
        if left_out and draw(st.integers(0, 5)):
            continue  # the id then comes from SCNET_NOTEBOOK_ID
        value = draw(values)
        style = draw(st.sampled_from(["quoted", "quoted", "equals", "bare", "double-quoted"]))
        if style == "quoted":
            parts.append(f"{name} {shlex.quote(value)}")
        elif style == "equals":
            parts.append(f"{name}={shlex.quote(value)}")
        elif style == "double-quoted":
            parts.append(f'{name} "{value}"')
        else:
            parts.append(f"{name} {value}")
    if draw(st.integers(0, 5)) == 0:
        parts.insert(draw(st.integers(0, len(parts))), draw(noise))
    line = " ".join(draw(st.permutations(parts)))
    return "".join(" " if ch in LINE_BREAKS else ch for ch in line), cell


@PROPERTY
@given(given_=magic_inputs())
def test_structured_magic_line_and_cell(
    ip: InteractiveShell, sandbox: Sandbox, given_: tuple[str, str | None]
) -> None:
    line, cell = given_
    if cell is None and not line.strip():
        return  # the form
    run_magic(ip, sandbox, line, cell)


# -- the Python API -------------------------------------------------------------------------

anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=24),
    st.binary(max_size=6),
    st.lists(st.integers(), max_size=2),
)
api_ids = mixed((1, st.sampled_from([int(RUNNING), f" {RUNNING}\n"])), (6, ids), (1, anything))
api_ports = mixed((3, st.integers(1, 65_535)), (1, st.integers()), (4, ports), (1, anything))
api_commands = mixed((3, st.none()), (5, commands), (1, anything))


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[ScnetClient]:
    with ScnetClient(base_url=sandbox.base_url, token=CANARY) as client:
        yield client


@PROPERTY
@given(notebook_id=api_ids, port=api_ports, command=api_commands)
def test_python_api_start(
    client: ScnetClient, sandbox: Sandbox, notebook_id: object, port: object, command: object
) -> None:
    sandbox.clear_log()
    try:
        result = client.start_service(notebook_id, port, command)  # type: ignore[arg-type]
    except InvalidInput as exc:
        one_line(exc.user_message())
        assert sandbox.requests == [], "invalid input was sent"
        event("refused before sending")
        return
    except ApiError as exc:
        one_line(exc.user_message())
        assert received(sandbox) is not None
        event("sent; the platform refused it")
        return
    check_result(result, received(sandbox))
    event("sent; started")


tokens = mixed(
    (4, st.just(CANARY)),
    (1, st.none()),
    (1, st.text(max_size=12)),
    (1, st.builds(lambda a, b: a + CANARY + b, st.text(max_size=3), st.text(max_size=3))),
    (1, anything),
)
base_urls = mixed(
    (2, st.none()),
    (2, st.sampled_from(["https://scnet.example.cn", "http://127.0.0.1:8080/", "https://h:8443"])),
    (
        4,
        st.builds(
            lambda scheme, userinfo, host, rest: f"{scheme}{userinfo}{host}{rest}",
            st.sampled_from(["https://", "http://", "ftp://", "", "HTTPS://", "//"]),
            st.sampled_from(["", "", "", "user:pw@", "@", f"u:{CANARY}@"]),
            st.sampled_from(
                ["scnet.example.cn", "127.0.0.1", "localhost", "[::1]", "", "10.0.0.1"]
            ),
            st.one_of(
                st.sampled_from(["", "/", ":443", ":0", ":99999", ":x", "/ai", "?q=1", "#f"]),
                line_text,
            ),
        ),
    ),
    (1, anything),
)
timeouts = mixed(
    (4, st.none()),
    (1, st.floats()),
    (1, st.integers(-5, 10**6)),
    (1, st.text(max_size=6)),
    (1, anything),
)


@PROPERTY
@given(base_url=base_urls, token=tokens, timeout=timeouts)
def test_python_api_settings(base_url: object, token: object, timeout: object) -> None:
    """Constructing a client sends nothing; it either holds valid settings or says why not."""
    try:
        client = ScnetClient(base_url=base_url, token=token, timeout=timeout)  # type: ignore[arg-type]
    except (InvalidInput, ConfigError) as exc:
        one_line(exc.user_message())
        event(f"refused: {type(exc).__name__}")
        return
    event("accepted")
    with client:
        parts = urlsplit(client.base_url)
        assert parts.hostname, client.base_url
        assert parts.scheme == "https" or is_loopback_host(parts.hostname)
        assert parts.scheme in ("http", "https") and "@" not in parts.netloc
        assert not (parts.query or parts.fragment or client.base_url.endswith("/"))
        assert math.isfinite(client.timeout) and client.timeout > 0
        assert CANARY not in repr(client)


# -- the form -------------------------------------------------------------------------------


@pytest.fixture
def start_form(sandbox: Sandbox) -> Iterator[Any]:
    """One form for every example: a user typing into the same form again and again."""
    from scnet_magic.startform import StartForm

    form = StartForm()
    assert form.wait(30)
    yield form
    form.wait(30)


form_commands = mixed((1, st.just("")), (6, commands))


@PROPERTY
@given(notebook_id=ids, port=ports, command=form_commands)
def test_form_fields(
    start_form: Any, sandbox: Sandbox, notebook_id: str, port: str, command: str
) -> None:
    """Whatever is typed, Start sends one well-formed request or names the problems."""
    sandbox.clear_log()
    start_form.result = start_form.error = None
    start_form.notebook_id.value = notebook_id
    start_form.port.value = port
    start_form.command.value = command
    start_form.start_button.click()
    assert start_form.wait(30), "the start did not finish"
    body = received(sandbox)
    error = start_form.error
    if body is None:
        assert isinstance(error, (InvalidInput, ConfigError)), error
        assert start_form.problems.value, "refused without saying why"
        one_line(error.user_message())
        event("refused before sending")
    elif error is not None:
        assert isinstance(error, ApiError), error
        one_line(error.user_message())
        event("sent; the platform refused it")
    else:
        check_result(start_form.result, body)
        event("sent; started")
    assert CANARY not in start_form.problems.value + start_form.result_area.value
