"""A service to put behind a guard in the tests: echo, big bodies, server-sent events, a
WebSocket echo, its own cookies and redirects, and a log of the requests it received.

Run as ``python tests/guard_service.py [PORT]``: it listens on that loopback port (by default
a free one) and prints it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from typing import Any

from tornado import web, websocket
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

SEEN: list[str] = []  # "METHOD /path" of every request but /log
RELEASES: dict[str, asyncio.Event] = {}


class Base(web.RequestHandler):
    def prepare(self) -> None:
        if self.request.path != "/log":
            SEEN.append(f"{self.request.method} {self.request.path}")


@web.stream_request_body
class Echo(Base):
    """What the service saw of a request; the body is counted and hashed, not kept."""

    SUPPORTED_METHODS = (*web.RequestHandler.SUPPORTED_METHODS, "PROPFIND")

    def prepare(self) -> None:
        super().prepare()
        self.request.connection.set_max_body_size(2**40)  # type: ignore[union-attr]
        self.length = 0
        self.digest = hashlib.sha256()

    def data_received(self, chunk: bytes) -> None:
        self.length += len(chunk)
        self.digest.update(chunk)

    def answer(self) -> None:
        headers: dict[str, list[str]] = {}
        for name, value in self.request.headers.get_all():
            headers.setdefault(name.lower(), []).append(value)
        self.set_header("Content-Type", "application/json")
        self.set_header("X-Scnet-Guard", "forged-by-the-service")
        body = {
            "method": self.request.method,
            "uri": self.request.uri,
            "headers": headers,
            "body_length": self.length,
            "body_sha256": self.digest.hexdigest(),
        }
        self.finish(json.dumps(body))

    get = post = put = delete = patch = options = answer

    def propfind(self) -> None:
        self.answer()


class Big(Base):
    """``size`` bytes, made as they are sent; with ``?chunked=1`` without a Content-Length."""

    async def get(self, size: str) -> None:
        remaining = int(size)
        if not self.get_query_argument("chunked", ""):
            self.set_header("Content-Length", str(remaining))
        self.set_header("Content-Type", "application/octet-stream")
        block = b"x" * (1 << 20)
        while remaining > 0:
            self.write(block[: min(remaining, len(block))])
            remaining -= min(remaining, len(block))
            await self.flush()

    def head(self, size: str) -> None:
        self.set_header("Content-Length", size)
        self.finish()


class Cut(Base):
    """Announces 1000 bytes (or a chunked body), sends 10, and drops the connection; with
    ``?sent=N``, announces twice N and drops the connection after N."""

    async def get(self) -> None:
        sent = int(self.get_query_argument("sent", "0"))
        if not self.get_query_argument("chunked", ""):
            self.set_header("Content-Length", str(2 * sent if sent else 1000))
        self.write(b"x" * sent if sent else b"0123456789")
        await self.flush()
        assert self.request.connection is not None
        self.request.connection.stream.close()  # type: ignore[attr-defined]


class Events(Base):
    """One event, then (once /release/<key> is called) a second one, then the end."""

    async def get(self, key: str) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.write("data: first\n\n")
        await self.flush()
        await RELEASES.setdefault(key, asyncio.Event()).wait()
        self.write("data: second\n\n")
        self.finish()


class Release(Base):
    def get(self, key: str) -> None:
        RELEASES.setdefault(key, asyncio.Event()).set()
        self.finish("released")


class Redirect(Base):
    def get(self) -> None:
        self.add_header("Set-Cookie", "service_session=abc; Path=/; HttpOnly")
        self.redirect("/elsewhere?from=service", status=302)


class Status(Base):
    def get(self, code: str) -> None:
        self.set_status(int(code))
        self.finish()


class Log(web.RequestHandler):
    def get(self) -> None:
        self.finish(json.dumps(SEEN))


class Echoes(websocket.WebSocketHandler):
    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        return subprotocols[0] if subprotocols else None

    def open(self, *args: Any, **kwargs: Any) -> None:
        SEEN.append(f"WEBSOCKET {self.request.path}")
        seen = {
            "cookie": self.request.headers.get("Cookie"),
            "authorization": self.request.headers.get("Authorization"),
            "subprotocol": self.selected_subprotocol,
        }
        self.write_message(json.dumps(seen))
        if size := self.get_query_argument("send", ""):  # a message of the service's own
            self.write_message(bytes(int(size)), binary=True)

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


def make_app() -> web.Application:
    return web.Application(
        [
            (r"/big/(\d+)", Big),
            (r"/sse/(\w+)", Events),
            (r"/release/(\w+)", Release),
            (r"/redirect", Redirect),
            (r"/status/(\d+)", Status),
            (r"/log", Log),
            (r"/cut", Cut),
            (r"/ws", Echoes),
            (r"/.*", Echo),
        ],
        websocket_max_message_size=2**30,  # what a guard lets through is the guard's to limit
    )


async def main() -> None:
    sockets = bind_sockets(int(sys.argv[1]) if len(sys.argv) > 1 else 0, "127.0.0.1")
    server = HTTPServer(make_app(), max_body_size=2**40)
    server.add_sockets(sockets)
    print(sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
