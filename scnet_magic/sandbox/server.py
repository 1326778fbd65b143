"""The sandbox's HTTP plumbing: a bounded threaded server, its handler, and the gateway.

The gateway is a reverse proxy per started service, playing the platform's external URL. Like
the platform's, it relays WebSocket upgrades (Gradio, ComfyUI and Jupyter need them): once the
service switches protocols, it copies bytes both ways until either side leaves. Any other
answer (a guard's 401) is relayed as it is.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import socketserver
import threading
import time
from collections.abc import Iterable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from ..guard.hop_by_hop import connection_tokens, end_to_end
from .data import BAD_GATEWAY_PAGE, HTML, MAX_BODY, TEXT, logger

# A connection that sends nothing for this long is closed, so that idle or stalled clients do
# not each hold a thread of the user's kernel forever.
IDLE_TIMEOUT = 30.0
# Connections served at once by one server (one thread each); more are answered 503 at once.
MAX_CONNECTIONS = 100
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def content_length(headers: Message) -> int:
    """The declared body length; -1 when it is unusable (chunked or malformed)."""
    if "Transfer-Encoding" in headers:
        return -1
    value = headers.get("Content-Length", "0").strip()
    if not (value.isascii() and value.isdigit()):
        return -1
    return int(value) if len(value) <= 18 else MAX_BODY + 1


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # Some Python versions turn SO_REUSEPORT on, which lets a second server share a fixed port.
    allow_reuse_port = False
    # socketserver listens with a backlog of 5: a burst of clients connecting at once (a
    # class of students, a load test) overflows it, and the kernel answers the excess with
    # SYN cookies, one-second retransmissions and connection resets.
    request_queue_size = 128

    def __init__(
        self, label: str, host: str, port: int, handler: type[BaseHTTPRequestHandler]
    ) -> None:
        self.label = label
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._open: set[socket.socket] = set()  # the connections being served
        self._open_lock = threading.Lock()
        super().__init__((host, port), handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host up with getfqdn, which can stall on reverse DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        sock = cast(socket.socket, request)  # a TCP server's requests are sockets
        with self._open_lock:
            full = len(self._open) >= MAX_CONNECTIONS
            if not full:
                self._open.add(sock)
        if full:  # 503 and close, without blocking accept()
            with contextlib.suppress(OSError):
                sock.setblocking(False)
                sock.send(_BUSY)
            sock.close()
        else:  # its thread, or socketserver if none starts, ends with shutdown_request
            super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        with self._open_lock:
            self._open.discard(cast(socket.socket, request))
        super().shutdown_request(request)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        logger.debug("%s: connection from %s failed", self.label, client_address, exc_info=True)

    def serve_in_background(self) -> None:
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=self.label, daemon=True
        ).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        # Keep-alive connections would otherwise go on being served after stop().
        self.drop_connections()

    def drop_connections(self) -> None:
        """End every connection being served (their threads then end)."""
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    # Without it every keep-alive answer waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server_version = "scnet-sandbox"

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(IDLE_TIMEOUT)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.info("%s %s %s %s", self.server.label, self.command, self.path, code)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s: " + format, self.server.label, *args)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Iterable[tuple[str, str]] = (),
        close: bool = False,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _discard_rest(self) -> None:
        """Close after an early answer, letting the client finish sending its body (≤ 1 s):
        closing with unread data sends a reset, which a client still uploading would see
        instead of the answer."""
        self.close_connection = True
        deadline = time.monotonic() + 1.0
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(1.0)
            while time.monotonic() < deadline and self.connection.recv(65536):
                pass


def _end_to_end(headers: Message) -> list[tuple[str, str]]:
    return end_to_end(headers.items(), headers.get_all("Connection", []))


class GatewayServer(Server):
    def __init__(self, notebook_id: str, target_port: int) -> None:
        self.target_port = target_port
        super().__init__(f"gateway {notebook_id}:{target_port}", "127.0.0.1", 0, _GatewayHandler)


class _GatewayHandler(Handler):
    server: GatewayServer

    def do_GET(self) -> None:
        length = content_length(self.headers)
        if length < 0:
            self._send(411, b"411 Length Required\n", TEXT, close=True)
            self._discard_rest()
            return
        body = self.rfile.read(length) if length else None
        headers = dict(_end_to_end(self.headers))
        websocket = "upgrade" in connection_tokens(self.headers.get_all("Connection", [])) and (
            "websocket" in connection_tokens(self.headers.get_all("Upgrade", []))
        )
        if websocket:
            # The two hop-by-hop headers that ask the next hop to switch protocols go on.
            headers["Connection"], headers["Upgrade"] = "Upgrade", self.headers["Upgrade"]
        # Slow on purpose, maybe: image generation takes minutes.
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.target_port, timeout=600)
        with contextlib.closing(upstream):
            try:
                upstream.request(self.command, self.path, body, headers)
                response = upstream.getresponse()
            except (OSError, http.client.HTTPException):
                self._send(502, BAD_GATEWAY_PAGE, HTML)
                return
            self.send_response_only(response.status, response.reason)
            self.log_request(response.status)
            for name, value in _end_to_end(response.msg):
                self.send_header(name, value)
            if websocket and response.status == 101:
                self._switch(response, upstream)
            else:
                self._relay(response)

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _switch(
        self, response: http.client.HTTPResponse, upstream: http.client.HTTPConnection
    ) -> None:
        """Pass the service's 101 on, then relay bytes both ways until either side leaves."""
        self.send_header("Connection", "Upgrade")
        self.send_header("Upgrade", response.getheader("Upgrade", "websocket"))
        self.end_headers()
        # No more HTTP on this connection, whatever happens to the tunnel.
        self.close_connection = True
        # A WebSocket may stay quiet for hours: only a side closing ends it.
        upstream.sock.settimeout(None)
        self.connection.settimeout(None)
        # Each side is read through the buffered reader its head was parsed with: bytes sent
        # right behind a head may already wait in it (response.fp, not response: http.client
        # reads a 101 as an empty body). The service's side is copied in a thread of its own;
        # the end of either side ends the other, so the thread never outlives the connection.
        back = threading.Thread(
            target=_copy,
            args=(response.fp, self.connection, upstream.sock),
            name="gateway tunnel",
            daemon=True,
        )
        back.start()
        try:
            _copy(self.rfile, upstream.sock, self.connection)
        finally:
            back.join()

    def _relay(self, response: http.client.HTTPResponse) -> None:
        bodyless = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
        # Without a length the upstream streams (server-sent events, for one): keep streaming.
        chunked = not bodyless and response.getheader("Content-Length") is None
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


def _copy(source: io.BufferedIOBase, target: socket.socket, source_socket: socket.socket) -> None:
    # read1 returns what has come so far (at most one read): nothing waits for a full block.
    with contextlib.suppress(OSError):
        while block := source.read1(65536):
            target.sendall(block)
    # The source closed (or failed): the target gets its end after all that was sent to it,
    # and the other direction, blocked reading the target or writing the source, wakes up and
    # ends too, as a WebSocket ends when either end goes.
    for sock in (target, source_socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
