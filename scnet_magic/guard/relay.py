"""HTTP through the guard: the visitor's request to the service, the service's answer back.

Tornado's HTTP client speaks to the service, so that reading the answer's framing, skipping
interim (1xx) answers and closing the connection after each answer are a maintained
library's job. Each request has a connection of its own, closed after the answer: nothing a
service sends past its answer can reach another visitor (the stray bytes go with the
connection), and a few open event streams never queue other requests behind them.

Bodies stream both ways with flow control: the visitor's next piece is read only once the
previous one has gone to the service's socket, and the service's only once the previous one
has gone to the visitor's (the client awaits a coroutine ``streaming_callback`` from tornado
6.6 on), so memory stays bounded whatever the size of an upload or download. An answer's
headers leave as soon as they arrive when its length is unknown, so that server-sent events
arrive as they are sent.

What the service learns of the visitor: ``X-Forwarded-For`` is always the socket's peer (the
guard cannot tell a gateway's claim from a visitor's, and a service may trust that address);
``X-Forwarded-Proto`` and ``X-Forwarded-Host`` pass on as the platform's gateway set them (the
scheme and host the visitor used, which the service needs to build its links), and are set
from the socket and the ``Host`` header when absent or not a scheme or a host.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from tornado import httputil, iostream, web
from tornado.http1connection import HTTP1Connection
from tornado.httpclient import HTTPClientError, HTTPRequest, HTTPResponse
from tornado.simple_httpclient import SimpleAsyncHTTPClient
from tornado.tcpclient import TCPClient

from ..i18n import N_
from . import GUARD_HEADER, auth, hop_by_hop
from .base import UPSTREAM_HOST, GuardHandler, Verdict, log
from .hop_by_hop import HOP_BY_HOP

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
# How an exchange with the service fails: refused, reset, cut short, timed out, not HTTP, or a
# request target the client cannot send ("OPTIONS *").
EXCHANGE_FAILURES = (
    OSError,
    ValueError,
    HTTPClientError,
    httputil.HTTPInputError,
    httputil.HTTPOutputError,
)
# The HTTP client frames a body of unknown length in chunks itself for these methods only.
CHUNKED_BY_CLIENT = frozenset({"POST", "PUT", "PATCH"})

SERVICE_NOT_ANSWERING = N_("The service behind this address is not answering.")
BAD_FRAMING = N_("Bad request: the body's length is ambiguous.")


def framing_problem(headers: httputil.HTTPHeaders) -> bool:
    """Whether a request's body length is ambiguous (the stuff of request smuggling).

    Tornado rejects these too, but only after the handler has started; the guard refuses them
    before anything goes to the service.
    """
    encodings = headers.get_list("Transfer-Encoding")
    lengths = headers.get_list("Content-Length")
    if encodings and lengths:
        return True
    if encodings and (len(encodings) > 1 or encodings[0].strip().lower() != "chunked"):
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


def connection_tokens(headers: httputil.HTTPHeaders) -> frozenset[str]:
    """The tokens of a message's Connection headers, lower case: ``keep-alive, close`` is two,
    as are two Connection lines."""
    return hop_by_hop.connection_tokens(headers.get_list("Connection"))


def _single(headers: httputil.HTTPHeaders, name: str) -> str | None:
    values = headers.get_list(name)
    return values[0].strip() if len(values) == 1 else None


def forwarded_headers(
    request: httputil.HTTPServerRequest, *, drop: frozenset[str]
) -> httputil.HTTPHeaders:
    """The visitor's headers as the service should see them, minus ``drop`` (lower-case names:
    the ones that carried the guard's own credential among them).

    Host passes unchanged (the service builds links and checks origins with it; it never
    chooses where the guard connects).
    """
    named = connection_tokens(request.headers)
    headers = httputil.HTTPHeaders()
    for name, value in request.headers.get_all():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in named or lower in SET_BY_GUARD or lower in drop:
            continue
        if lower == "cookie":
            kept = auth.without_guard_cookie(value)
            if kept is None:
                continue
            value = kept
        headers.add(name, value)
    headers["X-Forwarded-For"] = request.remote_ip or ""
    scheme = (_single(request.headers, "X-Forwarded-Proto") or "").lower()
    headers["X-Forwarded-Proto"] = scheme if scheme in SCHEMES else request.protocol
    host = _single(request.headers, "X-Forwarded-Host")
    if host is None or not HOST.fullmatch(host):
        host = request.headers.get("Host")
    if host:
        headers["X-Forwarded-Host"] = host
    return headers


def response_headers(headers: httputil.HTTPHeaders) -> list[tuple[str, str]]:
    """The service's response headers minus the hop-by-hop ones, those its Connection header
    names, and any guard header."""
    dropped = HOP_BY_HOP | connection_tokens(headers) | {GUARD_HEADER.lower()}
    return [(name, value) for name, value in headers.get_all() if name.lower() not in dropped]


class AsSent(httputil.HTTPHeaders):
    """Request headers that the HTTP client sends as they are.

    The client fills in a User-Agent and a form Content-Type when a request has none; a proxy
    must not (the service would see a client, or a kind of body, the visitor never claimed).
    Once sealed, those two can no longer be set; they pass as the visitor sent them.
    """

    FILLED_IN_BY_CLIENT = frozenset({"User-Agent", "Content-Type"})
    sealed = False

    def __setitem__(self, name: str, value: str) -> None:
        if self.sealed and name in self.FILLED_IN_BY_CLIENT:
            return
        super().__setitem__(name, value)


class ServiceConnection(TCPClient):
    """The HTTP client's connection to the service, kept at hand so that the relay can cut it
    when the visitor leaves: the client has no way to cancel a request under way, and would
    otherwise read a download (or an endless event stream) for nobody.

    It connects straight to the address, an IP literal: no resolver thread, no racing of
    address families (the other arguments are for TLS and source addresses, unused here).
    """

    def __init__(self) -> None:
        super().__init__()
        self.stream: iostream.IOStream | None = None
        self.cut = False

    async def connect(
        self,
        host: str,
        port: int,
        af: socket.AddressFamily = socket.AF_INET,
        ssl_options: dict[str, Any] | ssl.SSLContext | None = None,
        max_buffer_size: int | None = None,
        source_ip: str | None = None,
        source_port: int | None = None,
        timeout: float | datetime.timedelta | None = None,
    ) -> iostream.IOStream:
        if isinstance(timeout, datetime.timedelta):
            timeout = timeout.total_seconds()
        self.stream = iostream.IOStream(socket.socket(), max_buffer_size=max_buffer_size)
        if self.cut:
            self.stream.close()
        try:
            await asyncio.wait_for(self.stream.connect((host, port)), timeout)
        except TimeoutError:
            self.stream.close()
            raise
        return self.stream

    def cut_off(self) -> None:
        self.cut = True
        if self.stream is not None:
            self.stream.close()


class ServiceClient(SimpleAsyncHTTPClient):
    """Tornado's HTTP client for one request to the service, through ``connection``, sent as
    the visitor sent it.

    One client per request: a shared one queues requests beyond ``max_clients``, and a few
    open event streams would stall every other visitor.
    """

    # Configurable passes the constructor's keywords here: this client takes its connection.
    def initialize(self, connection: ServiceConnection) -> None:  # type: ignore[override]
        super().initialize(resolver=connection.resolver, max_body_size=UNLIMITED_BODY)
        self.tcp_client = connection

    def fetch_impl(self, request: HTTPRequest, callback: Callable[[HTTPResponse], None]) -> None:
        # The client's own copy of the headers, before it fills anything in.
        headers = AsSent(request.headers)
        headers.sealed = True
        request.headers = headers
        super().fetch_impl(request, callback)


class Upload:
    """The visitor's request body on its way to the service.

    The HTTP client calls :meth:`produce` once connected; each piece of the visitor's body is
    written straight to the service's connection, and the visitor's next piece is read only
    once that write is done.
    """

    def __init__(self, *, frame_chunks: bool) -> None:
        loop = asyncio.get_running_loop()
        # The connection's write, or None once the service no longer takes the body.
        self._write: asyncio.Future[Callable[[bytes], Awaitable[None]] | None] = (
            loop.create_future()
        )
        self._ended: asyncio.Future[None] = loop.create_future()
        # A chunked body of a method the client does not frame itself.
        self._frame_chunks = frame_chunks

    async def produce(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        """The client's ``body_producer``: the request is complete when this returns."""
        if not self._write.done():
            self._write.set_result(write)
        await self._ended

    async def send(self, piece: bytes) -> None:
        write = await self._write
        if write is None or not piece:
            return
        try:
            await write(b"%x\r\n%b\r\n" % (len(piece), piece) if self._frame_chunks else piece)
        except iostream.StreamClosedError:
            self.abandon()  # the service answered early or left: its answer tells the rest

    async def end(self) -> None:
        """The visitor's body is all sent: end it (the last chunk of a body framed here)."""
        write = await self._write
        if write is not None and self._frame_chunks:
            with contextlib.suppress(iostream.StreamClosedError):
                await write(b"0\r\n\r\n")
        self.abandon()

    def abandon(self) -> None:
        """No more of the body goes to the service: the rest of it is read and dropped."""
        if not self._write.done():
            self._write.set_result(None)
        if not self._ended.done():
            self._ended.set_result(None)


def carries_body(headers: httputil.HTTPHeaders) -> bool:
    return "Transfer-Encoding" in headers or headers.get("Content-Length", "0").strip() not in (
        "",
        "0",
    )


@web.stream_request_body
class ProxyHandler(GuardHandler):
    """Any other request: to the service, once the visitor has authenticated."""

    SUPPORTED_METHODS = (*web.RequestHandler.SUPPORTED_METHODS, *EXTRA_METHODS)
    upload: Upload | None = None
    service: ServiceConnection | None = None
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
            connection.set_max_body_size(UNLIMITED_BODY)
        self.answering = asyncio.ensure_future(self._ask_service())

    async def _ask_service(self) -> bool:
        """Send the request on and relay the answer as it comes; whether it arrived whole."""
        request = self.request
        method = request.method or "GET"
        headers = forwarded_headers(request, drop=self.consumed_headers)
        if carries_body(request.headers):
            frame_chunks = "Transfer-Encoding" in request.headers and method not in (
                CHUNKED_BY_CLIENT
            )
            if frame_chunks:
                headers["Transfer-Encoding"] = "chunked"
            self.upload = Upload(frame_chunks=frame_chunks)
        elif "Content-Length" not in headers and method in CHUNKED_BY_CLIENT:
            headers["Content-Length"] = "0"
        self.service = ServiceConnection()
        client = ServiceClient(force_instance=True, connection=self.service)
        try:
            await client.fetch(
                HTTPRequest(
                    f"http://{UPSTREAM_HOST}:{self.guard.upstream_port}{origin_form(request.uri)}",
                    method=method,
                    headers=headers,
                    # Typed by tornado as returning None, the write returns the Future that
                    # its documentation says to await.
                    body_producer=self.upload.produce if self.upload else None,  # type: ignore[arg-type]
                    allow_nonstandard_methods=True,
                    follow_redirects=False,  # the visitor's browser follows the service's
                    decompress_response=False,  # bodies pass as the service compressed them
                    connect_timeout=CONNECT_TIMEOUT,
                    request_timeout=0,  # none: downloads and event streams take what they take
                    header_callback=self._header_line,
                    streaming_callback=self._pass_on,
                ),
                raise_error=False,  # an error status is an answer like any other
            )
        except EXCHANGE_FAILURES:
            return False
        finally:
            client.close()
            if self.upload is not None:
                self.upload.abandon()  # the visitor's remaining body goes nowhere now
        return True

    async def data_received(self, chunk: bytes) -> None:
        if self.upload is not None:
            await self.upload.send(chunk)

    async def relay(self, *_args: str) -> None:
        """The method for every HTTP verb: the body has been sent on; finish the response."""
        if self.refusal is not None:
            self.refuse(self.refusal)
            return
        assert self.answering is not None
        if self.upload is not None:
            await self.upload.end()
        if await self.answering:
            self.finish()
        elif not self.answer_started:
            self.clear()
            self.plain(502, SERVICE_NOT_ANSWERING)
        elif isinstance(self.request.connection, HTTP1Connection):
            # Cut off mid-answer: close rather than end the response cleanly, so that the
            # visitor does not take a truncated download for a whole one.
            self.request.connection.close()

    # The answer, as the HTTP client reads it from the service:

    _service_status: httputil.ResponseStartLine | None = None
    _service_headers: httputil.HTTPHeaders | None = None

    def _header_line(self, line: str) -> None:
        """One line of the service's answer head, 1xx answers' included."""
        status, headers = self._service_status, self._service_headers
        if line.startswith("HTTP/"):
            self._service_status = httputil.parse_response_start_line(line.rstrip("\r\n"))
            self._service_headers = httputil.HTTPHeaders()
        elif status is None or headers is None:
            return
        elif line not in ("\r\n", "\n"):
            headers.parse_line(line)
        elif status.code >= 200:
            # An interim answer (103 Early Hints) is left out: tornado's server cannot send
            # one, and the final answer follows on the same connection.
            self._start_answer(status, headers)

    def _start_answer(
        self, status: httputil.ResponseStartLine, headers: httputil.HTTPHeaders
    ) -> None:
        self.set_status(status.code, status.reason or None)
        for name in ("Content-Type", "Server", "Date"):  # tornado's defaults, not the service's
            self.clear_header(name)
        for name, value in response_headers(headers):
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

    async def _pass_on(self, piece: bytes) -> None:
        """A piece of the body, to the visitor; the service's next once it has left."""
        try:
            if self._headers_out is not None:
                await self._headers_out
                self._headers_out = None
            self.write(piece)
            await self._flush()
        except iostream.StreamClosedError:
            self._visitor_left()

    def _visitor_left(self) -> None:
        if self.service is not None:
            self.service.cut_off()
        if self.upload is not None:
            self.upload.abandon()

    def on_connection_close(self) -> None:
        self._visitor_left()
        super().on_connection_close()


# Every method the handler accepts is relayed: tornado calls the handler's method of that name.
for _method in ProxyHandler.SUPPORTED_METHODS:
    setattr(ProxyHandler, _method.lower(), ProxyHandler.relay)
del _method
