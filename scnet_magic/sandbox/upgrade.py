"""An upgraded connection through the gateway (a WebSocket): bytes both ways, as they come.

Once the service has answered an upgrade with ``101 Switching Protocols``, neither side speaks
HTTP on the connection any more: the gateway copies bytes between the client and the service
until either leaves, as the platform's gateway does for Gradio, ComfyUI or Jupyter.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading

_BLOCK = 65536


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
        while block := source.read1(_BLOCK):
            target.sendall(block)
    # The source closed (or failed): the target gets its end after all that was sent to it,
    # and the other direction, blocked reading the target or writing the source, wakes up and
    # ends too. Either side leaving ends the tunnel, as a WebSocket ends when either end goes.
    for sock in (target, source_socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
