"""The API servers: one per host role, each answering only the paths of its role."""

from __future__ import annotations

import ssl
import urllib.parse
from email.message import Message
from typing import Any, Protocol

from .data import (
    _JSON,
    _MAX_BODY,
    _METHODS,
    _TOKENS,
    _envelope,
    _json_bytes,
    _parse_body,
    _role_of,
)
from .server import _content_length, _Handler, _Server


class _Platform(Protocol):
    """What the API server needs of the ``Sandbox`` it serves."""

    host: str
    tls: ssl.SSLContext | None
    execute: bool

    def _received(self, handler: _ApiHandler, body: object) -> None: ...

    def _override(
        self, handler: _ApiHandler, path: str, token: str, query: dict[str, str], body: object
    ) -> bool: ...

    def _refusal(self, token: str) -> dict[str, Any] | None: ...

    def _issue_tokens(self, headers: Message) -> dict[str, Any]: ...

    def _answer(
        self, path: str, token: str, query: dict[str, str], body: object, run: bool
    ) -> dict[str, Any]: ...


class _ApiServer(_Server):
    def __init__(self, sandbox: _Platform, role: str, port: int = 0) -> None:
        self.sandbox = sandbox
        self.role = role
        super().__init__(role, sandbox.host, port, _ApiHandler, sandbox.tls)


class _ApiHandler(_Handler):
    server: _ApiServer

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_OPTIONS = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def send_json(self, status: int, envelope: object, **kwargs: Any) -> None:
        self._send(status, _json_bytes(envelope), _JSON, **kwargs)

    def _handle(self) -> None:
        sandbox = self.server.sandbox
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        token = self.headers.get("token", "")
        length = _content_length(self.headers)
        early = self._early_answer(url.path, length, token)
        # The body is read only for a call that gets this far: a caller without a valid token
        # cannot make the sandbox read, parse or keep anything it sends.
        body = None
        if early is None and length > 0:
            body = _parse_body(self.rfile.read(length))
        sandbox._received(self, body)
        if early is not None:
            status, envelope, headers = early
            unread = length != 0
            self.send_json(status, envelope, headers=headers, close=unread)
            if unread:
                self._discard_rest()
            return
        if sandbox._override(self, url.path, token, query, body):
            return
        if url.path == _TOKENS:
            self.send_json(200, sandbox._issue_tokens(self.headers))
            return
        self.send_json(200, sandbox._answer(url.path, token, query, body, sandbox.execute))

    def _early_answer(
        self, path: str, length: int, token: str
    ) -> tuple[int, dict[str, Any], list[tuple[str, str]]] | None:
        """The answer to a call refused before its body is read: (status, envelope, headers)."""
        if length < 0:
            return 400, _envelope("10004", "参数无效: 请求体需要Content-Length"), []
        if length > _MAX_BODY:
            return 413, _envelope("10011", "文件过大"), []
        method = _METHODS.get(path)
        # Another host's endpoint is as unknown here as on the real platform: a /ac/ call sent
        # to the login host, or a notebook call sent to the platform host, finds nothing.
        if method is None or _role_of(path) != self.server.role:
            return 404, _envelope("10001", f"接口不存在: {path}"), []
        if self.command != method:
            return 405, _envelope("10001", f"请求方法不支持: {self.command}"), [("Allow", method)]
        if path == _TOKENS:  # sign-in: signed headers, no token
            return None
        refusal = self.server.sandbox._refusal(token)
        return None if refusal is None else (200, refusal, [])
