"""A hostile platform on loopback: every request gets the answer the test chose, byte for byte.

The sandbox plays the platform as documented; this server plays one that is not: it echoes
the credentials it received in every field and header, answers terminal escapes, nested JSON,
bad URLs, odd types and a notebook list that never ends. Each kind of answer in ``KINDS`` is a
function of the request, so an echo can only hold what the client really sent. The status
line is written by hand, so that the reason phrase can hold anything a socket can carry.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The request headers that carry a credential (the secret key itself is never sent).
CREDENTIAL_HEADERS = ("token", "accessKey", "signature")

ESC = "\x1b"
# What a terminal would obey: a window title, a screen clear, a clipboard write (OSC 52),
# hidden text, an 8-bit CSI, a bare carriage return that overwrites the line, a bell, a
# right-to-left override that reorders what is read.
ESCAPES = (
    f"{ESC}]0;pwned-title\x07{ESC}[2J{ESC}]52;c;cm0gLXJmIH4=\x07{ESC}[8mhidden{ESC}[0m"
    "\x9b31m\rspoofed\x07\u202etxt.exe"
)
NESTED_DEPTH = 100_000


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def credentials(self) -> list[str]:
        return [self.headers[name] for name in CREDENTIAL_HEADERS if name in self.headers]

    @property
    def echo(self) -> str:
        """Every credential received, in one string."""
        return " ".join(self.credentials) or "nothing-received"


@dataclass
class Reply:
    """An answer: ``body`` is bytes, text, or a value sent as JSON."""

    status: int = 200
    body: Any = b""
    reason: str = "OK"
    headers: list[tuple[str, str]] = field(default_factory=list)

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


Answer = Callable[[Received], Reply]


def envelope(data: Any, code: Any = "0", msg: Any = "success") -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


def json_escaped(text: str) -> str:
    """``text`` as a JSON string body written with \\u escapes only (no literal character)."""
    return "".join(f"\\u{ord(ch):04x}" for ch in text)


def _start_data(error_msg: Any, output: Any = None) -> dict[str, Any]:
    return {"execSuccess": False, "errorMsg": error_msg, "output": output}


URL = "https://c-1896050410550136833.ksai.scnet.cn:58043"


def _every_field(text: str) -> dict[str, Any]:
    """An answer with ``text`` in every field any endpoint reads (start, URL, list, tokens)."""
    record = {"id": "1896050410550136833", "notebookName": text, "notebookStatus": text}
    return envelope(
        {
            "execSuccess": False,
            "errorMsg": f"{text} 外部地址为:{URL}/?t={text}",
            "output": text,
            "url": f"{URL}/{text}",
            "status": text,
            "total": 1,
            "records": [record],
        },
        msg=text,
    )


def _endless_list(received: Received) -> Reply:
    """Every page full, and a total no list reaches."""
    page = [
        {
            "id": f"{1896050410550136833 + n}",
            "notebookName": "x" * 2000,
            "notebookStatus": "Running",
        }
        for n in range(20)
    ]
    return Reply(body=envelope({"total": 10**9, "records": page}))


def _request_text(received: Received) -> str:
    """The whole request as text: every header and the body."""
    headers = "; ".join(f"{name}={value}" for name, value in received.headers.items())
    return f"{received.method} {received.path} {headers} {received.body.decode('utf-8', 'replace')}"


def _nested(depth: int, inner: str = "[") -> bytes:
    return (inner * depth).encode() + (b"]" if inner == "[" else b"}") * depth


# Each kind of hostile answer, as a function of the request. Kinds with "echo" in their name
# hold the credentials received; "escapes" kinds hold terminal controls.
KINDS: dict[str, Answer] = {
    # -- echoes of the credentials ----------------------------------------------------------
    "echo-api-error": lambda r: Reply(body=envelope(None, "10008", f"bad token {r.echo}")),
    "echo-api-error-code": lambda r: Reply(body=envelope(None, r.echo, "x")),
    "echo-api-error-json-escapes": lambda r: Reply(
        body='{"code": "10008", "msg": "' + json_escaped(f"token {r.echo}") + '", "data": null}'
    ),
    "echo-api-error-slashes": lambda r: Reply(
        body='{"code": "10001", "msg": "see https:\\/\\/x.example\\/?t=' + r.echo + '"}'
    ),
    "echo-http-error-text": lambda r: Reply(500, f"Internal error for {r.echo}\n", "Oops"),
    "echo-http-error-json": lambda r: Reply(401, {"error": r.echo}, "Unauthorized"),
    "echo-http-401-envelope": lambda r: Reply(401, envelope(None, "10008", r.echo), "No"),
    "echo-reason": lambda r: Reply(502, b"", f"Bad {r.echo}"),
    "echo-redirect": lambda r: Reply(
        307, b"", "Moved", [("Location", f"https://elsewhere.example/?t={r.echo}")]
    ),
    "echo-not-json": lambda r: Reply(200, f"<html>{r.echo}</html>"),
    "echo-no-code": lambda r: Reply(200, {"token": r.echo}),
    "echo-no-code-escaped": lambda r: Reply(200, '{"t": "' + json_escaped(r.echo) + '"}'),
    "echo-code-object": lambda r: Reply(200, {"code": {"t": r.echo}, "msg": r.echo}),
    "echo-every-field": lambda r: Reply(body=_every_field(r.echo)),
    "echo-every-field-escaped": lambda r: Reply(
        body=json.dumps(_every_field("@@")).replace("@@", json_escaped(r.echo))
    ),
    "echo-data-string": lambda r: Reply(body=envelope(f"{URL}/?t={r.echo}")),
    "echo-data-wrong-type": lambda r: Reply(body=envelope([r.echo])),
    "echo-header": lambda r: Reply(
        500, b"", "Oops", [("X-Token", r.echo), ("Set-Cookie", f"t={r.echo}")]
    ),
    "echo-request": lambda r: Reply(
        500,
        _every_field(_request_text(r)),
        "Oops",
        [("X-Echo", " ".join(r.headers.values()) + " " + r.body.decode("latin-1"))],
    ),
    # A header line without a colon: urllib3 logs the lines it could not parse.
    "echo-broken-header": lambda r: Reply(
        500, b"x", "Oops", [("X-A", f"b\r\nbroken {r.echo}\r\nX-B: {ESCAPES}")]
    ),
    # -- terminal escapes ---------------------------------------------------------------------
    "escapes-api-error": lambda r: Reply(body=envelope(None, "10001", ESCAPES)),
    "escapes-code": lambda r: Reply(body=envelope(None, f"1{ESCAPES}", "x")),
    "escapes-every-field": lambda r: Reply(body=_every_field(ESCAPES)),
    "escapes-reason": lambda r: Reply(502, b"", ESCAPES.encode().decode("latin-1")),
    "escapes-redirect": lambda r: Reply(
        307, b"", "Moved", [("Location", f"https://x.example/{ESCAPES}".encode().decode("latin-1"))]
    ),
    "escapes-http-error-text": lambda r: Reply(500, ESCAPES, "Oops"),
    "escapes-not-json": lambda r: Reply(200, ESCAPES),
    "escapes-data-string": lambda r: Reply(body=envelope(ESCAPES)),
    # -- nested JSON --------------------------------------------------------------------------
    "nested-arrays": lambda r: Reply(body=_nested(NESTED_DEPTH)),
    "nested-objects": lambda r: Reply(body=b'{"a":' * NESTED_DEPTH + b"1" + b"}" * NESTED_DEPTH),
    "nested-in-data": lambda r: Reply(
        body=b'{"code": "0", "msg": "ok", "data": ' + _nested(NESTED_DEPTH) + b"}"
    ),
    "nested-in-msg": lambda r: Reply(
        body=b'{"code": "10001", "msg": ' + _nested(NESTED_DEPTH) + b"}"
    ),
    "nested-moderately": lambda r: Reply(
        body=b'{"code": "0", "msg": "ok", "data": ' + _nested(900) + b"}"
    ),
    "nested-in-error-body": lambda r: Reply(500, _nested(NESTED_DEPTH), "Oops"),
    # -- bad URLs -----------------------------------------------------------------------------
    "url-bad-ipv6": lambda r: Reply(body=envelope(_start_data("地址为:http://[::1"))),
    "url-bad-ipv6-output": lambda r: Reply(body=envelope(_start_data(None, "at http://[::1]x:z"))),
    "url-bad-ipv6-field": lambda r: Reply(body=envelope({"url": "http://[::1", "status": "x"})),
    "url-bad-port": lambda r: Reply(body=envelope({"url": "https://c-1.ksai.scnet.cn:99999999"})),
    "url-javascript": lambda r: Reply(body=envelope({"url": "javascript:alert(1)"})),
    # -- odd types and sizes ------------------------------------------------------------------
    "odd-code-float": lambda r: Reply(body=envelope(None, 1.5)),
    "odd-code-huge-int": lambda r: Reply(body=b'{"code": ' + b"9" * 4000 + b"}"),
    "odd-number-too-long": lambda r: Reply(body=b'{"code": "0", "data": ' + b"9" * 5000 + b"}"),
    "odd-nan": lambda r: Reply(body=b'{"code": "0", "msg": NaN, "data": Infinity}'),
    "odd-msg-object": lambda r: Reply(body=envelope(None, "10001", {"a": [1, 2]})),
    "odd-long-msg": lambda r: Reply(body=envelope(None, "10001", "长" * 100_000)),
    "odd-records-wrong": lambda r: Reply(body=envelope({"total": "x", "records": [1, None, "a"]})),
    "odd-bytes": lambda r: Reply(body=b"\xff\xfe\x00\x00garbage\x00"),
    "odd-surrogates": lambda r: Reply(body=b'{"code": "10001", "msg": "\\ud800\\udfff\\ud800"}'),
    # -- a list that never ends ---------------------------------------------------------------
    "endless-list": _endless_list,
}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        received = Received(self.command, self.path, dict(self.headers.items()), body)
        self.server.received.append(received)
        reply = self.server.answer(received)
        payload = reply.payload()
        head = f"HTTP/1.1 {reply.status} {reply.reason}\r\n"
        for name, value in [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Content-Length", str(len(payload))),
            ("Connection", "close"),
            *reply.headers,
        ]:
            head += f"{name}: {value}\r\n"
        self.wfile.write(head.encode("latin-1", "replace") + b"\r\n" + payload)
        self.close_connection = True

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    answer: Answer
    received: list[Received]


@contextmanager
def hostile_server(answer: Answer) -> Iterator[_Server]:
    """A server on a loopback port answering every request with ``answer``; its URL is
    ``server.url``."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.answer = answer
    server.received = []
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    # shutdown() waits for the loop to look at its flag, once per poll interval: the default
    # (half a second) would be most of a table's time, servers being started by the hundred.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
