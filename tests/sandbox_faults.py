"""``FaultySandbox``: the package's sandbox with what only tests need.

It records every call (the token redacted), plays account scenarios (a suspended account, no
enabled address, a skewed clock, region discovery's list shape), answers a path with an
envelope of the test's choice, delays every call, points every gateway at one port, and makes
the start endpoint misbehave in the ways (``FAULTS``) a client must survive. The package keeps
only the hooks these override.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from typing import Any

from scnet_magic.endpoints import START
from scnet_magic.sandbox import Sandbox
from scnet_magic.sandbox.core import _ApiHandler
from scnet_magic.sandbox.data import (
    BAD_GATEWAY_PAGE,
    DEFAULT_REGION,
    HTML,
    JSON,
    TEXT,
    json_bytes,
    make_token,
    nginx_page,
)

_HUGE_SIZE = 10 * 1024 * 1024

# Start-endpoint faults that always give the same answer: (HTTP status, content type, body).
_FIXED_FAULTS: dict[str, tuple[int, str, bytes]] = {
    "html502": (502, HTML, BAD_GATEWAY_PAGE),
    "401-json": (401, JSON, json_bytes({"code": "10008", "msg": "权限不足", "data": None})),
    "403-json": (403, JSON, json_bytes({"code": "10008", "msg": "权限不足", "data": None})),
    "500-json": (500, JSON, json_bytes({"code": "10001", "msg": "内部错误", "data": None})),
    "401-plain": (401, TEXT, b"401 Unauthorized\n"),
    "403-plain": (403, HTML, nginx_page("403 Forbidden")),
    "500-plain": (500, TEXT, b"500 Internal Server Error\n"),
}
FAULTS: frozenset[str] = frozenset(_FIXED_FAULTS) | {
    "truncated",
    "data-null",
    "data-list",
    "code-missing",
    "code-int",
    "exec-string",
    "huge",
    "slow-headers",
    "trickle",
    "reset",
    "drop",
    "redirect-http",
    "redirect-loop",
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the sandbox received it, with the ``token`` header redacted.

    ``role`` is the host that received it: "login", "platform" or "ai" (the region's address).
    ``token_tag`` tells which token came (see :func:`token_tag`) without holding it. ``body``
    is None for a call refused before its body was read (no valid token, for one).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: object
    role: str = "ai"
    token_tag: str | None = None


def token_tag(token: str | None) -> str | None:
    """A short digest of ``token``: enough for a test to tell which token a request carried
    (the same one at the platform host and at the AI address), useless as a credential."""
    if token is None:
        return None
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class FaultySandbox(Sandbox):
    """A sandbox that records its calls and can play scenarios and faults (module docstring)."""

    def __init__(self, *, tls: ssl.SSLContext | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tls = tls  # serve https, for the client's TLS checks
        self.requests: list[RecordedRequest] = []
        self._token_as_built = self.token
        self._play_the_platform()

    def _play_the_platform(self) -> None:
        """No scenario, no fault: the sandbox behaves as the platform does."""
        # Sign-in scenarios: every region token null; no enabled address; the server's clock
        # this many seconds ahead of the real time.
        self.suspended = False
        self.addresses_enabled = True
        self.clock_skew = 0.0
        # Region discovery answers one object, as working clients receive; True answers the
        # list the page documents.
        self.center_as_list = False
        # path -> the envelope to answer instead, for a test that plays a given answer shape.
        self.answers: dict[str, Any] = {}
        # Set to a port: every gateway forwards there, whatever port a start asked for, as
        # if the instance were another machine (a kernel outside it that started a guard for
        # --protect cannot be reached through the external URL).
        self.elsewhere: int | None = None
        self.delay = 0.0
        self.fault_delay = 5.0
        self._fault: str | None = None

    def start(self) -> FaultySandbox:
        super().start()
        for server in self._servers.values() if self.tls is not None else ():
            # The handshake happens in the worker thread, as the server's reads do.
            server.socket = self.tls.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        return self

    def _url(self, role: str) -> str:
        url = super()._url(role)
        return url.replace("http://", "https://", 1) if self.tls is not None else url

    def reset(self) -> None:
        """Back to what a new sandbox is, for one shared between tests (the ``sandbox``
        fixture): no scenario or fault, no record, notebooks as listed, no token issued, no
        connection left from an earlier test. Its address and its own token stay."""
        for server in self._servers.values():
            server.drop_connections()
        with self._lock:
            self.requests.clear()
            self._issued.clear()
            self._replaced.clear()
            gateways = [g for state in self._states.values() for g in state.gateways.values()]
        for gateway in gateways:
            gateway.close()
        self.token = self._token_as_built
        self._init_instances()
        self._play_the_platform()

    @property
    def fault(self) -> str | None:
        """Misbehaviour of the start endpoint (one of ``FAULTS``), or None to behave."""
        return self._fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        if value is not None and value not in FAULTS:
            raise ValueError(f"unknown fault {value!r}; known: {', '.join(sorted(FAULTS))}")
        self._fault = value

    def start_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == START.path]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def issue_token(self, region_id: str = DEFAULT_REGION) -> str:
        """A new token of region ``region_id`` ("0": the platform's own), as sign-in hands out;
        for a test that writes an answer of its own around tokens the sandbox then accepts."""
        token = make_token()
        with self._lock:
            self._issued[token] = str(region_id)
        return token

    # -- the package's hooks ---------------------------------------------------------------

    def _received(
        self, handler: _ApiHandler, path: str, query: dict[str, str], body: object
    ) -> None:
        headers = {
            name: "<redacted>" if name.lower() == "token" else value
            for name, value in handler.headers.items()
        }
        tag = token_tag(handler.headers.get("token"))
        request = RecordedRequest(
            handler.command, path, query, headers, body, handler.server.role, tag
        )
        with self._lock:
            self.requests.append(request)

    def _override(
        self, handler: _ApiHandler, path: str, token: str, query: dict[str, str], body: object
    ) -> bool:
        if self.delay > 0:
            time.sleep(self.delay)
        canned = self.answers.get(path)
        if canned is not None:
            # An answer a test chose (a documented or reported shape), given as it is.
            handler.send_json(200, canned)
            return True
        fault = self.fault
        if fault is None or path != START.path:
            return False

        def answer() -> dict[str, Any]:
            return self._answer(START.path, token, query, body, handler.headers, run=False)

        _answer_with_fault(handler, fault, answer, self.base_url, self.fault_delay)
        return True

    def _gateway_port(self, port: int) -> int:
        return self.elsewhere or port

    def _now(self) -> float:
        return time.time() + self.clock_skew

    def _issue_tokens(self, headers: Message) -> list[dict[str, Any]]:
        entries = super()._issue_tokens(headers)
        if self.suspended:
            with self._lock:
                for entry in entries:
                    self._issued.pop(entry["token"] or "", None)
                    entry["token"] = None
        return entries

    def _center(self, token: str) -> dict[str, Any] | list[dict[str, Any]]:
        entry = super()._center(token)
        assert isinstance(entry, dict)
        if not self.addresses_enabled:
            for address in entry["aiUrls"]:
                if address.get("enable") is not False:
                    address["enable"] = "false"
        return [entry] if self.center_as_list else entry


def _answer_with_fault(
    handler: _ApiHandler,
    fault: str,
    answer: Callable[[], dict[str, Any]],
    base_url: str,
    delay: float,
) -> None:
    """Answer a start call the way ``fault`` says; ``answer`` gives the good envelope."""
    if fault in _FIXED_FAULTS:
        status, content_type, page = _FIXED_FAULTS[fault]
        handler._send(status, page, content_type)
    elif fault == "drop":
        handler.log_request("-")
        handler.close_connection = True
    elif fault in ("redirect-http", "redirect-loop"):
        target = "http://example.invalid" + START.path
        if fault == "redirect-loop":
            target = base_url + handler.path
        handler._send(307, b"", TEXT, headers=[("Location", target)])
    elif fault == "huge":
        head = b'{"code": "0", "msg": "'
        _head(handler, _HUGE_SIZE)
        handler.wfile.write(head)
        filler = b"x" * 65536  # in blocks: the test process measures its own memory
        for offset in range(len(head), _HUGE_SIZE, len(filler)):
            handler.wfile.write(filler[: _HUGE_SIZE - offset])
    elif fault == "reset":
        _head(handler, 1000)
        handler.wfile.write(b'{"code": "0", "msg"'[:10])
        _abort(handler)
    else:
        _send_envelope(handler, fault, answer, delay)


def _send_envelope(
    handler: _ApiHandler, fault: str, answer: Callable[[], dict[str, Any]], delay: float
) -> None:
    """The good envelope, reshaped, cut short or sent slowly as ``fault`` says."""
    if fault == "slow-headers":
        time.sleep(delay)
    envelope = answer()
    data = envelope["data"]
    if fault == "data-null":
        envelope["data"] = None
    elif fault == "data-list":
        envelope["data"] = [data]
    elif fault == "code-missing":
        del envelope["code"]
    elif fault == "code-int":
        envelope["code"] = int(envelope["code"])
    elif fault == "exec-string" and isinstance(data, dict):
        data["execSuccess"] = str(data["execSuccess"]).lower()
    payload = json_bytes(envelope)
    if fault == "truncated":
        payload = payload[:-1]
    if fault != "trickle":
        handler._send(200, payload, JSON)
        return
    _head(handler, len(payload))
    sent, deadline = 0, time.monotonic() + delay
    while sent < len(payload) and time.monotonic() < deadline:
        handler.wfile.write(payload[sent : sent + 1])
        sent += 1
        time.sleep(0.2)
    handler.wfile.write(payload[sent:])


def _head(handler: _ApiHandler, length: int) -> None:
    """The head of a 200 JSON answer that declares ``length`` bytes of body."""
    handler.send_response(200)
    handler.send_header("Content-Type", JSON)
    handler.send_header("Content-Length", str(length))
    handler.end_headers()


def _abort(handler: _ApiHandler) -> None:
    """Close with a TCP reset (SO_LINGER 0) instead of an orderly FIN."""
    handler.close_connection = True
    handler.wfile.flush()
    linger = struct.pack("ii", 1, 0)
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    # The buffered files hold references that would keep the socket open.
    handler.rfile.close()
    handler.wfile.close()
    handler.connection.close()
