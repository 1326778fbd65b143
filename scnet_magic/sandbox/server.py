"""The HTTP plumbing every sandbox server shares: threads, limits, closing, early answers."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Iterable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from .data import _MAX_BODY, logger

# A connection that sends nothing for this long is closed, so that idle or stalled clients do
# not each hold a thread of the user's kernel forever.
IDLE_TIMEOUT = 30.0
# Connections served at once by one server (one thread each); more are answered 503 at once.
MAX_CONNECTIONS = 100
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _content_length(headers: Message) -> int:
    """The declared body length; -1 when it is unusable (chunked or malformed)."""
    if "Transfer-Encoding" in headers:
        return -1
    value = headers.get("Content-Length", "0").strip()
    if not (value.isascii() and value.isdigit()):
        return -1
    return int(value) if len(value) <= 18 else _MAX_BODY + 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # Some Python versions turn SO_REUSEPORT on, which lets a second server share a fixed port.
    allow_reuse_port = False
    # socketserver listens with a backlog of 5: a burst of clients connecting at once (a
    # class of students, a load test) overflows it, and the kernel answers the excess with
    # SYN cookies, one-second retransmissions and connection resets.
    request_queue_size = 128

    def __init__(
        self,
        label: str,
        host: str,
        port: int,
        handler: type[BaseHTTPRequestHandler],
    ) -> None:
        self.label = label
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
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
        if not self._slots.acquire(blocking=False):
            _refuse(sock)
            return
        with self._open_lock:
            self._open.add(sock)
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: give the slot back
            self.shutdown_request(sock)
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            with self._open_lock:
                self._open.discard(request)
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


def _refuse(sock: socket.socket) -> None:
    """Answer a connection over the limit with 503 and close it, without blocking accept()."""
    with contextlib.suppress(OSError):
        sock.setblocking(False)
        sock.send(_BUSY)
    sock.close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
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
        """Close after an early answer, letting the client finish sending its body (≤ 1 s).

        Closing with unread data sends a reset, and a client still uploading would see the
        reset instead of the answer.
        """
        self.close_connection = True
        deadline = time.monotonic() + 1.0
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
            self.connection.settimeout(1.0)
            while time.monotonic() < deadline and self.connection.recv(65536):
                pass
