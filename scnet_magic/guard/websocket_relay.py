"""WebSockets through the guard (Gradio, ComfyUI and Jupyter need them).

The upgrade is authenticated like any request (cookie or Basic); the guard then opens its own
WebSocket to the service with the visitor's headers and subprotocols, accepts the visitor's
with the subprotocol the service chose, and relays messages both ways, each side awaiting the
other's write so that a fast sender cannot fill the guard's memory.
"""

from __future__ import annotations

import asyncio
import ctypes
from typing import Any
from urllib.parse import urlsplit

from tornado import httputil, iostream, websocket
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.routing import Matcher

from ..i18n import N_
from .base import UPSTREAM_HOST, GuardHandler, Verdict
from .relay import CONNECT_TIMEOUT, SERVICE_NOT_ANSWERING, forwarded_headers, origin_form

# Tornado's WebSocket holds each message whole, so its size is capped each way (beyond it the
# connection ends, code 1009). From the visitor: 10 MiB, what Jupyter's own server takes; from
# the service: 32 MiB, room for outputs larger than Jupyter lets through and a large Streamlit
# table.
MESSAGE_LIMIT_FROM_VISITOR = 10 * 2**20
MESSAGE_LIMIT_FROM_SERVICE = 32 * 2**20
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter, from <malloc.h>
LARGE_BUFFER = 128 * 1024  # glibc's default threshold, kept fixed
# The guard's client writes its own handshake; the subprotocols go through its argument.
HANDSHAKE_HEADERS = frozenset(
    f"sec-websocket-{name}" for name in ("key", "version", "extensions", "protocol")
)
# Close codes that describe a connection but may not be sent in a close frame.
UNSENDABLE_CLOSE_CODES = frozenset({1005, 1006, 1015})

FOREIGN_ORIGIN = N_("Forbidden: a page of another site cannot open this connection.")


def return_large_buffers_at_once() -> None:
    """Make glibc give every large buffer (a WebSocket message) back to the system once freed.

    By default glibc raises that threshold to the largest buffer freed so far (up to 32 MiB),
    and keeps the heap those come from: the guard stayed at 2.2 GiB after its WebSocket
    clients had left. Elsewhere than glibc, nothing changes.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, LARGE_BUFFER)


class WebSocketUpgrade(Matcher):
    """Routes WebSocket upgrade requests (any path outside the guard's own) to the relay."""

    def match(self, request: httputil.HTTPServerRequest) -> dict[str, Any] | None:
        return {} if request.headers.get("Upgrade", "").lower() == "websocket" else None


def same_origin(request: httputil.HTTPServerRequest) -> bool:
    """Whether a browser's request (a WebSocket, a form's POST) comes from a page of this site.

    Browsers send a SameSite=Lax cookie with WebSockets opened by any page of the same *site*,
    and other users' services are neighbouring hosts under the same domain. The host addressed
    is Host, or X-Forwarded-Host where the gateway rewrote Host; the scheme is the gateway's
    X-Forwarded-Proto, else the socket's (a page can forge none of them). A client without
    Origin is not a browser page.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    try:
        parts = urlsplit(origin)
    except ValueError:  # "http://[": no address at all, let alone this one
        return False
    addressed = [request.headers.get("Host", "")]
    for value in request.headers.get_list("X-Forwarded-Host"):
        addressed.extend(value.split(","))
    schemes = [
        scheme.strip().lower()
        for value in request.headers.get_list("X-Forwarded-Proto")
        for scheme in value.split(",")
    ]
    scheme = schemes[-1] if schemes else request.protocol
    return (
        bool(parts.netloc)
        and parts.scheme.lower() == scheme
        and parts.netloc.lower() in {host.strip().lower() for host in addressed}
    )


class WebSocketProxyHandler(websocket.WebSocketHandler, GuardHandler):
    upstream: websocket.WebSocketClientConnection | None = None
    _pump: asyncio.Future[None] | None = None

    async def get(self, *args: Any, **kwargs: Any) -> None:
        verdict = await self.credentials()
        if verdict is not Verdict.PASS:
            self.refuse(verdict)
            return
        if not same_origin(self.request):
            self.plain(403, FOREIGN_ORIGIN)
            return
        # The service's answer decides the subprotocol, so it is asked before the visitor's
        # handshake is answered.
        headers = forwarded_headers(self.request, drop=HANDSHAKE_HEADERS | self.consumed_headers)
        target = HTTPRequest(
            f"ws://{UPSTREAM_HOST}:{self.guard.upstream_port}{origin_form(self.request.uri)}",
            headers=headers,
            connect_timeout=CONNECT_TIMEOUT,
            request_timeout=CONNECT_TIMEOUT,
        )
        values = self.request.headers.get_list("Sec-WebSocket-Protocol")
        subprotocols = [name.strip() for value in values for name in value.split(",")]
        try:
            self.upstream = await websocket.websocket_connect(
                target,
                subprotocols=[name for name in subprotocols if name] or None,
                max_message_size=MESSAGE_LIMIT_FROM_SERVICE,
            )
        except HTTPClientError as refused:
            if refused.code >= 500:  # 599: tornado's own timeout or connection failure
                self.plain(502, SERVICE_NOT_ANSWERING)
            else:
                # The service declined the upgrade (a wrong path, its own authentication):
                # pass its status on rather than blame the guard.
                self.set_status(refused.code)
                self.finish()
            return
        except (OSError, iostream.StreamClosedError, asyncio.TimeoutError):
            self.plain(502, SERVICE_NOT_ANSWERING)
            return
        try:
            await super().get(*args, **kwargs)  # returns once the visitor's socket has closed
        finally:
            self.upstream.close()

    def check_origin(self, origin: str) -> bool:
        return True  # checked in get(), before the service was contacted

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return self.upstream.selected_subprotocol if self.upstream is not None else None

    def open(self, *args: str, **kwargs: str) -> None:
        self._pump = asyncio.ensure_future(self._from_service())

    async def _from_service(self) -> None:
        upstream = self.upstream
        assert upstream is not None
        while (message := await upstream.read_message()) is not None:
            try:
                await self.write_message(message, binary=isinstance(message, bytes))
            except websocket.WebSocketClosedError:
                return
        _close_like(self, upstream.close_code, upstream.close_reason)

    async def on_message(self, message: str | bytes) -> None:
        if self.upstream is None:
            return
        try:
            await self.upstream.write_message(message, binary=isinstance(message, bytes))
        except websocket.WebSocketClosedError:
            self.close()

    def on_close(self) -> None:
        if self.upstream is not None:
            _close_like(self.upstream, self.close_code, self.close_reason)


def _close_like(
    side: WebSocketProxyHandler | websocket.WebSocketClientConnection,
    code: int | None,
    reason: str | None,
) -> None:
    """Close one side as the other side closed: with its code and reason, unless that code
    may not be sent (one that only describes a connection lost without a close frame)."""
    if code is None or code in UNSENDABLE_CLOSE_CODES:
        side.close()
    else:
        side.close(code, reason)
