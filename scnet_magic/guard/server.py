"""The guard's web application and its HTTP server.

``/.scnet-guard/`` is the guard's own (the status, anyone may ask; sign-in, sign-out, a
credential check); every other request goes to the service through :mod:`.relay` or
:mod:`.websocket_relay`. The server is tornado's, with the bounds a public address needs:

- IDLE_TIMEOUT seconds to send a request's head (and the body of a form of the guard's own),
  and as long for a kept-alive connection without a request: slow or silent connections are
  not held forever.
- At most ``max_connections`` at once (WebSockets included); beyond them a new connection is
  closed as soon as it is accepted, which costs the guard next to nothing.
- Out of file descriptors, accepting pauses a moment and says so in one log line a minute,
  instead of a traceback per turn of the event loop.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import resource
import socket
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from tornado import iostream, web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.routing import AnyMatches

from ..i18n import N_
from . import auth
from .base import Guard, GuardHandler, Verdict, log
from .relay import CHUNK_SIZE, ProxyHandler
from .websocket_relay import (
    MESSAGE_LIMIT_FROM_VISITOR,
    WebSocketProxyHandler,
    WebSocketUpgrade,
    return_large_buffers_at_once,
    same_origin,
)

IDLE_TIMEOUT = 30.0
MAX_CONNECTIONS = 4000
IDLE_TIMEOUT_ENV = "SCNET_GUARD_IDLE_TIMEOUT"
MAX_CONNECTIONS_ENV = "SCNET_GUARD_MAX_CONNECTIONS"
# File descriptors kept for the rest: a connection to the service for each visitor's, the
# log, the listening sockets, scrypt's thread.
RESERVED_DESCRIPTORS = 64
ACCEPT_PAUSE = 0.5  # seconds without accepting once out of descriptors
REPORT_EVERY = 60.0  # seconds between two lines about it
ACCEPTS_PER_TURN = 128
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# The guard's own forms are small; the relay lifts the limit for the requests it streams on.
FORM_BODY_LIMIT = 64 * 1024
# Tornado answers the service's pings itself and the browser's too, so without pings of its
# own the browser's leg would look idle to the platform's gateway during a long computation.
WEBSOCKET_PING_INTERVAL = 30.0

FOREIGN_FORM = N_("Forbidden: a page of another site cannot sign in or out here.")


def connection_limit(wanted: int = MAX_CONNECTIONS) -> int:
    """``wanted``, or fewer where the process may not open enough descriptors: each visitor's
    connection may need one to the service too."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, (soft - RESERVED_DESCRIPTORS) // 2))


class GuardServer(HTTPServer):
    """An ``HTTPServer`` with the bounds of the module's documentation."""

    def initialize(self, *args: Any, max_connections: int = MAX_CONNECTIONS, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.max_connections = max_connections
        self._streams: weakref.WeakSet[iostream.IOStream] = weakref.WeakSet()
        self._last_report = float("-inf")
        self._unreported = 0

    def open_connections(self) -> int:
        return sum(1 for stream in list(self._streams) if not stream.closed())

    def handle_stream(self, stream: iostream.IOStream, address: tuple[Any, ...]) -> None:
        self._streams.add(stream)
        super().handle_stream(stream, address)

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_from(sock)

    def _accept_from(self, sock: socket.socket) -> Callable[[], None]:
        """Accept on ``sock`` as tornado's ``add_accept_handler`` does, within the bounds; the
        callable returned stops it."""
        loop = IOLoop.current()
        paused: list[object] = []  # while out of descriptors: the timeout that resumes

        def resume() -> None:
            paused.clear()
            loop.add_handler(sock, accept, IOLoop.READ)

        def accept(fd: Any, events: int) -> None:
            for _ in range(ACCEPTS_PER_TURN):
                try:
                    connection, address = sock.accept()
                except BlockingIOError:
                    return
                except ConnectionAbortedError:
                    continue
                except OSError as exc:
                    if exc.errno not in OUT_OF_RESOURCES:
                        raise
                    self._report(exc)
                    loop.remove_handler(sock)
                    paused.append(loop.call_later(ACCEPT_PAUSE, resume))
                    return
                # Streams that are gone leave the set with their last reference; only near the
                # cap is it worth counting which of the rest are still open.
                if (
                    len(self._streams) >= self.max_connections
                    and self.open_connections() >= self.max_connections
                ):
                    connection.close()  # beyond the cap: the cheapest answer there is
                    continue
                self._handle_connection(connection, address)

        def stop() -> None:
            if paused:
                loop.remove_timeout(paused.pop())
            else:
                loop.remove_handler(sock)

        loop.add_handler(sock, accept, IOLoop.READ)
        return stop

    def _report(self, exc: OSError) -> None:
        now = time.monotonic()
        if now - self._last_report < REPORT_EVERY:
            self._unreported += 1
            return
        log.warning(
            "cannot accept connections (%s) with %d open; %d more such failures since the "
            "last report",
            exc.strerror,
            self.open_connections(),
            self._unreported,
        )
        self._last_report = now
        self._unreported = 0


class StatusHandler(GuardHandler):
    """Whether the service accepts connections, for anyone: it tells nothing else."""

    async def get(self) -> None:
        up = await self.guard.upstream_accepts()
        body = json.dumps({"upstream": "up" if up else "down"})
        self.answer(200 if up else 503, "application/json", body)

    head = get


class CrossSiteRefused(GuardHandler):
    """Refuses a form posted by a page of another site: a sign-in there would put the
    visitor in a session of the attacker's choosing, a sign-out would end theirs. Browsers
    send Origin with every POST; a client without one is not a page."""

    def prepare(self) -> None:
        if self.request.method == "POST" and not same_origin(self.request):
            self.plain(403, FOREIGN_FORM)


class LoginHandler(CrossSiteRefused):
    def get(self) -> None:
        self.page(200, None, next_path=self.get_query_argument("next", "/"))

    async def post(self) -> None:
        # Only the form body counts: a password in the URL would end up in histories and logs.
        password = self.get_body_argument("password", "", strip=False)
        next_path = auth.safe_next(self.get_body_argument("next", "/", strip=False))
        verdict = await self.attempt(password)
        if verdict is Verdict.PASS:
            session = self.guard.sessions.start()
            self.guard_cookie(auth.COOKIE_NAME, session, auth.SESSION_LIFETIME)
            self.redirect(next_path, status=303)
        else:
            self.refuse(verdict, next_path)


class LogoutHandler(CrossSiteRefused):
    def post(self) -> None:
        for session in auth.cookie_values(self.request.headers.get("Cookie")):
            self.guard.sessions.end(session)
        self.guard_cookie(auth.COOKIE_NAME, "", 0)
        self.redirect("/", status=303)


class CheckHandler(GuardHandler):
    """204 when the request's credential is good: how a caller tests a password it holds."""

    async def get(self) -> None:
        verdict = await self.credentials()
        if verdict is Verdict.PASS:
            self.set_status(204)
            self.finish()
        else:
            self.refuse(verdict)


class ReservedHandler(GuardHandler):
    """The guard keeps its path prefix to itself: nothing under it reaches the service."""

    def prepare(self) -> None:
        self.set_status(404)
        self.finish()


def _log_request(handler: web.RequestHandler) -> None:
    # Only failures, and without the query string: a visitor may have typed a password there.
    # Not the status page's 503: anyone may poll it while the service loads, a line each time.
    status = handler.get_status()
    if status >= 500 and not isinstance(handler, StatusHandler):
        log.warning("%d %s %s", status, handler.request.method, handler.request.path)


def make_app(guard: Guard) -> web.Application:
    return web.Application(
        [
            (r"/\.scnet-guard/status", StatusHandler),
            (r"/\.scnet-guard/login", LoginHandler),
            (r"/\.scnet-guard/logout", LogoutHandler),
            (r"/\.scnet-guard/check", CheckHandler),
            (r"/\.scnet-guard/.*", ReservedHandler),
            (WebSocketUpgrade(), WebSocketProxyHandler),
            (AnyMatches(), ProxyHandler),
        ],
        guard=guard,
        log_function=_log_request,
        websocket_max_message_size=MESSAGE_LIMIT_FROM_VISITOR,
        websocket_ping_interval=WEBSOCKET_PING_INTERVAL,
    )


async def serve_until(guard: Guard, sockets: list[socket.socket], stop: asyncio.Event) -> None:
    """Serve the guard on sockets already bound (and listening) until ``stop`` is set: the
    detached process's main loop."""
    return_large_buffers_at_once()
    idle = float(os.environ.get(IDLE_TIMEOUT_ENV) or IDLE_TIMEOUT)
    server = GuardServer(
        make_app(guard),
        xheaders=False,  # the peer and scheme are the socket's, never a visitor's claim
        decompress_request=False,
        max_body_size=FORM_BODY_LIMIT,
        chunk_size=CHUNK_SIZE,
        # The tests shorten these two bounds through the environment.
        idle_connection_timeout=idle,
        # The guard's own forms too: bodies sent a byte a second would hold connections until
        # the cap keeps the owner out. The relay lifts it for a visitor who may pass.
        body_timeout=idle,
        max_connections=int(os.environ.get(MAX_CONNECTIONS_ENV) or 0) or connection_limit(),
    )
    server.add_sockets(sockets)
    try:
        await stop.wait()
    finally:
        server.stop()
        await server.close_all_connections()
        guard.close()
