"""The guard's web application: signed-in visitors pass through to the service on
``127.0.0.1:<port>``; everyone else meets a login page (browsers) or a 401 (other clients).

Every response carries ``X-Scnet-Guard: <guard id>``, and ``/.scnet-guard/status`` answers
without a password whether the service accepts connections, so that a front end polling the
public URL learns both that the URL reaches this guard and that the service is up. The rest
of ``/.scnet-guard/`` is the guard's: login, logout, and a credential check.

The relaying itself is in :mod:`.relay` (HTTP) and :mod:`.websocket_relay`.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from tornado import web
from tornado.httpserver import HTTPServer
from tornado.routing import AnyMatches, PathMatches, Rule

from ..i18n import N_
from . import auth
from .base import BUSY_RETRY, Guard, GuardHandler, Verdict, log
from .relay import CHUNK_SIZE, ProxyHandler
from .server import IDLE_TIMEOUT, GuardServer, connection_limit
from .websocket_relay import (
    MESSAGE_LIMIT_FROM_VISITOR,
    WebSocketProxyHandler,
    WebSocketUpgrade,
    return_large_buffers_at_once,
    same_origin,
)

# The guard's own forms are small; the relay lifts the limit for the requests it streams on.
FORM_BODY_LIMIT = 64 * 1024
# Tornado answers the service's pings itself and the browser's too, so without pings of its
# own the browser's leg would look idle to the platform's gateway during a long computation.
WEBSOCKET_PING_INTERVAL = 30.0

FOREIGN_FORM = N_("Forbidden: a page of another site cannot sign in or out here.")


class StatusHandler(GuardHandler):
    """Whether the service accepts connections, for anyone: it tells nothing else."""

    async def get(self) -> None:
        up = await self.guard.upstream_accepts()
        self.set_status(200 if up else 503)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"upstream": "up" if up else "down"}))

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
            self.add_header("Set-Cookie", auth.session_cookie(self.guard.sessions.start()))
            self.redirect(next_path, status=303)
        elif verdict is Verdict.LOCKED:
            self.set_header("Retry-After", str(int(auth.LOCKOUT)))
            self.page(429, auth.TOO_MANY_ATTEMPTS, next_path)
        elif verdict is Verdict.BUSY:
            self.set_header("Retry-After", str(BUSY_RETRY))
            self.page(429, auth.BUSY, next_path)
        else:
            self.page(401, auth.WRONG_PASSWORD, next_path)


class LogoutHandler(CrossSiteRefused):
    def post(self) -> None:
        for session in auth.cookie_values(self.request.headers.get("Cookie")):
            self.guard.sessions.end(session)
        self.add_header("Set-Cookie", auth.expired_cookie())
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
    rules = [
        Rule(PathMatches(r"/\.scnet-guard/status"), StatusHandler),
        Rule(PathMatches(r"/\.scnet-guard/login"), LoginHandler),
        Rule(PathMatches(r"/\.scnet-guard/logout"), LogoutHandler),
        Rule(PathMatches(r"/\.scnet-guard/check"), CheckHandler),
        Rule(PathMatches(r"/\.scnet-guard/.*"), ReservedHandler),
        Rule(WebSocketUpgrade(), WebSocketProxyHandler),
        Rule(AnyMatches(), ProxyHandler),
    ]
    return web.Application(
        rules,
        guard=guard,
        log_function=_log_request,
        websocket_max_message_size=MESSAGE_LIMIT_FROM_VISITOR,
        websocket_ping_interval=WEBSOCKET_PING_INTERVAL,
    )


def start_server(
    guard: Guard,
    sockets: list[socket.socket],
    *,
    idle_timeout: float = IDLE_TIMEOUT,
    max_connections: int | None = None,
) -> HTTPServer:
    """Serve the guard on sockets already bound (and listening) by the caller."""
    return_large_buffers_at_once()
    server = GuardServer(
        make_app(guard),
        xheaders=False,  # the peer and scheme are the socket's, never a visitor's claim
        decompress_request=False,
        max_body_size=FORM_BODY_LIMIT,
        chunk_size=CHUNK_SIZE,
        idle_connection_timeout=idle_timeout,
        max_connections=max_connections or connection_limit(),
    )
    server.add_sockets(sockets)
    return server


async def serve_until(
    guard: Guard, sockets: list[socket.socket], stop: asyncio.Event, **limits: Any
) -> None:
    """Serve until ``stop`` is set (the detached process's main loop); ``limits`` as
    :func:`start_server` takes them."""
    server = start_server(guard, sockets, **limits)
    try:
        await stop.wait()
    finally:
        server.stop()
        await server.close_all_connections()
        guard.close()
