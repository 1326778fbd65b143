"""A hostile server's answers on every endpoint, through every front end.

Each kind of answer in ``hostile_server.KINDS`` (credentials echoed back in every field and
header, terminal escapes, nested JSON, bad URLs, odd types, a list that never ends) meets the
start, the service's address, the notebook list and sign-in; through ``ScnetClient``, the
magics (text and HTML, with ``short_errors`` on and off) and the ``scnet`` command. Each ends
in a one-line error or a correct result, never a traceback, and nothing shown, raised or logged
holds a credential or a terminal control.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hostile_server import ESCAPES, KINDS, URL, Received, Reply, hostile_server
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from scnet_magic import ScnetClient, ScnetError
from scnet_magic.client import MAX_PAGES
from scnet_magic.models import Notebook, NotebookList
from scnet_magic.server_text import MAX_DEPTH, ServerText, TooDeep, strip_controls

from conftest import CANARY, SECRET_CANARY
from frontends import (
    FormFrontEnd,
    MagicFrontEnd,
    Outcome,
    Target,
    assert_reads_as_sentences,
    run_scnet,
    shown_error_lines,
)

ID = "1896050410550136833"
ACCESS_CANARY = "AK-CANARY-7c41e09b5d"
USER = "hostile-user"
TIMEOUT = 3.0
# The whole token and the parts of it no other token shares, the access key, the secret key.
SECRETS = [CANARY, *CANARY.split(".")[1:], ACCESS_CANARY, SECRET_CANARY]
# What a terminal obeys: C0 controls but tab and newline, DEL, C1 controls, bidi overrides.
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
ENDPOINTS = ("start", "url", "list", "sign-in")
# Through the client only: the instance's detail, the token's renewal and check.
CLIENT_ENDPOINTS = (*ENDPOINTS, "detail", "renew", "token-state")


def assert_safe(where: str, *texts: object) -> None:
    """No credential and no terminal control in any of the texts."""
    for text in map(str, texts):
        for secret in SECRETS:
            at = text.find(secret)
            assert at < 0, f"credential in {where}: …{text[max(0, at - 120) : at + 20]!r}"
        control = CONTROLS.search(text)
        assert control is None, (
            f"terminal control in {where}: …{text[max(0, control.start() - 60) : control.end()]!r}"
        )


def error_texts(error: BaseException) -> list[str]:
    texts: list[str] = []
    item: BaseException | None = error
    while item is not None:
        texts += [str(item), repr(item), str(getattr(item, "hint", ""))]
        item = item.__cause__ or item.__context__
    return texts


@pytest.fixture(autouse=True)
def logs_audited(debug_logs: pytest.LogCaptureFixture) -> Iterator[None]:
    """The package's and urllib3's DEBUG logs hold no credential and no control either."""
    yield
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    # The records of the test itself: at teardown, .records holds the teardown's only.
    for record in debug_logs.get_records("call"):
        assert_safe(f"log record of {record.name}", formatter.format(record))


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Any]]:
    """One hostile server per kind, started when a test first needs it and shared by every
    front end and endpoint that meets that kind: the answer is a function of the request, so
    a server holds nothing from one test to the next but what it received."""
    with contextlib.ExitStack() as stack:
        yield KindServers(stack)


class KindServers(dict[str, Any]):
    def __init__(self, stack: contextlib.ExitStack) -> None:
        super().__init__()
        self.stack = stack

    def __missing__(self, kind: str) -> Any:
        self[kind] = self.stack.enter_context(hostile_server(KINDS[kind]))
        return self[kind]


@pytest.fixture
def server(kind: str, servers: dict[str, Any]) -> Any:
    """The kind's server, its record of requests emptied for this test."""
    running = servers[kind]
    running.received.clear()
    return running


def login_env(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Sign-in settings aimed at ``url``, with the canaries as the key pair."""
    for name, value in {
        "SCNET_LOGIN_URL": url,
        "SCNET_AC_URL": url,
        "SCNET_USER": USER,
        "SCNET_ACCESS_KEY": ACCESS_CANARY,
        "SCNET_SECRET_KEY": SECRET_CANARY,
    }.items():
        monkeypatch.setenv(name, value)


def api_call(endpoint: str, url: str) -> Callable[[], object]:
    client = ScnetClient(base_url=url, token=CANARY, timeout=TIMEOUT)
    return {
        "start": lambda: client.start_service(ID, 1223, "python app.py"),
        "url": lambda: client.service_url(ID),
        "list": client.list_notebooks,
        "sign-in": lambda: ScnetClient.login(
            USER, ACCESS_CANARY, SECRET_CANARY, login_url=url, ac_url=url, timeout=TIMEOUT
        ),
        "detail": lambda: client.notebook(ID),
        "renew": lambda: client.renew_token(ac_url=url),
        "token-state": lambda: client.token_state(ac_url=url),
    }[endpoint]


def renderings(value: object) -> list[str]:
    texts = [repr(value), str(value)]
    for name in ("_repr_html_", "to_dict"):
        if hasattr(value, name):
            texts.append(str(getattr(value, name)()))
    if hasattr(value, "_repr_mimebundle_"):
        texts.append(str(value._repr_mimebundle_()))
    return texts


@pytest.mark.parametrize("endpoint", CLIENT_ENDPOINTS)
def test_client(kind: str, endpoint: str, server: Any) -> None:
    """``ScnetClient``: a ``ScnetError`` with a one-line message, or a result; both clean."""
    call = api_call(endpoint, server.url)
    try:
        value = call()
    except ScnetError as exc:
        assert "\n" not in exc.user_message(), exc.user_message()
        assert_safe(f"{kind} at {endpoint}: the error", exc.user_message(), *error_texts(exc))
    else:
        assert_safe(f"{kind} at {endpoint}: the result", *renderings(value))
    assert server.received, "nothing was sent"


def magic_cells(endpoint: str, magic: MagicFrontEnd, url: str) -> list[str]:
    setup = magic.point_at(Target(url, CANARY, TIMEOUT))
    return {
        "start": [*setup, f"%scnet_start --id {ID} --port 1223"],
        "url": [*setup, f"%scnet_url --id {ID}"],
        "list": [*setup, "%scnet_notebooks"],
        "sign-in": [f"%config ScnetMagics.timeout = {TIMEOUT!r}", "%scnet_login"],
    }[endpoint]


@pytest.mark.parametrize("short_errors", [True, False], ids=["short", "full"])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_magics(
    kind: str,
    endpoint: str,
    short_errors: bool,
    server: Any,
    ip: InteractiveShell,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The magics, text and HTML: one line (short errors) or the package's own error with its
    traceback (full), never another exception; nothing shown holds a credential or a control."""
    login_env(monkeypatch, server.url)
    magic = MagicFrontEnd(ip, monkeypatch)
    colors = ip.colors
    ip.run_line_magic("colors", "nocolor")  # IPython's own colours are not the server's
    try:
        setup = [f"%config ScnetMagics.short_errors = {short_errors}"]
        outcome = magic.run([*setup, *magic_cells(endpoint, magic, server.url)])
    finally:
        ip.run_line_magic("colors", colors)
    where = f"{kind} at %{endpoint} (short_errors={short_errors})"
    assert_safe(where, outcome.shown, *outcome.texts)
    if outcome.error is None:
        return
    if short_errors:
        assert isinstance(outcome.error, UsageError), (where, outcome.error)
        assert "Traceback" not in outcome.shown, outcome.shown
        assert "\n" not in str(outcome.error), outcome.error
        assert_reads_as_sentences(where, shown_error_lines(outcome))
    else:
        assert isinstance(outcome.error, ScnetError), (where, repr(outcome.error))


def test_form_start(kind: str, server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The start form: a result or an error in its result area, its widgets clean."""
    outcome = FormFrontEnd(monkeypatch).start(
        Target(server.url, CANARY, TIMEOUT), ID, "1223", "python app.py"
    )
    assert_safe(f"{kind} in the form", outcome.shown, *outcome.texts)
    if outcome.error is not None:
        assert_reads_as_sentences(kind, shown_error_lines(outcome))
    assert outcome.error is None or isinstance(outcome.error, ScnetError), repr(outcome.error)


# The command (a subprocess per run) meets a representative kind of each family.
COMMAND_KINDS = [
    "echo-every-field",
    "echo-api-error-json-escapes",
    "echo-redirect",
    "echo-not-json",
    "escapes-every-field",
    "escapes-reason",
    "nested-arrays",
    "url-bad-ipv6",
    "endless-list",
]
COMMAND_WORDS = {
    "start": ["start", "--id", ID, "--port", "1223"],
    "url": ["url", "--id", ID],
    "list": ["notebooks"],
    "sign-in": ["login"],
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("command_kind", COMMAND_KINDS)
def test_command(command_kind: str, endpoint: str, servers: dict[str, Any]) -> None:
    """``scnet``: exit 0 with a result, or exit 1 with an error line and a hint line on stderr;
    no traceback, and nothing printed holds a credential or a control."""
    url = servers[command_kind].url
    env = {
        "SCNET_TOKEN": CANARY,
        "SCNET_BASE_URL": url,
        "SCNET_TIMEOUT": str(TIMEOUT),
        "SCNET_LOGIN_URL": url,
        "SCNET_AC_URL": url,
        "SCNET_USER": USER,
        "SCNET_ACCESS_KEY": ACCESS_CANARY,
        "SCNET_SECRET_KEY": SECRET_CANARY,
    }
    run = run_scnet(COMMAND_WORDS[endpoint], env)
    where = f"scnet {endpoint} answered {command_kind}"
    assert_safe(where, run.stdout, run.stderr)
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode in (0, 1), (where, run.returncode, run.stderr)
    if run.returncode == 1:
        lines = run.stderr.splitlines()
        assert lines[0].startswith("scnet: error: "), run.stderr
        assert all(line.startswith("hint: ") for line in lines[1:]), run.stderr
        shown = Outcome(None, None, areas={"stderr": run.stderr})
        assert_reads_as_sentences(where, shown_error_lines(shown))


# -- the cases the tables only pass through: what the user is told ---------------------------


def test_a_start_answer_that_breaks_parsing_says_the_command_may_be_running(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nested JSON after the start was sent: the usual one-line "unexpected answer", saying
    the command may be running and how to check; the "Starting…" display is emptied."""
    for kind in ("nested-arrays", "nested-in-data", "nested-moderately"):
        with hostile_server(KINDS[kind]) as server:
            with pytest.raises(ScnetError) as caught:
                ScnetClient(base_url=server.url, token=CANARY).start_service(ID, 1223)
            magic = MagicFrontEnd(ip, monkeypatch)
            magic.run(magic_cells("start", magic, server.url)[:-1])
            with capture_output() as captured:
                cell = ip.run_cell(f"%scnet_start --id {ID} --port 1223")
            run = run_scnet(
                COMMAND_WORDS["start"], {"SCNET_TOKEN": CANARY, "SCNET_BASE_URL": server.url}
            )
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
        assert "scnet: error: Unexpected answer" in run.stderr and "scnet url" in run.stderr
        assert caught.value.message.startswith("Unexpected answer"), (kind, caught.value)
        assert "scnet_url" in caught.value.hint and "scnet url" in caught.value.hint, kind
        error = cell.error_in_exec
        assert isinstance(error, UsageError) and "scnet_url" in str(error), (kind, repr(error))
        assert "Traceback" not in captured.stdout + captured.stderr, captured.stderr
        starting = [o for o in captured.outputs if "Starting" in o.data.get("text/plain", "")]
        assert len(starting) == 1, captured.outputs
        assert captured.outputs[-1].update and captured.outputs[-1].data["text/plain"] == ""


def test_an_address_that_is_no_url_is_no_address(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``http://[::1`` in ``errorMsg`` (Python's URL parser refuses it): the start is pending,
    without an address, as when the platform names none."""
    with hostile_server(KINDS["url-bad-ipv6"]) as server:
        result = ScnetClient(base_url=server.url, token=CANARY).start_service(ID, 1223)
        magic = MagicFrontEnd(ip, monkeypatch)
        shown = magic.run(
            [
                *magic_cells("start", magic, server.url)[:-1],
                f"r = {magic_cells('start', magic, server.url)[-1]}",
                "r",
            ]
        )
    assert result.pending and result.url is None, result
    assert shown.error is None and shown.result is not None and shown.result.url is None


def test_an_endless_list_stops_and_says_what_was_read(monkeypatch: pytest.MonkeyPatch) -> None:
    with hostile_server(KINDS["endless-list"]) as server:
        client = ScnetClient(base_url=server.url, token=CANARY)
        with pytest.raises(ScnetError) as caught:
            client.list_notebooks()
        pages = len(server.received)
    assert pages <= MAX_PAGES <= 100, pages
    message = caught.value.message
    assert f"{pages} pages" in message and "records" in message, message
    assert "--status" in caught.value.hint or "status" in caught.value.hint, caught.value.hint


def test_a_list_that_ends_is_read_whole() -> None:
    """The limit is not met by a long list that ends: every page is read."""
    pages_wanted = 12

    def answer(received: Received) -> Reply:
        page = int(received.path.split("page=")[1].split("&")[0])
        size = 20 if page < pages_wanted else 7
        first = (page - 1) * 20
        records = [
            {"id": str(1896050410550136833 + first + n), "notebookStatus": "Running"}
            for n in range(size)
        ]
        total = (pages_wanted - 1) * 20 + 7
        return Reply(body={"code": "0", "msg": "ok", "data": {"total": total, "records": records}})

    with hostile_server(answer) as server:
        listed = ScnetClient(base_url=server.url, token=CANARY).list_notebooks()
    assert len(listed) == (pages_wanted - 1) * 20 + 7


def test_text_renderings_hold_no_control_whatever_their_results_hold() -> None:
    """Results made without the transport (by hand, from a saved answer): the text renderings
    take the controls out themselves, keeping the lines and tabs of multi-line output."""
    from scnet_magic import display
    from scnet_magic.models import ServiceUrl, StartResult

    result = StartResult(
        code="0",
        msg=ESCAPES,
        exec_success=False,
        error_msg=ESCAPES,
        output=f"line 1\n{ESCAPES}\tend",
        url=f"{URL}/{ESCAPES}",
        notebook_id=ID,
        port=1223,
        raw={},
    )
    record = {"id": ID, "notebookName": ESCAPES, "notebookStatus": ESCAPES}
    texts = {
        "start_text": display.start_text(result),
        "service_url_text": display.service_url_text(
            ServiceUrl(ID, f"{URL}/{ESCAPES}", ESCAPES, {})
        ),
        "notebooks_text": display.notebooks_text(NotebookList([Notebook.from_record(record)])),
        "notebook_text": display.notebook_text(Notebook.from_record(record)),
        "str(result)": str(result),
    }
    for name, text in texts.items():
        assert CONTROLS.search(text) is None, (name, text)
    assert "line 1\n" in texts["start_text"] and "\tend" in texts["start_text"]


def test_a_service_address_answering_escapes_in_its_status_line() -> None:
    """Waiting for the service: a gateway whose status line is escapes (not HTTP at all) or
    whose reason phrase is; the "last check" the error names holds no control."""
    from scnet_magic.errors import NotReady

    for status_line in (f"{ESCAPES} garbage", f"HTTP/1.1 502 {ESCAPES}"):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()

            def serve(line: str = status_line, listener: socket.socket = listener) -> None:
                with contextlib.suppress(OSError):
                    while True:
                        connection, _address = listener.accept()
                        with connection:
                            connection.recv(65536)
                            connection.sendall(line.encode("utf-8") + b"\r\n\r\n")

            threading.Thread(target=serve, daemon=True).start()
            url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
            client = ScnetClient(base_url=url, token=CANARY)
            with pytest.raises(NotReady) as caught:
                client.wait_until_ready(url, timeout=1)
        assert_safe(f"waiting on {status_line!r}", caught.value.user_message())


# -- the cleaning itself ------------------------------------------------------------------------


def test_server_text_hides_every_form_of_a_credential() -> None:
    clean = ServerText({CANARY: "token", ACCESS_CANARY: "access key", "short": "token"})
    header, payload, signature = CANARY.split(".")
    # A token split by escapes is whole again once they go: hidden all the same.
    assert clean.text(f"a {CANARY[:9]}\x1b[0m{CANARY[9:]} b") == "a <token hidden> b"
    assert clean.text(f"{payload} and {signature}") == "<token hidden> and <token hidden>"
    # The JWT header is every token's: not a secret on its own.
    assert clean.text(header) == header
    # Too short to hide without blanking out ordinary words.
    assert clean.text("a short word") == "a short word"
    assert (
        clean.hide_bytes(f'{{"k": "{ACCESS_CANARY}"}}'.encode()) == b'{"k": "<access key hidden>"}'
    )
    nested: object = "x"
    for _level in range(MAX_DEPTH + 1):
        nested = [nested]
    with pytest.raises(TooDeep):
        clean.json(nested)
    assert clean.json({CANARY: [ESCAPES, 1, None]}) == {
        "<token hidden>": ["hidden\nspoofedtxt.exe", 1, None]
    }


def test_strip_controls_keeps_lines_and_tabs_only_where_text_is_multi_line() -> None:
    text = f"one\r\ntwo\rthree\tfour{ESCAPES}"
    # Hidden text shows (its escapes go); the window title and the clipboard write go whole.
    assert strip_controls(text) == "one\ntwo\nthree\tfourhidden\nspoofedtxt.exe"
    assert strip_controls(text, multiline=False) == "one two three fourhidden spoofedtxt.exe"
    assert strip_controls("中文，ü é") == "中文，ü é"


def test_an_answer_made_in_memory_is_cleaned_as_one_from_the_network() -> None:
    """The cleaning is where the envelope is read, not in the HTTP code: a ``MockTransport``
    answer that echoes what the request carried (its token, or at sign-in its access key, its
    signature and the secret key it knows) shows none of them, and no terminal control."""
    from scnet_magic.transport import MockTransport, Request, Response

    def echo(request: Request) -> Response:
        # The platform checking a signature knows the secret key: echo it at sign-in too.
        known = [SECRET_CANARY] if "signature" in request.headers else []
        carried = " ".join([*request.headers.values(), *known])
        return Response(
            502, f"<html>{carried}{ESCAPES}</html>".encode(), {}, f"Bad {carried}{ESCAPES}"
        )

    client = ScnetClient(base_url=URL, token=CANARY, transport=MockTransport(echo))
    calls: list[Callable[[], object]] = [
        lambda: client.start_service(ID, 1223),
        lambda: ScnetClient.login(
            USER,
            ACCESS_CANARY,
            SECRET_CANARY,
            login_url=URL,
            ac_url=URL,
            transport=MockTransport(echo),
        ),
    ]
    for call in calls:
        with pytest.raises(ScnetError) as caught:
            call()
        assert "hidden>" in caught.value.user_message(), caught.value.user_message()
        assert_safe("an answer made in memory", *error_texts(caught.value))


def test_direction_marks_and_invisible_characters_are_taken_out() -> None:
    assert strip_controls("id 12\u200f34\u061c5 \u200bend\ufeff") == "id 12345 end"


def test_a_credential_wrapped_over_lines_is_hidden() -> None:
    clean = ServerText({CANARY: "token", "pass word 电池 ok": "password"})
    third = len(CANARY) // 3
    folded = f"token: {CANARY[:third]}\n  {CANARY[third:-third]}\t{CANARY[-third:]} end"
    assert clean.text(folded) == "token: <token hidden> end"
    assert clean.text(folded, multiline=False) == "token: <token hidden> end"
    assert clean.text("was pass word 电池 ok.") == "was <password hidden>."
    assert clean.text("a token's words stay apart") == "a token's words stay apart"
