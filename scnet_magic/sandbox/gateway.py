"""The gateway: a reverse proxy per started service, playing the platform's external URL.

It relays WebSocket upgrades too, as the platform's gateway does (Gradio, ComfyUI and Jupyter
need them): the upgrade goes to the service, and if the service switches protocols neither
side speaks HTTP on the connection any more: the gateway copies bytes both ways, as they come,
until either leaves. Any other answer (a guard's 401) is relayed as it is.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import threading
from email.message import Message

from ..guard.hop_by_hop import HOP_BY_HOP, connection_tokens
from .data import _BAD_GATEWAY_PAGE, _HTML, _TEXT
from .server import _content_length, _Handler, _Server

# Requests through a gateway may be slow on purpose (image generation takes minutes).
_UPSTREAM_TIMEOUT = 600.0


def _end_to_end(headers: Message) -> list[tuple[str, str]]:
    """The headers without the hop-by-hop ones (those named in Connection included)."""
    dropped = HOP_BY_HOP | connection_tokens(headers.get_all("Connection", []))
    return [(name, value) for name, value in headers.items() if name.lower() not in dropped]


def _asks_websocket(headers: Message) -> bool:
    return "upgrade" in connection_tokens(headers.get_all("Connection", [])) and (
        "websocket" in connection_tokens(headers.get_all("Upgrade", []))
    )


class _GatewayServer(_Server):
    def __init__(self, notebook_id: str, target_port: int) -> None:
        self.target_port = target_port
        super().__init__(f"gateway {notebook_id}:{target_port}", "127.0.0.1", 0, _GatewayHandler)


class _GatewayHandler(_Handler):
    server: _GatewayServer

    def do_GET(self) -> None:
        self._proxy()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _proxy(self) -> None:
        length = _content_length(self.headers)
        if length < 0:
            self._send(411, b"411 Length Required\n", _TEXT, close=True)
            self._discard_rest()
            return
        body = self.rfile.read(length) if length else None
        headers = dict(_end_to_end(self.headers))
        websocket = _asks_websocket(self.headers)
        if websocket:
            # The two hop-by-hop headers that ask the next hop to switch protocols go on.
            headers["Connection"], headers["Upgrade"] = "Upgrade", self.headers["Upgrade"]
        upstream = http.client.HTTPConnection(
            "127.0.0.1", self.server.target_port, timeout=_UPSTREAM_TIMEOUT
        )
        try:
            try:
                upstream.request(self.command, self.path, body, headers)
                response = upstream.getresponse()
            except (OSError, http.client.HTTPException):
                self._send(502, _BAD_GATEWAY_PAGE, _HTML)
                return
            if websocket and response.status == 101:
                self._switch(response, upstream)
            else:
                self._relay(response)
        finally:
            upstream.close()

    def _switch(
        self, response: http.client.HTTPResponse, upstream: http.client.HTTPConnection
    ) -> None:
        """Pass the service's 101 on, then relay the new protocol until either side leaves."""
        self.send_response_only(101, response.reason)
        self.log_request(101)
        for name, value in _end_to_end(response.msg):
            self.send_header(name, value)
        self.send_header("Connection", "Upgrade")
        self.send_header("Upgrade", response.getheader("Upgrade", "websocket"))
        self.end_headers()
        # No more HTTP on this connection, whatever happens to the tunnel.
        self.close_connection = True
        # A WebSocket may stay quiet for hours: only a side closing ends it.
        upstream.sock.settimeout(None)
        self.connection.settimeout(None)
        # response.fp, not response: http.client reads a 101 as an empty body, while the
        # service's first frames may already be buffered behind the head.
        tunnel(self.rfile, self.connection, response.fp, upstream.sock)

    def _relay(self, response: http.client.HTTPResponse) -> None:
        bodyless = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
        # Without a length the upstream streams (server-sent events, for one): keep streaming.
        chunked = not bodyless and response.getheader("Content-Length") is None
        self.send_response_only(response.status, response.reason)
        self.log_request(response.status)
        for name, value in _end_to_end(response.msg):
            self.send_header(name, value)
        if chunked and self.request_version == "HTTP/1.1":
            self.send_header("Transfer-Encoding", "chunked")
        elif chunked:
            chunked = False
            self.close_connection = True
        self.end_headers()
        while not bodyless and (block := response.read1(65536)):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


def tunnel(
    client_in: io.BufferedIOBase,
    client: socket.socket,
    upstream_in: io.BufferedIOBase,
    upstream: socket.socket,
) -> None:
    """Relay bytes between the two sockets until either side closes, then shut both down.

    Each side is read through the buffered reader its HTTP head was parsed with: bytes sent
    right behind a head (a first frame behind the 101) may already wait in it. The service's
    side is copied in a thread of its own, the client's in the caller's; the end of either ends
    the other, so the thread never outlives the connection.
    """
    back = threading.Thread(
        target=_copy, args=(upstream_in, client, upstream), name="gateway tunnel", daemon=True
    )
    back.start()
    try:
        _copy(client_in, upstream, client)
    finally:
        back.join()


def _copy(source: io.BufferedIOBase, target: socket.socket, source_socket: socket.socket) -> None:
    # read1 returns what has come so far (at most one read): nothing waits for a full block.
    with contextlib.suppress(OSError):
        while block := source.read1(65536):
            target.sendall(block)
    # The source closed (or failed): the target gets its end after all that was sent to it,
    # and the other direction, blocked reading the target or writing the source, wakes up and
    # ends too. Either side leaving ends the tunnel, as a WebSocket ends when either end goes.
    for sock in (target, source_socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
