"""The API servers: one per host role, each answering only the paths of its role."""

from __future__ import annotations

import functools
import ssl
import time
import urllib.parse
from email.message import Message
from typing import Any, Protocol

from .data import (
    _JSON,
    _MAX_BODY,
    _METHODS,
    _START,
    _TOKENS,
    RecordedRequest,
    _envelope,
    _json_bytes,
    _parse_body,
    _role_of,
    token_tag,
)
from .faults import _FaultHandler
from .server import _content_length, _Server


class _Platform(Protocol):
    """What the API server needs of the ``Sandbox`` it serves."""

    host: str
    tls: ssl.SSLContext | None
    execute: bool
    delay: float
    fault_delay: float
    answers: dict[str, Any]

    @property
    def fault(self) -> str | None: ...

    @property
    def base_url(self) -> str: ...

    def _record(self, request: RecordedRequest) -> None: ...

    def _issue_tokens(self, headers: Message) -> dict[str, Any]: ...

    def _answer(
        self, path: str, token: str | None, query: dict[str, str], body: object, run: bool
    ) -> dict[str, Any]: ...


class _ApiServer(_Server):
    def __init__(self, sandbox: _Platform, role: str, port: int = 0) -> None:
        self.sandbox = sandbox
        self.role = role
        super().__init__(role, sandbox.host, port, _ApiHandler, sandbox.tls)


class _ApiHandler(_FaultHandler):
    server: _ApiServer

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_OPTIONS = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _send_json(self, status: int, envelope: dict[str, Any], **kwargs: Any) -> None:
        self._send(status, _json_bytes(envelope), _JSON, **kwargs)

    def _handle(self) -> None:
        sandbox = self.server.sandbox
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        length = _content_length(self.headers)
        raw = self.rfile.read(length) if 0 < length <= _MAX_BODY else b""
        headers = {
            name: "<redacted>" if name.lower() == "token" else value
            for name, value in self.headers.items()
        }
        body = _parse_body(raw)
        role = self.server.role
        tag = token_tag(self.headers.get("token"))
        sandbox._record(RecordedRequest(self.command, url.path, query, headers, body, role, tag))

        if length < 0:
            envelope = _envelope("10004", "参数无效: 请求体需要Content-Length")
            self._send_json(400, envelope, close=True)
            self._discard_rest()
            return
        if length > _MAX_BODY:
            self._send_json(413, _envelope("10011", "文件过大"), close=True)
            self._discard_rest()
            return
        method = _METHODS.get(url.path)
        # Another host's endpoint is as unknown here as on the real platform: a /ac/ call sent
        # to the login host, or a notebook call sent to the platform host, finds nothing.
        if method is None or _role_of(url.path) != role:
            self._send_json(404, _envelope("10001", f"接口不存在: {url.path}"))
            return
        if self.command != method:
            envelope = _envelope("10001", f"请求方法不支持: {self.command}")
            self._send_json(405, envelope, headers=[("Allow", method)])
            return

        if sandbox.delay > 0:
            time.sleep(sandbox.delay)
        canned = sandbox.answers.get(url.path)
        if canned is not None:
            # An answer a test chose (a documented or reported shape), given as it is.
            self._send_json(200, canned)
            return
        fault = sandbox.fault
        token = self.headers.get("token")
        if url.path == _TOKENS:
            self._send_json(200, sandbox._issue_tokens(self.headers))
            return
        if fault is not None and url.path == _START:
            answer = functools.partial(sandbox._answer, _START, token, query, body, run=False)
            self._fault(fault, answer, sandbox.base_url, sandbox.fault_delay)
            return
        self._send_json(200, sandbox._answer(url.path, token, query, body, sandbox.execute))
