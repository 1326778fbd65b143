"""HTTP through the guard: the visitor's request to the service, the service's answer back.

Tornado's HTTP/1 connection speaks to the service (writing the request, reading the answer's
framing, skipping interim answers). Each request has a connection of its own, closed after the
answer: nothing a service sends past its answer can reach another visitor, and open event
streams never queue other requests behind them. Nothing is filled in that the visitor did not
send (no User-Agent, no Content-Type).

Bodies stream both ways with flow control: the next piece is read from one side only once the
previous one has gone to the other's socket (tornado awaits what ``data_received`` returns), so
memory stays bounded whatever the size. An answer of unknown length sends its headers at once,
so that server-sent events arrive as sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import socket
from collections.abc import Awaitable
from urllib.parse import urlsplit

from tornado import httputil, iostream, web
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters

from ..i18n import N_
from . import GUARD_HEADER, auth
from .base import UPSTREAM_HOST, GuardHandler, Verdict, log
from .hop_by_hop import end_to_end

UNLIMITED_BODY = 2**62
# The most read from the visitor's socket at once: tornado allocates a buffer of this size for
# each read, so a large one costs every small request its allocation.
CHUNK_SIZE = 64 * 1024
CONNECT_TIMEOUT = 10.0

# What the guard says about the visitor itself (see forwarded_headers); a visitor's own
# Forwarded is dropped. ("Expect: 100-continue" was answered by the guard's server already.)
SET_BY_GUARD = frozenset(
    {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "expect"}
)
SCHEMES = frozenset({"http", "https"})
HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")
# WebDAV and other extension methods pass too; CONNECT and TRACE do not.
EXTRA_METHODS = ("PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT")
# How an exchange with the service fails: refused, reset, cut short, timed out (all OSErrors),
# not HTTP, or a header tornado will not write.
EXCHANGE_FAILURES = (OSError, ValueError, httputil.HTTPInputError, httputil.HTTPOutputError)
# Tornado frames a request body of unknown length in chunks itself for these methods only.
CHUNKED_BY_TORNADO = frozenset({"POST", "PUT", "PATCH"})

SERVICE_NOT_ANSWERING = N_("The service behind this address is not answering.")
BAD_FRAMING = N_("Bad request: the body's length is ambiguous.")


def framing_problem(headers: httputil.HTTPHeaders) -> bool:
    """Whether a request's body length is ambiguous (the stuff of request smuggling).

    Tornado rejects these too, but only after the handler has started; the guard refuses them
    before anything goes to the service.
    """
    encodings = headers.get_list("Transfer-Encoding")
    lengths = headers.get_list("Content-Length")
    if encodings and (lengths or len(encodings) > 1 or encodings[0].strip().lower() != "chunked"):
        return True
    values = {value.strip() for length in lengths for value in length.split(",")}
    return bool(lengths) and (len(values) != 1 or not next(iter(values)).isdigit())


def origin_form(uri: str | None) -> str:
    """The request target as a path: an absolute URI's host is never where the guard goes."""
    uri = uri or "/"
    if uri.startswith("/") or uri == "*":
        return uri
    parts = urlsplit(uri)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _single(headers: httputil.HTTPHeaders, name: str) -> str | None:
    values = headers.get_list(name)
    return values[0].strip() if len(values) == 1 else None


def forwarded_headers(
    request: httputil.HTTPServerRequest, *, drop: frozenset[str]
) -> httputil.HTTPHeaders:
    """The visitor's headers as the service should see them, minus ``drop`` (lower-case names:
    the ones that carried the guard's own credential among them).

    Host passes unchanged (it never chooses where the guard connects). ``X-Forwarded-For`` is
    always the socket's peer (a service may trust that address); ``X-Forwarded-Proto`` and
    ``X-Forwarded-Host`` pass on as the platform's gateway set them (the service builds its
    links from them), else are set from the socket and ``Host``.
    """
    visitor = request.headers
    headers = httputil.HTTPHeaders()
    for name, value in end_to_end(
        visitor.get_all(), visitor.get_list("Connection"), SET_BY_GUARD | drop
    ):
        kept = auth.without_guard_cookie(value) if name.lower() == "cookie" else value
        if kept is not None:
            headers.add(name, kept)
    headers["X-Forwarded-For"] = request.remote_ip or ""
    scheme = (_single(request.headers, "X-Forwarded-Proto") or "").lower()
    headers["X-Forwarded-Proto"] = scheme if scheme in SCHEMES else request.protocol
    host = _single(request.headers, "X-Forwarded-Host")
    if host is None or not HOST.fullmatch(host):
        host = request.headers.get("Host")
    if host:
        headers["X-Forwarded-Host"] = host
    return headers


class Answer(httputil.HTTPMessageDelegate):
    """The service's answer as tornado's HTTP/1 connection reads it, handed to the handler."""

    def __init__(self, handler: ProxyHandler) -> None:
        self.handler = handler

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        # An interim answer (103 Early Hints) is left out: tornado's server cannot send one,
        # and the final answer follows on the same connection.
        if isinstance(start_line, httputil.ResponseStartLine) and start_line.code >= 200:
            self.handler.start_answer(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None]:
        return self.handler.pass_on(chunk)


def carries_body(headers: httputil.HTTPHeaders) -> bool:
    length = headers.get("Content-Length", "0").strip()
    return "Transfer-Encoding" in headers or length not in ("", "0")


@web.stream_request_body
class ProxyHandler(GuardHandler):
    """Any other request: to the service, once the visitor has authenticated."""

    SUPPORTED_METHODS = (*web.RequestHandler.SUPPORTED_METHODS, *EXTRA_METHODS)
    # The visitor's body: the connection it goes on once the request's head has gone (None: it
    # never did), whether it is framed in chunks here (for a method tornado does not frame),
    # and whether the service stopped taking it (the rest is then read and dropped).
    upload: asyncio.Future[HTTP1Connection | None] | None = None
    frame_chunks = False
    abandoned = False
    service: iostream.IOStream | None = None  # the connection to the service
    answering: asyncio.Future[bool] | None = None  # whether the answer arrived whole
    answer_started = False  # something of the answer has gone to the visitor
    refusal: Verdict | None = None  # a request without a body, refused once it was read

    async def prepare(self) -> None:
        if framing_problem(self.request.headers):
            self.set_header("Connection", "close")
            self.plain(400, BAD_FRAMING)
            return
        verdict = await self.credentials()
        if verdict is not Verdict.PASS:
            if carries_body(self.request.headers):
                # A stranger's body is not read: the connection closes after the refusal,
                # and the answer says so.
                self.set_header("Connection", "close")
                self.refuse(verdict)
            else:
                # Answered once the (empty) request has been read whole, so that the
                # connection stays usable: a refusal from prepare() would make tornado close
                # it unannounced, and a client reusing it would meet a reset.
                self.refusal = verdict
            return
        connection = self.request.connection
        if isinstance(connection, HTTP1Connection):
            # A signed-in visitor's upload takes as long as it takes.
            connection.set_max_body_size(UNLIMITED_BODY)
            connection.set_body_timeout(math.inf)
        # Held here, so that a visitor who leaves (even before it connects) cuts it: no download
        # or endless event stream is read for nobody.
        self.service = iostream.IOStream(socket.socket())
        self.answering = asyncio.ensure_future(self._ask_service(self.service))

    async def _ask_service(self, service: iostream.IOStream) -> bool:
        """Send the request on and relay the answer as it comes; whether it arrived whole."""
        request = self.request
        method = request.method or "GET"
        headers = forwarded_headers(request, drop=self.consumed_headers)
        headers.setdefault("Host", f"{UPSTREAM_HOST}:{self.guard.upstream_port}")
        headers["Connection"] = "close"
        if carries_body(request.headers):
            chunked = "Transfer-Encoding" in request.headers
            self.frame_chunks = chunked and method not in CHUNKED_BY_TORNADO
            if self.frame_chunks:
                headers["Transfer-Encoding"] = "chunked"
            self.upload = asyncio.get_running_loop().create_future()
        elif "Content-Length" not in headers and method in CHUNKED_BY_TORNADO:
            headers["Content-Length"] = "0"
        try:
            await asyncio.wait_for(
                service.connect((UPSTREAM_HOST, self.guard.upstream_port)), CONNECT_TIMEOUT
            )
            service.set_nodelay(True)
            connection = HTTP1Connection(
                service, True, HTTP1ConnectionParameters(max_body_size=UNLIMITED_BODY)
            )
            connection.write_headers(
                httputil.RequestStartLine(method, origin_form(request.uri), "HTTP/1.1"), headers
            )
            if self.upload is None:
                connection.finish()
            else:
                self.upload.set_result(connection)
            return await connection.read_response(Answer(self))
        except EXCHANGE_FAILURES:
            return False
        finally:
            service.close()
            if self.upload is not None and not self.upload.done():
                self.upload.set_result(None)  # the visitor's body goes nowhere

    async def data_received(self, chunk: bytes) -> None:
        connection = None if self.upload is None else await self.upload
        if connection is None or self.abandoned or not chunk:
            return
        try:
            await connection.write(
                b"%x\r\n%b\r\n" % (len(chunk), chunk) if self.frame_chunks else chunk
            )
        except iostream.StreamClosedError:
            self.abandoned = True  # the service answered early or left: its answer tells the rest

    async def relay(self, *_args: str) -> None:
        """The method for every HTTP verb: the body has been sent on; finish the response."""
        if self.refusal is not None:
            self.refuse(self.refusal)
            return
        assert self.answering is not None
        connection = None if self.upload is None else await self.upload
        if connection is not None and not self.abandoned:  # end the request
            with contextlib.suppress(*EXCHANGE_FAILURES):
                if self.frame_chunks:
                    await connection.write(b"0\r\n\r\n")  # the last chunk of a body framed here
                connection.finish()
        if await self.answering:
            self.finish()
        elif not self.answer_started:
            self.clear()
            self.plain(502, SERVICE_NOT_ANSWERING)
        elif isinstance(self.request.connection, HTTP1Connection):
            # Cut off mid-answer: close rather than end the response cleanly, so that the
            # visitor does not take a truncated download for a whole one.
            self.request.connection.close()

    # The answer, as tornado reads it from the service (see :class:`Answer`):

    def start_answer(
        self, status: httputil.ResponseStartLine, headers: httputil.HTTPHeaders
    ) -> None:
        self.set_status(status.code, status.reason or None)
        for name in ("Content-Type", "Server", "Date"):  # tornado's defaults, not the service's
            self.clear_header(name)
        # Not the hop-by-hop headers, nor any guard header.
        passed = end_to_end(headers.get_all(), headers.get_list("Connection"), {GUARD_HEADER})
        for name, value in passed:
            try:
                self.add_header(name, value)
            except ValueError:
                log.warning("dropped a response header with a control character: %s", name)
        if "Content-Length" not in headers:
            # A body of unknown length may be an event stream: its headers must not wait for
            # its first event. (With a length, they leave with the first piece of the body.)
            self._headers_out = self._flush()

    _headers_out: asyncio.Future[None] | None = None

    def _flush(self) -> asyncio.Future[None]:
        self.answer_started = True
        return asyncio.ensure_future(self.flush())

    async def pass_on(self, piece: bytes) -> None:
        """A piece of the body, to the visitor; the service's next once it has left."""
        try:
            if self._headers_out is not None:
                await self._headers_out
                self._headers_out = None
            self.write(piece)
            await self._flush()
        except iostream.StreamClosedError:
            self.on_connection_close()

    def on_connection_close(self) -> None:
        if self.service is not None:
            self.service.close()  # the visitor left
        super().on_connection_close()


# Every method the handler accepts is relayed: tornado calls the handler's method of that name.
for _method in ProxyHandler.SUPPORTED_METHODS:
    setattr(ProxyHandler, _method.lower(), ProxyHandler.relay)
del _method
