"""The cheapest process that can stand between a visitor and a service: bytes copied from one
socket to the other, nothing read, checked or rewritten (no HTTP at all).

    python -m benchmarks.plain_relay TARGET_PORT

It listens on a free loopback port, prints it, and relays every connection to
``127.0.0.1:TARGET_PORT`` with one thread per direction. The guard benchmark measures it side
by side with the guard: what it costs is what any proxy costs on this machine (the extra
process, its two kernel copies of every byte, its wake-ups), so the guard's cost above it is
the part the guard's design could still win back.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading

BUFFER = 1024 * 1024


def pump(source: socket.socket, sink: socket.socket) -> None:
    buffer = memoryview(bytearray(BUFFER))
    with contextlib.suppress(OSError):  # either side went away: end both directions below
        while received := source.recv_into(buffer):
            sink.sendall(buffer[:received])
    for side in (source, sink):
        with contextlib.suppress(OSError):
            side.shutdown(socket.SHUT_RDWR)


def main(argv: list[str]) -> int:
    target = int(argv[0])
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    print(listener.getsockname()[1], flush=True)
    while True:
        visitor, _address = listener.accept()
        service = socket.create_connection(("127.0.0.1", target))
        for connection in (visitor, service):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=pump, args=(visitor, service), daemon=True).start()
        threading.Thread(target=pump, args=(service, visitor), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
