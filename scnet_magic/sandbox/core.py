"""``Sandbox``: the local SCNet platform, its lifecycle and its notebook endpoints."""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import guard, validation
from ..endpoints import BOOT, CENTER, DETAIL, LIST, RENEW, SERVICE_URL, START, STATE, STOP, TOKENS
from ..local import listening, tail
from .accounts import _Accounts
from .data import (
    _ENDPOINTS,
    _JSON,
    _MAX_BODY,
    _NOTEBOOK_URL,
    _NOTEBOOKS,
    _OUTPUT_LIMIT,
    _PENDING_MSG,
    _PLATFORM,
    _ROLES,
    _STATUSES,
    _ApiError,
    _envelope,
    _int_param,
    _json_bytes,
    _make_token,
    _notebook,
    _parse_body,
    _port,
    logger,
)
from .gateway import _GatewayServer
from .instances import _Instances
from .processes import Reaper, _terminate, command_environment
from .server import _content_length, _Handler, _Server


class Sandbox(_Accounts, _Instances):
    """A local server speaking the SCNet notebook OpenAPI (see the package docstring)."""

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
        user: str = "sandbox-user",
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        self.execute = execute
        # The one account that can sign in, with its access key pair.
        self.user = user
        self.access_key = access_key if access_key is not None else "AK" + secrets.token_hex(12)
        self.secret_key = secret_key if secret_key is not None else secrets.token_urlsafe(24)
        self._issued: dict[str, str] = {}  # token -> region id, for tokens the sandbox handed out
        self._replaced: set[str] = set()  # tokens renewal replaced: expired
        self.host = host
        self.port = port
        self.token = token if token is not None else _make_token()
        self.workdir = Path(workdir) if workdir is not None else None
        self.ready_timeout = ready_timeout
        self._lock = threading.Lock()
        # One server per host role: login, platform (/ac/) and the region's AI address.
        self._servers: dict[str, _ApiServer] = {}
        self._stopped = False
        # Service logs go to a folder of the sandbox's own, so that a workdir the user gave
        # (the notebook's folder) is not filled with them.
        self._logdir: Path | None = None
        self._gateways: dict[tuple[str, int], _GatewayServer] = {}
        self._services: dict[str, int] = {}
        self._names: bool | None = None  # whether instance URLs use c-<id>.localhost
        self._reaper = Reaper()
        self._init_instances()
        self._runs = 0

    @property
    def base_url(self) -> str:
        """The region's AI address: the notebook APIs (``/ai/...``)."""
        return self._url("ai")

    @property
    def login_url(self) -> str:
        """The login host: the signed token request (``/api/user/v3/tokens``)."""
        return self._url("login")

    @property
    def ac_url(self) -> str:
        """The platform host: region discovery, renewal and the token check (``/ac/...``)."""
        return self._url("platform")

    def _url(self, role: str) -> str:
        server = self._servers.get(role)
        if server is None:
            raise RuntimeError("the sandbox is not started")
        # A wildcard address is not one to connect to.
        connectable = {"0.0.0.0": "127.0.0.1", "::": "::1", "localhost": "127.0.0.1"}
        host = connectable.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{server.server_port}"

    def start(self) -> Sandbox:
        with self._lock:
            if self._servers or self._stopped:
                raise RuntimeError("a sandbox can be started only once")
        if not validation.is_loopback_host(self.host):
            warnings.warn(
                f"the SCNet sandbox listens on {self.host!r}: it is reachable from other machines",
                stacklevel=2,
            )
        # ``port`` is the AI address's, the one users point SCNET_BASE_URL at; the login and
        # platform hosts take any free port.
        servers = {}
        try:
            for role in _ROLES.values():
                servers[role] = _ApiServer(self, role, self.port if role == "ai" else 0)
        except OSError:
            for opened in servers.values():
                opened.server_close()
            raise
        if self.execute and self.workdir is None:
            # One rule wherever it is started from: commands run in the folder the user
            # started the sandbox from, as the README's relative paths expect.
            self.workdir = Path.cwd()
        if self.execute:
            self._logdir = Path(tempfile.mkdtemp(prefix="scnet-sandbox-logs-"))
        for server in servers.values():
            server.serve_in_background()
        self._servers = servers
        atexit.register(self.stop)
        logger.info(
            "listening on %s (login %s, platform %s, execute=%s)",
            self.base_url,
            self.login_url,
            self.ac_url,
            self.execute,
        )
        return self

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            servers: list[_Server] = [*self._gateways.values(), *self._servers.values()]
            # Those of stopped instances have ended already.
            procs = [proc for state in self._states.values() for proc in state.procs]
        atexit.unregister(self.stop)
        # The guards started for its services end with them (all those of this process: two
        # sandboxes at once in one process are not told apart).
        with contextlib.suppress(guard.GuardError, OSError):
            guard.stop_guards_ending_with(os.getpid())
        # Together: each waits up to a poll interval for its loop to notice.
        closing = [threading.Thread(target=server.close) for server in servers]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join()
        _terminate(procs)
        self._reaper.close()
        if self._logdir is not None:
            shutil.rmtree(self._logdir, ignore_errors=True)

    def __repr__(self) -> str:
        # What a notebook shows for ``%scnet_sandbox``'s value: where it is, never the token
        # or the keys.
        if self._stopped:
            state = "stopped"
        elif not self._servers:
            state = "not started"
        else:
            state = f"running at {self.base_url}"
        return (
            f"<SCNet sandbox {state}, notebook {self.notebook_id}, "
            f"execution {'on' if self.execute else 'off'}>"
        )

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def external_url(self, notebook_id: str, port: int) -> str:
        """The address the platform would give for a service on ``port`` of the notebook."""
        if not self.execute:
            return f"https://c-{notebook_id}.ksai.scnet.cn:58043"
        with self._lock:
            if self._stopped:
                raise RuntimeError("the sandbox is stopped")
            gateway = self._gateways.get((notebook_id, port))
            if gateway is None:
                gateway = _GatewayServer(notebook_id, self._gateway_port(port))
                gateway.serve_in_background()
                self._gateways[notebook_id, port] = gateway
        if self._names is None:  # looked up once: a resolver without DNS may take seconds
            self._names = _resolves_to_loopback("c-0.localhost")
        host = f"c-{notebook_id}.localhost" if self._names else "127.0.0.1"
        return f"http://{host}:{gateway.server_port}/"

    # -- hooks: what a subclass may change (the tests' fault injection does) ----------------

    def _gateway_port(self, port: int) -> int:
        """The port a service's gateway forwards to: the service's own, on this machine."""
        return port

    def _received(self, handler: _ApiHandler, body: object) -> None:
        """Every API call, once its body is read (None when it was refused unread).

        The sandbox keeps nothing per call: it runs in the user's kernel, where a record
        would grow with every request anyone sends to it.
        """

    def _override(
        self, handler: _ApiHandler, path: str, token: str, query: dict[str, str], body: object
    ) -> bool:
        """Answer an accepted call otherwise than the platform would; True when it did."""
        return False

    # -- the platform's answers ----------------------------------------------------------

    def _refusal(self, token: str) -> dict[str, Any] | None:
        """The envelope refusing a call's token ("" for none), or None when it is accepted."""
        if self.accepts_token(token):
            return None
        if self.expired(token):
            # scnet-api.md's error table: third-party clients report 10008 for an expired
            # token; 10009 for a token the platform does not know.
            return _envelope("10008", "权限不足")
        return _envelope("10009", "没有权限访问接口")

    def _answer(
        self, path: str, token: str, query: dict[str, str], body: object, run: bool
    ) -> dict[str, Any]:
        """The envelope for an API call that reached a known endpoint with the right method
        and an accepted token."""
        if self._region_of(token) == _PLATFORM[0]:
            # The platform's own token is not a region's: the platform host answers it with
            # an internal error (field notes on the real center call), a region refuses it.
            if path.startswith("/ac/"):
                return _envelope("10001", "内部错误")
            return _envelope("10009", "没有权限访问接口")
        valid_token = token
        endpoints: dict[str, Callable[[], object]] = {
            START.path: lambda: self._start_service(body, run),
            SERVICE_URL.path: lambda: self._service_url(query),
            _NOTEBOOK_URL.path: lambda: self._notebook_url(query),
            LIST.path: lambda: self._list(query),
            DETAIL.path: lambda: self._detail(query),
            BOOT.path: lambda: self._boot(body),
            STOP.path: lambda: self._stop_instance(body),
            RENEW.path: lambda: self._renew(valid_token),
            STATE.path: lambda: "token is valid",
            CENTER.path: lambda: self._center(valid_token),
        }
        try:
            return _envelope("0", "success", endpoints[path]())
        except _ApiError as error:
            return _envelope(error.code, error.msg)

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
        self._check_running(record)

        notebook_id = record["id"]
        self._configure(notebook_id, port, command)
        pending = {
            "execSuccess": False,
            "errorMsg": _PENDING_MSG + self.external_url(notebook_id, port),
            "output": None,
        }
        if not run:
            return pending
        log, proc = (
            self._spawn(notebook_id, port, command) if command and command.strip() else (None, None)
        )
        deadline = time.monotonic() + self.ready_timeout
        # A command that has ended will not start listening: its output is complete, answer now.
        while not (ready := listening(port)) and time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.1)
        output = tail(log, _OUTPUT_LIMIT) if log is not None else None
        if ready:
            return {"execSuccess": True, "errorMsg": None, "output": output or ""}
        return {**pending, "output": output}

    def _spawn(
        self, notebook_id: str, port: int, command: str
    ) -> tuple[Path, subprocess.Popen[bytes]]:
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
                    env=command_environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self._reaper.watch(proc.pid)  # its group: start_new_session made pid the pgid
            self._states[notebook_id].procs.append(proc)  # it ends when the instance stops
        logger.info("notebook %s port %d: started pid %d", notebook_id, port, proc.pid)
        return log_path, proc

    def _service_url(self, query: dict[str, str]) -> dict[str, Any]:
        notebook_id = _notebook(query.get("notebookId"), "notebookId")["id"]
        with self._lock:
            port = self._services.get(notebook_id)
        if port is None:
            return {"status": "inactive", "url": None}
        active = self.execute and listening(port)
        return {
            "status": "active" if active else "inactive",
            "url": self.external_url(notebook_id, port),
        }

    def _notebook_url(self, query: dict[str, str]) -> dict[str, Any]:
        record = _notebook(query.get("notebookId"), "notebookId")
        return {
            "status": "active" if record["notebookStatus"] == "Running" else "inactive",
            # The instance's Jupyter is n-<id>, beside the custom service's c-<id> (scnet-api.md
            # section 6, from field notes of the real platform).
            "url": f"https://n-{record['id']}.ksai.scnet.cn:58043/jupyter/",
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
            for record in map(self._live, _NOTEBOOKS)
            if name in record["notebookName"]
            and (status is None or record["notebookStatus"] == status)
        ]
        return {"total": len(hits), "records": hits[(page - 1) * size : page * size]}


class _ApiServer(_Server):
    def __init__(self, sandbox: Sandbox, role: str, port: int = 0) -> None:
        self.sandbox = sandbox
        self.role = role
        super().__init__(role, sandbox.host, port, _ApiHandler)


class _ApiHandler(_Handler):
    server: _ApiServer

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_OPTIONS = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def send_json(self, status: int, envelope: object, **kwargs: Any) -> None:
        self._send(status, _json_bytes(envelope), _JSON, **kwargs)

    def _handle(self) -> None:
        sandbox = self.server.sandbox
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        token = self.headers.get("token", "")
        length = _content_length(self.headers)
        early = self._early_answer(url.path, length, token)
        # The body is read only for a call that gets this far: a caller without a valid token
        # cannot make the sandbox read, parse or keep anything it sends.
        body = None
        if early is None and length > 0:
            body = _parse_body(self.rfile.read(length))
        sandbox._received(self, body)
        if early is not None:
            status, envelope, headers = early
            unread = length != 0
            self.send_json(status, envelope, headers=headers, close=unread)
            if unread:
                self._discard_rest()
            return
        if sandbox._override(self, url.path, token, query, body):
            return
        if url.path == TOKENS.path:
            self.send_json(200, sandbox._issue_tokens(self.headers))
            return
        self.send_json(200, sandbox._answer(url.path, token, query, body, sandbox.execute))

    def _early_answer(
        self, path: str, length: int, token: str
    ) -> tuple[int, dict[str, Any], list[tuple[str, str]]] | None:
        """The answer to a call refused before its body is read: (status, envelope, headers)."""
        if length < 0:
            return 400, _envelope("10004", "参数无效: 请求体需要Content-Length"), []
        if length > _MAX_BODY:
            return 413, _envelope("10011", "文件过大"), []
        endpoint = _ENDPOINTS.get(path)
        # Another host's endpoint is as unknown here as on the real platform: a /ac/ call sent
        # to the login host, or a notebook call sent to the platform host, finds nothing.
        if endpoint is None or _ROLES[endpoint.host] != self.server.role:
            return 404, _envelope("10001", f"接口不存在: {path}"), []
        if self.command != endpoint.method:
            allow = [("Allow", endpoint.method)]
            return 405, _envelope("10001", f"请求方法不支持: {self.command}"), allow
        if path == TOKENS.path:  # sign-in: signed headers, no token
            return None
        refusal = self.server.sandbox._refusal(token)
        return None if refusal is None else (200, refusal, [])


def _resolves_to_loopback(name: str) -> bool:
    """Whether this machine's resolver gives loopback for ``name``.

    An instance's external URL has a host of its own, as on the platform, so that a browser
    signed in to one protected service stays signed in to another (cookies ignore ports, not
    hosts). ``c-<id>.localhost`` is loopback for browsers and curl, but for this machine's
    other programs only where its resolver says so; elsewhere the URL keeps ``127.0.0.1``.
    """
    try:
        addresses = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return all(validation.is_loopback_host(str(info[4][0])) for info in addresses)
