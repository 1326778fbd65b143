"""HTTP through the guard: the visitor's request to the service, the service's answer back.

Bodies stream both ways with flow control: a chunk is read from one side only once the
previous one has been handed to the other side's socket, so memory stays bounded whatever the
size of an upload or download, and server-sent events arrive as they are sent.

The service side speaks HTTP/1.1 through tornado's ``HTTP1Connection`` (the engine under
``AsyncHTTPClient``) rather than ``AsyncHTTPClient`` itself: that client awaits a streaming
callback only from tornado 6.6 on (older ones would buffer a fast download whole in memory),
queues requests beyond ``max_clients`` (a few open event streams would stall every other
request), and adds to requests (User-Agent, a default Content-Type, gzip) what a proxy must
pass on as they are.
"""

from __future__ import annotations

import asyncio
from asyncio import Future
from typing import cast
from urllib.parse import urlsplit

from tornado import httputil, iostream, web
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters

from ..i18n import N_
from . import auth
from .base import GuardHandler, Verdict, log
from .manage import GUARD_HEADER

UNLIMITED_BODY = 2**62
CHUNK_SIZE = 1024 * 1024
# A response body at least this long, of a length the service declared, is copied between the
# two sockets through two reused buffers instead of tornado's body reader: that reader allocates
# a fresh chunk per read and copies each byte twice more in Python, which halved a download's
# throughput. Below it, the headers leave with the body in one write, as before.
DIRECT_COPY_MIN = 256 * 1024
# How much the direct copy moves before letting other connections have a turn: its reads and
# writes complete without waiting while both sockets keep up.
YIELD_EVERY = 4 * CHUNK_SIZE

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# What the guard says about the visitor itself; a visitor's own values are dropped, not passed
# on. ("Expect: 100-continue" was answered by the guard's server already.)
SET_BY_GUARD = frozenset(
    {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded", "expect"}
)
# WebDAV and other extension methods pass too; CONNECT and TRACE do not.
EXTRA_METHODS = ("PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT")

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


def declared_length(headers: httputil.HTTPHeaders) -> int | None:
    """A response's body length when it is declared once, plainly, and without chunking."""
    lengths = headers.get_list("Content-Length")
    if len(lengths) != 1 or "Transfer-Encoding" in headers:
        return None
    value = lengths[0].strip()
    return int(value) if value.isascii() and value.isdigit() else None


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
    return frozenset(
        token.strip().lower() for token in headers.get("Connection", "").split(",") if token.strip()
    )


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
    headers["X-Forwarded-Proto"] = request.protocol
    if "Host" in request.headers:
        headers["X-Forwarded-Host"] = request.headers["Host"]
    return headers


def response_headers(headers: httputil.HTTPHeaders, named: frozenset[str]) -> list[tuple[str, str]]:
    """The service's response headers minus the hop-by-hop ones, those its Connection header
    ``named``, and any guard header."""
    dropped = HOP_BY_HOP | named | {GUARD_HEADER.lower()}
    return [(name, value) for name, value in headers.get_all() if name.lower() not in dropped]


UPSTREAM_PARAMS = HTTP1ConnectionParameters(
    no_keep_alive=True,
    chunk_size=CHUNK_SIZE,
    max_body_size=UNLIMITED_BODY,
    decompress=False,  # compressed bodies pass as the service sent them
)


class Exchange(httputil.HTTPMessageDelegate):
    """One request to the service, and its response relayed to the visitor as it arrives."""

    def __init__(self, handler: ProxyHandler) -> None:
        self._handler = handler
        self._connection: HTTP1Connection | None = None
        self._frame_chunks = False  # a chunked body whose method tornado would not chunk
        self._upstream_broken = False
        self._finished = False
        self._request_sent = False  # the whole request has gone to the service
        self._copying: iostream.IOStream | None = None  # the service's stream, during a copy
        self._keep_alive = False  # the response leaves the connection fit for another request
        self.reused = False  # on a kept-alive connection (which the service may have closed)
        self.headers_sent = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reading: asyncio.Future[bool] | None = None

    @property
    def complete(self) -> bool:
        return self._finished

    async def open(self, *, may_reuse: bool) -> None:
        request = self._handler.request
        method = request.method or "GET"
        headers = forwarded_headers(request, drop=self._handler.consumed_headers)
        if "Transfer-Encoding" in request.headers:
            # Tornado frames the body in chunks itself for POST, PUT and PATCH only.
            self._frame_chunks = method not in ("POST", "PUT", "PATCH")
            if self._frame_chunks:
                headers["Transfer-Encoding"] = "chunked"
        elif "Content-Length" not in headers and method in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = "0"
        stream = self._handler.guard.idle_connection() if may_reuse else None
        self.reused = stream is not None
        if stream is None:
            stream = await self._handler.guard.connect_upstream()
        stream.set_nodelay(True)
        stream.read_chunk_size = CHUNK_SIZE
        self._connection = HTTP1Connection(stream, True, UPSTREAM_PARAMS)
        start_line = httputil.RequestStartLine(method, origin_form(request.uri), "HTTP/1.1")
        await self._connection.write_headers(start_line, headers)
        self._reading = asyncio.ensure_future(self._connection.read_response(self))
        # A failed read has been reported through on_connection_close already.
        self._reading.add_done_callback(_retrieve_exception)

    async def send(self, chunk: bytes) -> None:
        if self._upstream_broken or not chunk or self._connection is None:
            return
        if self._frame_chunks:
            chunk = b"%x\r\n%b\r\n" % (len(chunk), chunk)
        try:
            await self._connection.write(chunk)
        except iostream.StreamClosedError:
            self._upstream_broken = True  # the service answered early or went away

    async def end_request(self) -> None:
        if self._upstream_broken or self._connection is None:
            return
        try:
            if self._frame_chunks:
                await self._connection.write(b"0\r\n\r\n")
            self._connection.finish()
        except (iostream.StreamClosedError, httputil.HTTPOutputError):
            self._upstream_broken = True
            return
        self._request_sent = True

    async def release(self) -> None:
        """Keep the connection for another request, if the response allows it."""
        if self._reading is None or self._connection is None:
            return
        reusable = await self._reading
        if reusable and self._keep_alive and not self._upstream_broken:
            stream = self._connection.detach()
            if not stream.closed():
                self._handler.guard.keep(stream)

    def abort(self) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._copying is not None:
            self._copying.close()  # detached from the connection, which cannot close it
        self._settle()

    # The response, as tornado reads it from the service:

    async def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        assert isinstance(start_line, httputil.ResponseStartLine)
        named = connection_tokens(headers)
        self._handler.start_response(start_line, headers, named)
        self.headers_sent = True
        self._keep_alive = (
            start_line.version == "HTTP/1.1"
            and "close" not in named
            and (
                "Content-Length" in headers
                or "Transfer-Encoding" in headers
                or self._handler.request.method == "HEAD"
                or start_line.code in (204, 304)
            )
        )
        if "Content-Length" not in headers:
            # A body of unknown length may be an event stream: its headers must not wait for
            # its first event. (With a length, they leave with the first chunk of the body.)
            await self._pass_on()
            return
        length = declared_length(headers)
        if (
            length is not None
            and length >= DIRECT_COPY_MIN
            and self._request_sent  # else the connection still carries the request's body
            and self._handler.request.method != "HEAD"
            and start_line.code not in (204, 304)
            and self._connection is not None
        ):
            # Detaching here ends tornado's reading of this response: the body is this
            # exchange's to read, exactly ``length`` bytes of it.
            await self._copy_body(self._connection.detach(), length)

    async def _copy_body(self, upstream: iostream.IOStream, length: int) -> None:
        """Relay a body of known length from the service's stream to the visitor's.

        Two buffers take turns: the next piece is read from the service while the previous
        one is still leaving for the visitor, and a buffer is refilled only once its piece has
        been written out, so memory stays at two chunks whatever the length.
        """
        self._copying = upstream
        buffers = (memoryview(bytearray(CHUNK_SIZE)), memoryview(bytearray(CHUNK_SIZE)))
        sending: Future[None] | None = None
        remaining, since_yield, turn = length, 0, 0
        try:
            await self._handler.flush()  # the headers, before the body goes past the handler
            while remaining > 0:
                buffer = buffers[turn][: min(CHUNK_SIZE, remaining)]
                turn ^= 1
                # read_into is typed for a bytearray; a view of one is what it fills in place.
                received = await upstream.read_into(cast(bytearray, buffer), partial=True)
                if sending is not None:
                    await sending
                sending = self._handler.send_body(buffer[:received])
                remaining -= received
                since_yield += received
                if since_yield >= YIELD_EVERY:
                    since_yield = 0
                    await asyncio.sleep(0)
            if sending is not None:
                await sending
        except iostream.StreamClosedError:
            # The service cut the body short, or the visitor left: either way the visitor's
            # connection must not look like a whole answer, and neither stream is reusable.
            upstream.close()
            self._settle()
            return
        finally:
            self._copying = None
        self._finished = True
        if self._keep_alive and not upstream.closed():
            self._handler.guard.keep(upstream)
        else:
            upstream.close()
        self._settle()

    async def data_received(self, chunk: bytes) -> None:
        self._handler.write(chunk)
        await self._pass_on()

    async def _pass_on(self) -> None:
        try:
            await self._handler.flush()
        except iostream.StreamClosedError:
            self.abort()  # the visitor left: stop reading from the service

    def finish(self) -> None:
        self._finished = True
        self._settle()

    def on_connection_close(self) -> None:
        self._settle()

    def _settle(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


def _has_body(headers: httputil.HTTPHeaders) -> bool:
    return "Transfer-Encoding" in headers or headers.get("Content-Length", "0").strip() != "0"


def _retrieve_exception(future: asyncio.Future[bool]) -> None:
    if not future.cancelled():
        future.exception()


@web.stream_request_body
class ProxyHandler(GuardHandler):
    """Any other request: to the service, once the visitor has authenticated."""

    SUPPORTED_METHODS = (*web.RequestHandler.SUPPORTED_METHODS, *EXTRA_METHODS)
    exchange: Exchange | None = None

    async def prepare(self) -> None:
        if framing_problem(self.request.headers):
            self.set_header("Connection", "close")
            self.plain(400, BAD_FRAMING)
            return
        verdict = await self.credentials()
        if verdict is not Verdict.PASS:
            self.refuse(verdict)
            return
        connection = self.request.connection
        if isinstance(connection, HTTP1Connection):
            connection.set_max_body_size(UNLIMITED_BODY)
        exchange = await self._open_exchange(may_reuse=not _has_body(self.request.headers))
        if exchange is None:
            self.plain(502, SERVICE_NOT_ANSWERING)
            return
        self.exchange = exchange

    async def _open_exchange(self, *, may_reuse: bool) -> Exchange | None:
        exchange = Exchange(self)
        try:
            await exchange.open(may_reuse=may_reuse)
        except (OSError, iostream.StreamClosedError):
            exchange.abort()
            return None
        return exchange

    async def data_received(self, chunk: bytes) -> None:
        if self.exchange is not None:
            await self.exchange.send(chunk)

    async def relay(self, *_args: str) -> None:
        """The method for every HTTP verb: the body has been sent on; finish the response."""
        exchange = self.exchange
        assert exchange is not None
        await exchange.end_request()
        await exchange.done
        if exchange.reused and not exchange.complete and not exchange.headers_sent:
            # The service had closed the kept-alive connection: once more on a new one (only
            # requests without a body go on kept-alive connections, so nothing is lost).
            retried = await self._open_exchange(may_reuse=False)
            if retried is not None:
                exchange = self.exchange = retried
                await exchange.end_request()
                await exchange.done
        if exchange.complete:
            self.finish()
            await exchange.release()
        elif not exchange.headers_sent:
            self.plain(502, SERVICE_NOT_ANSWERING)
        elif isinstance(self.request.connection, HTTP1Connection):
            # Cut off mid-answer: close rather than end the response cleanly, so that the
            # visitor does not take a truncated download for a whole one.
            self.request.connection.close()

    def start_response(
        self,
        start_line: httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
        named: frozenset[str],
    ) -> None:
        self.set_status(start_line.code, start_line.reason or None)
        for name in ("Content-Type", "Server", "Date"):  # tornado's defaults, not the service's
            self.clear_header(name)
        for name, value in response_headers(headers, named):
            try:
                self.add_header(name, value)
            except ValueError:
                log.warning("dropped a response header with a control character: %s", name)

    def send_body(self, piece: memoryview) -> Future[None]:
        """A piece of the body straight to the visitor's connection, once the headers are out.

        Past ``write()``, which takes bytes only (a copy) and joins its buffer (another).
        """
        connection = self.request.connection
        assert connection is not None
        # Typed for bytes; tornado's stream keeps a view of the buffer without copying it.
        return connection.write(cast(bytes, piece))

    def on_connection_close(self) -> None:
        if self.exchange is not None:
            self.exchange.abort()
        super().on_connection_close()


# Every method the handler accepts is relayed: tornado calls the handler's method of that name.
for _method in ProxyHandler.SUPPORTED_METHODS:
    setattr(ProxyHandler, _method.lower(), ProxyHandler.relay)
del _method
