"""A local stand-in for the SCNet notebook OpenAPI, on loopback.

Used by the test suite, the example notebooks and anyone without an account::

    python -m scnet_magic.sandbox [--execute] [--port N] [--host H]

By default the start endpoint answers like the platform's documented example (nothing runs).
With ``execute=True`` it runs the start command with ``/bin/sh`` in a work directory and gives
each started (notebook, port) a small reverse proxy ("gateway") that plays the external URL.
``Sandbox.fault`` makes the start endpoint misbehave in the ways a client must survive.

It also plays the login address for one account (``user``, ``access_key``, ``secret_key``):
the signed token endpoint, renewal, token state and region discovery, whose addresses lead back
to the sandbox itself. ``suspended``, ``addresses_enabled`` and ``clock_skew`` play an account
with no tokens, a region with no enabled address, and a clock that is off.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from ..i18n import _

__all__ = ["FAULTS", "RecordedRequest", "Sandbox", "main"]

logger = logging.getLogger("scnet_magic.sandbox")

_API = "/ai/openapi/v2/notebook"
_START = f"{_API}/customize-service/actions/start"
_SERVICE_URL = f"{_API}/customize-service/url"
_NOTEBOOK_URL = f"{_API}/url"
_LIST = f"{_API}/list"
# The account endpoints: sign-in, renewal, state and region discovery.
_TOKENS = "/api/user/v3/tokens"
_RENEW = "/ac/openapi/v2/tokens/next"
_STATE = "/ac/openapi/v2/tokens/state"
_CENTER = "/ac/openapi/v2/center"
_METHODS = {
    _START: "POST",
    _SERVICE_URL: "GET",
    _NOTEBOOK_URL: "GET",
    _LIST: "GET",
    _TOKENS: "POST",
    _RENEW: "POST",
    _STATE: "GET",
    _CENTER: "GET",
}
# The token endpoint's regions: (clusterId, clusterName). "0" is the platform-level entry.
_PLATFORM = ("0", "平台")
_REGIONS = (
    ("11250", "华东一区【昆山】"),
    ("11276", "西北一区【西安】"),
    ("11300", "华中一区【郑州】"),
)
_DEFAULT_REGION = "11250"  # the region of the sandbox's own token
_CLOSED_REGION = "11300"  # the account is not opened there: its token is null
# How far a signed timestamp may be from the server's clock.
_MAX_CLOCK_SKEW = 300

_JSON = "application/json; charset=utf-8"
_TEXT = "text/plain; charset=utf-8"
_HTML = "text/html"
_MAX_BODY = 1024 * 1024
_OUTPUT_LIMIT = 64 * 1024
_HUGE_SIZE = 10 * 1024 * 1024
# Requests through a gateway may be slow on purpose (image generation takes minutes).
_UPSTREAM_TIMEOUT = 600.0

_PENDING_MSG = (
    "根据您提供的端口,未检测到可用的服务。若您的服务为特定的API接口,"
    "系统将自动建立通路,对应的外部地址为:"
)
_STATUSES = ("Creating", "Restarting", "Running", "Terminated", "Failed", "Shutting")
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)


def _nginx_page(status: str) -> bytes:
    return (
        f"<html>\r\n<head><title>{status}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


_BAD_GATEWAY_PAGE = _nginx_page("502 Bad Gateway")


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


# Start-endpoint faults that always give the same answer: (HTTP status, content type, body).
_FIXED_FAULTS: dict[str, tuple[int, str, bytes]] = {
    "html502": (502, _HTML, _BAD_GATEWAY_PAGE),
    "401-json": (401, _JSON, _json_bytes({"code": "10008", "msg": "权限不足", "data": None})),
    "403-json": (403, _JSON, _json_bytes({"code": "10008", "msg": "权限不足", "data": None})),
    "500-json": (500, _JSON, _json_bytes({"code": "10001", "msg": "内部错误", "data": None})),
    "401-plain": (401, _TEXT, b"401 Unauthorized\n"),
    "403-plain": (403, _HTML, _nginx_page("403 Forbidden")),
    "500-plain": (500, _TEXT, b"500 Internal Server Error\n"),
}
FAULTS: frozenset[str] = frozenset(_FIXED_FAULTS) | {
    "truncated",
    "data-null",
    "data-list",
    "code-missing",
    "code-int",
    "exec-string",
    "huge",
    "slow-headers",
    "trickle",
    "reset",
    "drop",
    "redirect-http",
    "redirect-loop",
}


def _notebook_records() -> tuple[dict[str, str], ...]:
    named = [
        ("1896050410550136833", "sdxl-webui", "Running"),
        ("1896476639463936002", "llm-api", "Running"),
        ("1896050410550136834", "old-experiment", "Terminated"),
    ]
    mix = ("Running", "Terminated", "Creating", "Failed", "Shutting", "Terminated")
    named += [
        (str(1897000000000000000 + 7919 * i), f"demo-{i:02d}", mix[i % len(mix)])
        for i in range(4, 26)
    ]
    return tuple(
        {
            "id": nid,
            "notebookName": name,
            "notebookStatus": status,
            "createTime": f"2025-03-{1 + i % 28:02d} 10:{i:02d}:17",
            "imageName": "jupyterlab-pytorch:2.1.0-ubuntu20.04-dtk24.04.1-py3.10",
            "resourceGroup": "kshdnormal",
            "acceleratorType": "DCU",
            "acceleratorNumber": "1",
        }
        for i, (nid, name, status) in enumerate(named)
    )


_NOTEBOOKS = _notebook_records()
_BY_ID = {record["id"]: record for record in _NOTEBOOKS}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the sandbox received it, with the ``token`` header redacted."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: object


class _ApiError(Exception):
    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def _envelope(code: str, msg: str, data: object = None) -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


def _make_token() -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = b64(b'{"alg":"HS256","typ":"JWT"}')
    claims = {"sub": "scnet-sandbox", "jti": secrets.token_hex(8), "iat": int(time.time())}
    payload = b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{payload}.{b64(secrets.token_bytes(32))}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _content_length(headers: Message) -> int:
    """The declared body length; -1 when it is unusable (chunked or malformed)."""
    if "Transfer-Encoding" in headers:
        return -1
    value = headers.get("Content-Length", "0").strip()
    if not (value.isascii() and value.isdigit()):
        return -1
    return int(value) if len(value) <= 18 else _MAX_BODY + 1


def _connection_tokens(value: str | None) -> frozenset[str]:
    return frozenset(t.strip().lower() for t in (value or "").split(",") if t.strip())


def _parse_body(raw: bytes) -> object:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _notebook(value: object, field: str) -> dict[str, str]:
    if value is None or value == "":
        raise _ApiError("10003", "参数不全")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not (isinstance(value, str) and value.isascii() and value.isdigit()):
        raise _ApiError("10004", f"参数无效: {field}")
    record = _BY_ID.get(value)
    if record is None:
        raise _ApiError("10004", f"参数无效: Notebook实例不存在({value})")
    return record


def _port(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 5:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise _ApiError("10004", "参数无效: customizePort")
    return value


def _int_param(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    value = query.get(name, "")
    if value == "":
        return default
    if not (value.isascii() and value.isdigit() and len(value) <= 9 and low <= int(value) <= high):
        raise _ApiError("10004", f"参数无效: {name}")
    return int(value)


def _tail(path: Path) -> str:
    # The end of a start-up log is where the reason for a failure usually is.
    with open(path, "rb") as log:
        size = log.seek(0, os.SEEK_END)
        log.seek(max(0, size - _OUTPUT_LIMIT))
        return log.read(_OUTPUT_LIMIT).decode("utf-8", "replace")


def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
    proc.poll()  # reaps our own child, which would otherwise stay in the group as a zombie
    try:
        os.killpg(proc.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # Where PID 1 does not reap orphans, members that died stay in the group as zombies.
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return True
    for stat in proc_dir.glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp = stat.read_text().rpartition(")")[2].split()[:3]
        except (OSError, ValueError):
            continue
        if pgrp == str(proc.pid) and state not in ("Z", "X"):
            return True
    return False


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _terminate(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        _killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 3.0
    for proc in procs:
        while _group_alive(proc) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_alive(proc):
            _killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)


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
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.label = label
        self.tls = tls
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__((host, port), handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host up with getfqdn, which can stall on reverse DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            # The handshake happens in the worker thread so a silent client cannot block accept().
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        if isinstance(request, socket.socket):
            with self._open_lock:
                self._open.add(request)
        super().process_request(request, client_address)

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
        with self._open_lock:
            conns = list(self._open)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Without it every keep-alive answer waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server_version = "scnet-sandbox"

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

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

    def _abort(self) -> None:
        """Close with a TCP reset (SO_LINGER 0) instead of an orderly FIN."""
        self.close_connection = True
        self.wfile.flush()
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The buffered files hold references that would keep the socket open.
        self.rfile.close()
        self.wfile.close()
        self.connection.close()

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


class _ApiServer(_Server):
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        super().__init__("api", sandbox.host, sandbox.port, _ApiHandler, sandbox.tls)


class _ApiHandler(_Handler):
    server: _ApiServer

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_OPTIONS = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _send_json(self, status: int, envelope: dict[str, Any], **kwargs: Any) -> None:
        self._send(status, _json_bytes(envelope), _JSON, **kwargs)

    def _handle(self) -> None:
        sandbox = self.server.sandbox
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        length = _content_length(self.headers)
        raw = self.rfile.read(length) if 0 < length <= _MAX_BODY else b""
        headers = {
            name: "<redacted>" if name.lower() == "token" else value
            for name, value in self.headers.items()
        }
        body = _parse_body(raw)
        sandbox._record(RecordedRequest(self.command, url.path, query, headers, body))

        if length < 0:
            envelope = _envelope("10004", "参数无效: 请求体需要Content-Length")
            self._send_json(400, envelope, close=True)
            self._discard_rest()
            return
        if length > _MAX_BODY:
            self._send_json(413, _envelope("10011", "文件过大"), close=True)
            self._discard_rest()
            return
        method = _METHODS.get(url.path)
        if method is None:
            self._send_json(404, _envelope("10001", f"接口不存在: {url.path}"))
            return
        if self.command != method:
            envelope = _envelope("10001", f"请求方法不支持: {self.command}")
            self._send_json(405, envelope, headers=[("Allow", method)])
            return

        if sandbox.delay > 0:
            time.sleep(sandbox.delay)
        fault = sandbox.fault
        token = self.headers.get("token")
        if url.path == _TOKENS:
            self._send_json(200, sandbox._issue_tokens(self.headers))
            return
        if fault is not None and url.path == _START:
            self._fault(fault, token, query, body)
            return
        self._send_json(200, sandbox._answer(url.path, token, query, body, sandbox.execute))

    def _fault(self, fault: str, token: str | None, query: dict[str, str], body: object) -> None:
        sandbox = self.server.sandbox
        if fault in _FIXED_FAULTS:
            status, content_type, page = _FIXED_FAULTS[fault]
            self._send(status, page, content_type)
            return
        if fault == "drop":
            self.log_request("-")
            self.close_connection = True
            return
        if fault in ("redirect-http", "redirect-loop"):
            target = "http://example.invalid" + _START
            if fault == "redirect-loop":
                target = sandbox.base_url + self.path
            self._send(307, b"", _TEXT, headers=[("Location", target)])
            return
        if fault == "huge":
            self._send_huge()
            return
        if fault == "reset":
            self.send_response(200)
            self.send_header("Content-Type", _JSON)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"code": "0", "msg"'[:10])
            self._abort()
            return

        if fault == "slow-headers":
            time.sleep(sandbox.fault_delay)
        envelope = sandbox._answer(_START, token, query, body, run=False)
        data = envelope["data"]
        if fault == "data-null":
            envelope["data"] = None
        elif fault == "data-list":
            envelope["data"] = [data]
        elif fault == "code-missing":
            del envelope["code"]
        elif fault == "code-int":
            envelope["code"] = int(envelope["code"])
        elif fault == "exec-string" and isinstance(data, dict):
            data["execSuccess"] = str(data["execSuccess"]).lower()
        payload = _json_bytes(envelope)
        if fault == "truncated":
            payload = payload[:-1]
        if fault != "trickle":
            self._send(200, payload, _JSON)
            return
        self.send_response(200)
        self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        sent, deadline = 0, time.monotonic() + sandbox.fault_delay
        while sent < len(payload) and time.monotonic() < deadline:
            self.wfile.write(payload[sent : sent + 1])
            sent += 1
            time.sleep(0.2)
        self.wfile.write(payload[sent:])

    def _send_huge(self) -> None:
        head = b'{"code": "0", "msg": "'
        self.send_response(200)
        self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(_HUGE_SIZE))
        self.end_headers()
        self.wfile.write(head)
        filler = b"x" * 65536
        remaining = _HUGE_SIZE - len(head)
        while remaining > 0:
            chunk = filler[:remaining]
            self.wfile.write(chunk)
            remaining -= len(chunk)


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
        dropped = _HOP_BY_HOP | _connection_tokens(self.headers.get("Connection"))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
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
            self._relay(response)
        finally:
            upstream.close()

    def _relay(self, response: http.client.HTTPResponse) -> None:
        dropped = _HOP_BY_HOP | _connection_tokens(response.getheader("Connection"))
        bodyless = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
        # Without a length the upstream streams (server-sent events, for one): keep streaming.
        chunked = not bodyless and response.getheader("Content-Length") is None
        self.send_response_only(response.status, response.reason)
        self.log_request(response.status)
        for name, value in response.getheaders():
            if name.lower() not in dropped:
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


class Sandbox:
    """A local server speaking the SCNet notebook OpenAPI (see the module docstring)."""

    notebook_id = _NOTEBOOKS[0]["id"]

    def __init__(
        self,
        *,
        execute: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        workdir: str | os.PathLike[str] | None = None,
        ready_timeout: float = 5.0,
        tls: ssl.SSLContext | None = None,
        user: str = "sandbox-user",
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        self.execute = execute
        # The one account that can sign in, with its access key pair.
        self.user = user
        self.access_key = access_key if access_key is not None else "AK" + secrets.token_hex(12)
        self.secret_key = secret_key if secret_key is not None else secrets.token_urlsafe(24)
        # Sign-in scenarios: every region token null; no enabled address; the server's clock
        # this many seconds ahead of the real time.
        self.suspended = False
        self.addresses_enabled = True
        self.clock_skew = 0.0
        self._issued: dict[str, str] = {}  # token -> region id, for tokens the sandbox handed out
        self.host = host
        self.port = port
        self.token = token if token is not None else _make_token()
        self.workdir = Path(workdir) if workdir is not None else None
        self.ready_timeout = ready_timeout
        self.tls = tls
        self.delay = 0.0
        self.fault_delay = 5.0
        self.requests: list[RecordedRequest] = []
        self._fault: str | None = None
        self._lock = threading.Lock()
        self._server: _ApiServer | None = None
        self._stopped = False
        self._own_workdir = False
        # Service logs go to a folder of the sandbox's own, so that a workdir the user gave
        # (the notebook's folder) is not filled with them.
        self._logdir: Path | None = None
        self._gateways: dict[tuple[str, int], _GatewayServer] = {}
        self._services: dict[str, int] = {}
        self._procs: list[subprocess.Popen[bytes]] = []
        self._runs = 0

    @property
    def fault(self) -> str | None:
        """Misbehaviour of the start endpoint (one of ``FAULTS``), or None to behave."""
        return self._fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        if value is not None and value not in FAULTS:
            raise ValueError(f"unknown fault {value!r}; known: {', '.join(sorted(FAULTS))}")
        self._fault = value

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        # A wildcard address is not one to connect to.
        connectable = {"0.0.0.0": "127.0.0.1", "::": "::1", "localhost": "127.0.0.1"}
        host = connectable.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self.tls else 'http'}://{host}:{self._server.server_port}"

    def start(self) -> Sandbox:
        with self._lock:
            if self._server is not None or self._stopped:
                raise RuntimeError("a sandbox can be started only once")
        if not _is_loopback(self.host):
            warnings.warn(
                f"the SCNet sandbox listens on {self.host!r}: it is reachable from other machines",
                stacklevel=2,
            )
        server = _ApiServer(self)
        if self.execute and self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="scnet-sandbox-"))
            self._own_workdir = True
        if self.execute:
            self._logdir = Path(tempfile.mkdtemp(prefix="scnet-sandbox-logs-"))
        server.serve_in_background()
        self._server = server
        atexit.register(self.stop)
        logger.info("listening on %s (execute=%s)", self.base_url, self.execute)
        return self

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            servers: list[_Server] = [*self._gateways.values()]
            if self._server is not None:
                servers.append(self._server)
            procs = list(self._procs)
        atexit.unregister(self.stop)
        for server in servers:
            server.close()
        _terminate(procs)
        if self._own_workdir and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self._logdir is not None:
            shutil.rmtree(self._logdir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == _START]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def external_url(self, notebook_id: str, port: int) -> str:
        """The address the platform would give for a service on ``port`` of the notebook."""
        if not self.execute:
            return f"https://c-{notebook_id}.ksai.scnet.cn:58043"
        with self._lock:
            if self._stopped:
                raise RuntimeError("the sandbox is stopped")
            gateway = self._gateways.get((notebook_id, port))
            if gateway is None:
                gateway = _GatewayServer(notebook_id, port)
                gateway.serve_in_background()
                self._gateways[notebook_id, port] = gateway
        return f"http://127.0.0.1:{gateway.server_port}/"

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def accepts_token(self, token: str | None) -> bool:
        """Whether the API takes ``token``: the sandbox's own, or an issued one not yet renewed."""
        if token is None:
            return False
        with self._lock:
            valid = [self.token, *self._issued]
        # Every candidate is compared, so the time taken does not tell which one nearly matched.
        return sum(hmac.compare_digest(token.encode(), t.encode()) for t in valid) > 0

    def _answer(
        self, path: str, token: str | None, query: dict[str, str], body: object, run: bool
    ) -> dict[str, Any]:
        """The envelope for an API call that reached a known endpoint with the right method."""
        if token is None or not self.accepts_token(token):
            return _envelope("10009", "没有权限访问接口")
        valid_token = token
        endpoints: dict[str, Callable[[], object]] = {
            _START: lambda: self._start_service(body, run),
            _SERVICE_URL: lambda: self._service_url(query),
            _NOTEBOOK_URL: lambda: self._notebook_url(query),
            _LIST: lambda: self._list(query),
            _RENEW: lambda: self._renew(valid_token),
            _STATE: lambda: "token is valid",
            _CENTER: lambda: self._center(valid_token),
        }
        try:
            return _envelope("0", "success", endpoints[path]())
        except _ApiError as error:
            return _envelope(error.code, error.msg)

    # -- account endpoints -------------------------------------------------------------------

    def _issue_tokens(self, headers: Message) -> dict[str, Any]:
        """The token endpoint: check the signed headers, then one token per region."""
        user, access_key, timestamp, signature = (
            headers.get(name, "").strip()
            for name in ("user", "accessKey", "timestamp", "signature")
        )
        if not (user and access_key and timestamp and signature):
            return _envelope("10003", "参数不全: user, accessKey, timestamp, signature")
        if user != self.user or not hmac.compare_digest(
            access_key.encode(), self.access_key.encode()
        ):
            return _envelope("10009", "没有权限访问接口: 用户或accessKey不存在")
        now = time.time() + self.clock_skew
        if not (timestamp.isascii() and timestamp.isdigit()) or (
            abs(now - int(timestamp)) > _MAX_CLOCK_SKEW
        ):
            return _envelope("10004", "参数无效: timestamp已过期，请校准系统时间")
        # Computed here on its own, not with the client's code, so that each checks the other.
        fields = {"accessKey": access_key, "timestamp": timestamp, "user": user}
        signed = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
        expected = hmac.new(self.secret_key.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return _envelope("10004", "参数无效: signature签名错误")
        data = []
        with self._lock:
            for region_id, name in (_PLATFORM, *_REGIONS):
                token = None
                if not self.suspended and region_id != _CLOSED_REGION:
                    token = _make_token()
                    self._issued[token] = region_id
                data.append({"clusterName": name, "clusterId": region_id, "token": token})
        return _envelope("0", "success", data)

    def _region_of(self, token: str) -> str:
        with self._lock:
            return self._issued.get(token, _DEFAULT_REGION)

    def _renew(self, token: str) -> str:
        """A new token for the same region; the old one stops working (the sandbox's own stays)."""
        new = _make_token()
        with self._lock:
            self._issued[new] = self._issued.pop(token, _DEFAULT_REGION)
        return new

    def _center(self, token: str) -> list[dict[str, Any]]:
        """Region discovery: the token's region, or every region for the platform-level token."""
        region_id = self._region_of(token)
        if region_id == _PLATFORM[0]:
            return [self._region_entry(other) for other, _name in _REGIONS]
        return [self._region_entry(region_id)]

    def _region_entry(self, region_id: str) -> dict[str, Any]:
        """Region discovery's entry: the notebook APIs (aiUrls) lead back to this sandbox."""
        name = dict(_REGIONS)[region_id]
        enabled = self.addresses_enabled
        if region_id == _DEFAULT_REGION:
            # Written with the trailing /ai that clients strip, as the platform does.
            ai_urls = [{"url": self.base_url + "/ai", "enable": enabled}]
        else:
            # A disabled address first, and the flag as text, as some answers carry it.
            ai_urls = [
                {"url": "https://xaai.scnet.cn:58043/ai", "enable": False},
                {"url": self.base_url + "/", "enable": "true" if enabled else "false"},
            ]
        return {
            "id": region_id,
            "name": name,
            "aiUrls": ai_urls,
            "hpcUrls": [{"url": "https://hpc.scnet.invalid:58043", "enable": True}],
            "efileUrls": [{"url": "https://efile.scnet.invalid:58043", "enable": True}],
        }

    def _start_service(self, body: object, run: bool) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _ApiError("10004", "参数无效: 请求体必须是JSON对象")
        if any(body.get(field) in (None, "") for field in ("id", "customizePort")):
            raise _ApiError("10003", "参数不全")
        record = _notebook(body["id"], "id")
        port = _port(body["customizePort"])
        command = body.get("command")
        if command is not None and not isinstance(command, str):
            raise _ApiError("10004", "参数无效: command")
        if record["notebookStatus"] != "Running":
            raise _ApiError("716866", f"Notebook实例未处于运行状态({record['notebookStatus']})")

        notebook_id = record["id"]
        with self._lock:
            self._services[notebook_id] = port
        pending = {
            "execSuccess": False,
            "errorMsg": _PENDING_MSG + self.external_url(notebook_id, port),
            "output": None,
        }
        if not run:
            return pending
        log = self._spawn(notebook_id, port, command) if command and command.strip() else None
        deadline = time.monotonic() + self.ready_timeout
        while not (ready := _accepts(port)) and time.monotonic() < deadline:
            time.sleep(0.1)
        output = _tail(log) if log is not None else None
        if ready:
            return {"execSuccess": True, "errorMsg": None, "output": output or ""}
        return {**pending, "output": output}

    def _spawn(self, notebook_id: str, port: int, command: str) -> Path:
        with self._lock:
            # Under the lock so that stop() either sees this process or refuses it.
            if self._stopped or self.workdir is None or self._logdir is None:
                raise _ApiError("10001", "内部错误: the sandbox is stopping")
            self._runs += 1
            log_path = self._logdir / f"service-{notebook_id}-{port}-{self._runs}.log"
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    ["/bin/sh", "-c", command],
                    cwd=self.workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self._procs.append(proc)
        logger.info("notebook %s port %d: started pid %d", notebook_id, port, proc.pid)
        return log_path

    def _service_url(self, query: dict[str, str]) -> dict[str, Any]:
        notebook_id = _notebook(query.get("notebookId"), "notebookId")["id"]
        with self._lock:
            port = self._services.get(notebook_id)
        if port is None:
            return {"status": "inactive", "url": None}
        active = self.execute and _accepts(port)
        return {
            "status": "active" if active else "inactive",
            "url": self.external_url(notebook_id, port),
        }

    def _notebook_url(self, query: dict[str, str]) -> dict[str, Any]:
        record = _notebook(query.get("notebookId"), "notebookId")
        return {
            "status": "active" if record["notebookStatus"] == "Running" else "inactive",
            "url": f"https://c-{record['id']}.ksai.scnet.cn:58043/jupyter/",
        }

    def _list(self, query: dict[str, str]) -> dict[str, Any]:
        status = query.get("notebookStatus") or None
        if status is not None and status not in _STATUSES:
            raise _ApiError("10004", "参数无效: notebookStatus")
        size = _int_param(query, "size", 20, 1, 100)
        page = _int_param(query, "page", 1, 1, 10**9)
        name = query.get("notebookName", "")
        hits = [
            record
            for record in _NOTEBOOKS
            if name in record["notebookName"]
            and (status is None or record["notebookStatus"] == status)
        ]
        return {"total": len(hits), "records": hits[(page - 1) * size : page * size]}


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scnet_magic.sandbox",
        description=_("Serve the SCNet notebook OpenAPI locally, for tests and demos."),
    )
    parser.add_argument(
        "--execute", action="store_true", help=_("really run start commands with /bin/sh")
    )
    parser.add_argument("--port", type=int, default=0, help=_("port to listen on (default: any)"))
    parser.add_argument("--host", default="127.0.0.1", help=_("address to listen on"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    sandbox = Sandbox(execute=args.execute, host=args.host, port=args.port)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        sandbox.start()
        print(f"export SCNET_BASE_URL={sandbox.base_url}")
        print(f"export SCNET_TOKEN={sandbox.token}")
        print(f"export SCNET_NOTEBOOK_ID={sandbox.notebook_id}")
        print("# " + _("or sign in with %scnet_login / scnet login:"))
        print(f"export SCNET_LOGIN_URL={sandbox.base_url}")
        print(f"export SCNET_USER={sandbox.user}")
        print(f"export SCNET_ACCESS_KEY={sandbox.access_key}")
        print(f"export SCNET_SECRET_KEY={sandbox.secret_key}")
        state = _("on") if args.execute else _("off (start answers like the documented example)")
        print(
            "# " + _("command execution is {state}. Press Ctrl-C to stop.").format(state=state),
            flush=True,
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    except OSError as error:
        print(
            _("cannot listen on {address}: {reason}").format(
                address=f"{args.host}:{args.port}", reason=error
            ),
            file=sys.stderr,
        )
        return 1
    finally:
        sandbox.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
