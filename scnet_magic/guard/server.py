"""The guard's HTTP server: tornado's, with bounds a public address needs.

- A visitor has IDLE_TIMEOUT seconds to send a request's head, and a kept-alive connection is
  closed after as long without a request: slow or silent connections are not held forever.
- At most ``max_connections`` at once (WebSockets included); beyond them a new connection is
  closed as soon as it is accepted, which costs the guard next to nothing.
- When the process runs out of file descriptors, accepting pauses a moment and says so in one
  log line a minute, instead of a traceback per turn of the event loop.
"""

from __future__ import annotations

import errno
import logging
import resource
import socket
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from tornado import iostream
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

log = logging.getLogger("scnet_magic.guard")

IDLE_TIMEOUT = 30.0
MAX_CONNECTIONS = 4000
# File descriptors kept for the rest: a connection to the service for each visitor's, the
# log, the listening sockets, scrypt's thread.
RESERVED_DESCRIPTORS = 64
ACCEPT_PAUSE = 0.5  # seconds without accepting once out of descriptors
REPORT_EVERY = 60.0  # seconds between two lines about it
ACCEPTS_PER_TURN = 128
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def connection_limit(wanted: int = MAX_CONNECTIONS) -> int:
    """``wanted``, or fewer where the process may not open enough descriptors: each visitor's
    connection may need one to the service too."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, (soft - RESERVED_DESCRIPTORS) // 2))


class GuardServer(HTTPServer):
    """An ``HTTPServer`` that caps its connections and accepts quietly when out of
    descriptors (see the module's documentation)."""

    def initialize(self, *args: Any, max_connections: int = MAX_CONNECTIONS, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.max_connections = max_connections
        self._streams: weakref.WeakSet[iostream.IOStream] = weakref.WeakSet()
        self._last_report = float("-inf")
        self._unreported = 0

    def open_connections(self) -> int:
        return sum(1 for stream in list(self._streams) if not stream.closed())

    def _at_the_cap(self) -> bool:
        # Streams that are gone leave the set with their last reference; only near the cap
        # is it worth counting which of the rest are still open.
        return (
            len(self._streams) >= self.max_connections
            and self.open_connections() >= self.max_connections
        )

    def handle_stream(self, stream: iostream.IOStream, address: tuple[Any, ...]) -> None:
        self._streams.add(stream)
        super().handle_stream(stream, address)

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_from(sock)

    def _accept_from(self, sock: socket.socket) -> Callable[[], None]:
        """Accept on ``sock`` as tornado's ``add_accept_handler`` does, with the bounds above;
        the callable returned stops it."""
        loop = IOLoop.current()
        state = {"listening": True, "stopped": False}

        def resume() -> None:
            if not state["stopped"] and not state["listening"]:
                loop.add_handler(sock, accept, IOLoop.READ)
                state["listening"] = True

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
                    state["listening"] = False
                    loop.call_later(ACCEPT_PAUSE, resume)
                    return
                if self._at_the_cap():
                    connection.close()  # beyond the cap: the cheapest answer there is
                    continue
                self._handle_connection(connection, address)

        def stop() -> None:
            state["stopped"] = True
            if state["listening"]:
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
