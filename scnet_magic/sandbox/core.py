"""``Sandbox``: the local SCNet platform, its lifecycle, accounts, instances and endpoints.

An instance's status moves with time as the platform's does, worked out when it is read (no
timer thread): a boot goes Terminated → Creating → Running (Failed for a notebook in
``failing``) over ``boot_seconds``, a stop Running → Shutting → Terminated over
``stop_seconds``. Each instance keeps one custom service; a start on another port replaces it.
Stopping the instance ends its processes and closes its gateways (its external URLs).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import hmac
import json
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
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from .. import guard, validation
from ..endpoints import BOOT, CENTER, DETAIL, LIST, RENEW, SERVICE_URL, START, STATE, STOP, TOKENS
from ..local import listening, tail
from . import data
from .data import Refusal, envelope, logger
from .processes import command_environment, start_reaper, terminate
from .server import GatewayServer, Handler, Server, content_length


@dataclass
class _State:
    """One instance as it stands: a status, or a move towards ``target`` begun at ``since``."""

    status: str
    target: str | None = None
    since: float = 0.0
    custom_port: int | None = None
    command: str | None = None
    service: int | None = None  # the port of the service started since the instance booted
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    gateways: dict[int, GatewayServer] = field(default_factory=dict)  # by the service's port


class Sandbox:
    """A local server speaking the SCNet notebook OpenAPI (see the package docstring)."""

    notebook_id = data.NOTEBOOKS[0]["id"]

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
        self.host = host
        self.port = port
        self.token = token if token is not None else data.make_token()
        self.workdir = Path(workdir) if workdir is not None else None
        self.ready_timeout = ready_timeout
        # The one account that can sign in, with its access key pair.
        self.user = user
        self.access_key = access_key if access_key is not None else "AK" + secrets.token_hex(12)
        self.secret_key = secret_key if secret_key is not None else secrets.token_urlsafe(24)
        self._issued: dict[str, str] = {}  # token -> region id, for tokens the sandbox handed out
        self._replaced: set[str] = set()  # tokens renewal replaced: expired
        self._lock = threading.Lock()
        self._servers: dict[str, _ApiServer] = {}  # by host role: login, platform, ai
        self._stopped = False
        # Service logs go to a folder of the sandbox's own, not into the workdir the user gave.
        self._logdir: Path | None = None
        self._names: bool | None = None  # whether instance URLs use c-<id>.localhost
        self._reaper: subprocess.Popen[str] | None = None  # see processes.py
        self._init_instances()

    def _init_instances(self) -> None:
        # How long a boot and a stop take, and the notebooks whose boot ends in Failed.
        self.boot_seconds = 2.0
        self.stop_seconds = 1.0
        self.failing: set[str] = set()
        self._states = {r["id"]: _State(r["notebookStatus"]) for r in data.NOTEBOOKS}

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
        # ``port`` is the AI address's (SCNET_BASE_URL's); the other hosts take any free port.
        with contextlib.ExitStack() as opened:  # closed if one cannot listen
            servers = {
                role: opened.enter_context(_ApiServer(self, role, self.port if role == "ai" else 0))
                for role in data.ROLES.values()
            }
            opened.pop_all()
        if self.execute:
            # One rule wherever it is started from: commands run in the folder the user
            # started the sandbox from, as the README's relative paths expect.
            self.workdir = self.workdir or Path.cwd()
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
            # Those of stopped instances have ended already.
            states = self._states.values()
            procs = [proc for state in states for proc in state.procs]
            servers: list[Server] = [g for state in states for g in state.gateways.values()]
            servers += self._servers.values()
            reaper = self._reaper
        atexit.unregister(self.stop)
        # The guards started for its services end with them (all those of this process: two
        # sandboxes at once in one process are not told apart).
        with contextlib.suppress(guard.GuardError, OSError):
            guard.stop_guards_ending_with(os.getpid())
        # Together: each waits up to a poll interval for its loop to notice. Threads, not an
        # executor: stop() also runs at exit, when executors take no more work.
        closing = [threading.Thread(target=server.close) for server in servers]
        for thread in closing:
            thread.start()
        for thread in closing:
            thread.join()
        terminate(procs)
        if reaper is not None:  # the services are ended: the reaper has nothing left to do
            reaper.kill()
            with contextlib.suppress(OSError):  # (whatever closing says, the reaper is waited for)
                if reaper.stdin is not None:
                    reaper.stdin.close()
            reaper.wait()
        if self._logdir is not None:
            shutil.rmtree(self._logdir, ignore_errors=True)

    def __repr__(self) -> str:
        # What a notebook shows for ``%scnet_sandbox``: where it is, never the token or keys.
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
            gateways = self._states[notebook_id].gateways
            gateway = gateways.get(port)
            if gateway is None:
                gateway = gateways[port] = GatewayServer(notebook_id, self._gateway_port(port))
                gateway.serve_in_background()
        if self._names is None:  # looked up once: a resolver without DNS may take seconds
            self._names = _resolves_to_loopback("c-0.localhost")
        host = f"c-{notebook_id}.localhost" if self._names else "127.0.0.1"
        return f"http://{host}:{gateway.server_port}/"

    def accepts_token(self, token: str | None) -> bool:
        """Whether the API takes ``token``: the sandbox's own, or an issued one not yet renewed."""
        if token is None:
            return False
        with self._lock:
            valid = [self.token, *self._issued]
        # Every candidate is compared, so the time taken does not tell which one nearly matched.
        return sum(hmac.compare_digest(token.encode(), t.encode()) for t in valid) > 0

    # -- hooks: what a subclass may change (the tests' fault injection does) ----------------

    def _gateway_port(self, port: int) -> int:
        """The port a service's gateway forwards to: the service's own, on this machine."""
        return port

    def _received(
        self, handler: _ApiHandler, path: str, query: dict[str, str], body: object
    ) -> None:
        """Every API call, once its body is read (None when it was refused unread). Nothing is
        kept: in the user's kernel, a record would grow with every request anyone sends."""

    def _override(
        self, handler: _ApiHandler, path: str, token: str, query: dict[str, str], body: object
    ) -> bool:
        """Answer an accepted call otherwise than the platform would; True when it did."""
        return False

    def _now(self) -> float:
        """The server's clock, which signed timestamps are checked against."""
        return time.time()

    # -- the platform's answers ----------------------------------------------------------

    def _refusal(self, token: str) -> dict[str, Any] | None:
        """The envelope refusing a call's token ("" for none), or None when it is accepted."""
        if self.accepts_token(token):
            return None
        with self._lock:
            replaced = list(self._replaced)  # tokens a renewal replaced
        if sum(hmac.compare_digest(token.encode(), t.encode()) for t in replaced) > 0:
            # scnet-api.md's error table: third-party clients report 10008 for an expired
            # token; 10009 for a token the platform does not know.
            return envelope("10008", "权限不足")
        return envelope("10009", "没有权限访问接口")

    def _answer(
        self,
        path: str,
        token: str,
        query: dict[str, str],
        body: object,
        headers: Message,
        run: bool,
    ) -> dict[str, Any]:
        """The envelope for a call to a known endpoint with the right method and token."""
        if self._region_of(token) == data.PLATFORM:
            # The platform's own token is not a region's: the platform host answers it with
            # an internal error (field notes on the real center call), a region refuses it.
            if path.startswith("/ac/"):
                return envelope("10001", "内部错误")
            return envelope("10009", "没有权限访问接口")
        notebook_id = query.get("notebookId")
        endpoints: dict[str, Callable[[], object]] = {
            TOKENS.path: lambda: self._issue_tokens(headers),
            START.path: lambda: self._start_service(body, run),
            SERVICE_URL.path: lambda: self._service_url(notebook_id),
            data.NOTEBOOK_URL.path: lambda: _notebook_url(notebook_id),
            LIST.path: lambda: self._list(query),
            DETAIL.path: lambda: self._live(data.notebook(notebook_id)),
            BOOT.path: lambda: self._boot(body),
            STOP.path: lambda: self._stop_instance(body),
            RENEW.path: lambda: self._renew(token),
            STATE.path: lambda: "token is valid",
            CENTER.path: lambda: self._center(token),
        }
        try:
            return envelope("0", "success", endpoints[path]())
        except Refusal as error:
            return envelope(*error.args)

    # -- accounts ------------------------------------------------------------------------

    def _issue_tokens(self, headers: Message) -> list[dict[str, Any]]:
        """The token endpoint: check the signed headers, then one token per region."""
        user, access_key, timestamp, signature = (
            headers.get(name, "").strip()
            for name in ("user", "accessKey", "timestamp", "signature")
        )
        if not (user and access_key and timestamp and signature):
            raise Refusal("10003", "参数不全: user, accessKey, timestamp, signature")
        # The refusals as scnet-api.md section 5 reports them seen: an unknown user "10009
        # 用户不存在", a signature that does not match "AK/SK签名校验失败" (its code unknown:
        # 10004, invalid parameter). An unknown access key cannot be told from a bad signature.
        if user != self.user:
            raise Refusal("10009", "用户不存在")
        if not hmac.compare_digest(access_key.encode(), self.access_key.encode()):
            raise Refusal("10004", "AK/SK签名校验失败")
        if not (timestamp.isascii() and timestamp.isdigit()) or (
            abs(self._now() - int(timestamp)) > data.MAX_CLOCK_SKEW
        ):
            raise Refusal("10004", "参数无效: timestamp已过期，请校准系统时间")
        # Computed here on its own, not with the client's code, so that each checks the other.
        fields = {"accessKey": access_key, "timestamp": timestamp, "user": user}
        signed = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
        expected = hmac.new(self.secret_key.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise Refusal("10004", "AK/SK签名校验失败")
        entries = []
        with self._lock:
            for region_id in data.REGIONS:
                token = None
                if region_id != data.CLOSED_REGION:
                    token = data.make_token()
                    self._issued[token] = region_id
                entries.append(_token_entry(region_id, token))
        return entries

    def _region_of(self, token: str) -> str:
        """The region of an accepted token; the sandbox's own belongs to the default region."""
        with self._lock:
            return self._issued.get(token, data.DEFAULT_REGION)

    def _renew(self, token: str) -> list[dict[str, Any]]:
        """A new token for the same region, in the documented array of region entries
        (renewal-token.html, "区域信息列表"); the old one expires (calls with it answer
        10008), except the sandbox's own, which stays."""
        new = data.make_token()
        with self._lock:
            region_id = self._issued.pop(token, None)
            if region_id is None:  # the sandbox's own token: it stays valid
                region_id = data.DEFAULT_REGION
            else:
                self._replaced.add(token)
            self._issued[new] = region_id
        return [_token_entry(region_id, new)]

    def _center(self, token: str) -> dict[str, Any] | list[dict[str, Any]]:
        """Region discovery: the token's region, one object as working clients receive it,
        whose notebook APIs (aiUrls) lead back to this sandbox."""
        region_id = self._region_of(token)
        if region_id == data.DEFAULT_REGION:
            # One address without an enable flag, usable as the page says; written with the
            # trailing /ai that clients strip, as the platform does.
            ai_urls: list[dict[str, Any]] = [{"url": self.base_url + "/ai"}]
        else:
            # A disabled address first, and the flag as text, as some answers carry it.
            ai_urls = [
                {"url": "https://xaai.scnet.cn:58043/ai", "enable": False},
                {"url": self.base_url + "/", "enable": "true"},
            ]
        return {
            "id": region_id,
            "name": data.REGIONS[region_id],
            "aiUrls": ai_urls,
            "hpcUrls": [{"url": "https://hpc.scnet.invalid:58043", "enable": True}],
            "efileUrls": [{"url": "https://efile.scnet.invalid:58043", "enable": True}],
        }

    # -- instances -----------------------------------------------------------------------

    def _state(self, record: dict[str, str]) -> _State:
        """The instance's state now (the lock held)."""
        state = self._states[record["id"]]
        if state.target is not None:
            takes = self.boot_seconds if state.status == "Creating" else self.stop_seconds
            if time.monotonic() >= state.since + takes:
                state.status, state.target = state.target, None
        return state

    def _live(self, record: dict[str, str]) -> dict[str, Any]:
        """A record as the list and the detail answer it: the status now and the custom
        service (``customsizePort`` in the platform's spelling, as text)."""
        with self._lock:
            state = self._state(record)
            port = state.custom_port
            return {
                **record,
                "notebookStatus": state.status,
                "customsizePort": str(port) if port is not None else None,
                "command": state.command,
            }

    def _list(self, query: dict[str, str]) -> dict[str, Any]:
        status = query.get("notebookStatus") or None
        if status is not None and status not in data.STATUSES:
            raise Refusal("10004", "参数无效: notebookStatus")
        size = data.int_param(query, "size", 20, 1, 100)
        page = data.int_param(query, "page", 1, 1, 10**9)
        name = query.get("notebookName", "")
        hits = [
            record
            for record in map(self._live, data.NOTEBOOKS)
            if name in record["notebookName"]
            and (status is None or record["notebookStatus"] == status)
        ]
        return {"total": len(hits), "records": hits[(page - 1) * size : page * size]}

    def _boot(self, body: object) -> None:
        record = data.notebook(data.json_object(body).get("notebookId"))
        with self._lock:
            state = self._state(record)
            if state.status in ("Creating", "Restarting"):
                return  # on its way already
            if state.status == "Running":
                raise Refusal("10004", "参数无效: Notebook实例已在运行中")
            if state.status == "Shutting":
                raise Refusal("10004", "参数无效: Notebook实例正在关机，请稍后再试")
            target = "Failed" if record["id"] in self.failing else "Running"
            state.status, state.target, state.since = "Creating", target, time.monotonic()
        logger.info("notebook %s: booting (to %s)", record["id"], target)

    def _stop_instance(self, body: object) -> None:
        body = data.json_object(body)
        record = data.notebook(body.get("notebookId"))
        save_env = body.get("saveEnv", True)
        if not isinstance(save_env, bool):
            raise Refusal("10004", "参数无效: saveEnv")
        with self._lock:
            state = self._state(record)
            if state.status in ("Terminated", "Failed"):
                raise Refusal("817140", "当前Notebook已经停止！")
            if state.status == "Shutting":
                return
            state.status, state.target, state.since = "Shutting", "Terminated", time.monotonic()
            procs, state.procs = state.procs, []
            gateways, state.gateways = state.gateways, {}
            state.service = None
        # Everything in the instance ends: its services, and so their external addresses.
        for gateway in gateways.values():
            gateway.close()
        terminate(procs)
        logger.info("notebook %s: stopped (saveEnv=%s)", record["id"], save_env)

    def _start_service(self, body: object, run: bool) -> dict[str, Any]:
        body = data.json_object(body)
        if any(body.get(field) in (None, "") for field in ("id", "customizePort")):
            raise Refusal("10003", "参数不全")
        record = data.notebook(body["id"], "id")
        notebook_id, port = record["id"], data.port(body["customizePort"])
        command = body.get("command")
        if command is not None and not isinstance(command, str):
            raise Refusal("10004", "参数无效: command")
        with self._lock:
            state = self._state(record)
            if state.status != "Running":
                raise Refusal("716866", f"Notebook实例未处于运行状态({state.status})")
            # The instance's one custom service: another port replaces the old one.
            old, state.custom_port, state.command = state.custom_port, port, command
            state.service = port
            replaced = None
            if old is not None and old != port:
                replaced = state.gateways.pop(old, None)
        if replaced is not None:
            replaced.close()
            logger.info("notebook %s: port %s replaced by %d", notebook_id, old, port)
        pending = {
            "execSuccess": False,
            "errorMsg": data.PENDING_MSG + self.external_url(notebook_id, port),
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
        output = tail(log, data.OUTPUT_LIMIT) if log is not None else None
        if ready:
            return {"execSuccess": True, "errorMsg": None, "output": output or ""}
        return {**pending, "output": output}

    def _spawn(
        self, notebook_id: str, port: int, command: str
    ) -> tuple[Path, subprocess.Popen[bytes]]:
        with self._lock:
            # Under the lock so that stop() either sees this process or refuses it.
            if self._stopped or self.workdir is None or self._logdir is None:
                raise Refusal("10001", "内部错误: the sandbox is stopping")
            fd, log_path = tempfile.mkstemp(".log", f"service-{notebook_id}-{port}-", self._logdir)
            with open(fd, "wb") as log:
                proc = subprocess.Popen(
                    ["/bin/sh", "-c", command],
                    cwd=self.workdir,
                    env=command_environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self._states[notebook_id].procs.append(proc)  # it ends when the instance stops
            reaper = self._reaper = self._reaper or start_reaper()
            assert reaper.stdin is not None
            # Its group (start_new_session made pid the pgid), should this process end first.
            with contextlib.suppress(OSError):
                reaper.stdin.write(f"{proc.pid}\n")
                reaper.stdin.flush()
        logger.info("notebook %s port %d: started pid %d", notebook_id, port, proc.pid)
        return Path(log_path), proc

    def _service_url(self, notebook_id: str | None) -> dict[str, Any]:
        notebook_id = data.notebook(notebook_id)["id"]
        with self._lock:
            port = self._states[notebook_id].service
        if port is None:
            return {"status": "inactive", "url": None}
        active = self.execute and listening(port)
        return {
            "status": "active" if active else "inactive",
            "url": self.external_url(notebook_id, port),
        }


def _notebook_url(notebook_id: str | None) -> dict[str, Any]:
    record = data.notebook(notebook_id)
    return {
        "status": "active" if record["notebookStatus"] == "Running" else "inactive",
        # The instance's Jupyter is n-<id>, beside the custom service's c-<id> (scnet-api.md
        # section 6, from field notes of the real platform).
        "url": f"https://n-{record['id']}.ksai.scnet.cn:58043/jupyter/",
    }


def _token_entry(region_id: str, token: str | None) -> dict[str, Any]:
    """A region's entry in the token answers. Its id is a number for some entries and text
    for others (both are seen), so that a client has to accept either."""
    cluster_id = int(region_id) if region_id in (data.PLATFORM, data.DEFAULT_REGION) else region_id
    return {"clusterName": data.REGIONS[region_id], "clusterId": cluster_id, "token": token}


class _ApiServer(Server):
    def __init__(self, sandbox: Sandbox, role: str, port: int = 0) -> None:
        self.sandbox = sandbox
        self.role = role
        super().__init__(role, sandbox.host, port, _ApiHandler)


class _ApiHandler(Handler):
    server: _ApiServer

    def do_GET(self) -> None:
        sandbox = self.server.sandbox
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        token = self.headers.get("token", "")
        length = content_length(self.headers)
        early = self._early_answer(url.path, length, token)
        # The body is read only for a call that gets this far: a caller without a valid token
        # cannot make the sandbox read, parse or keep anything it sends.
        body = data.parse_body(self.rfile.read(length)) if early is None else None
        sandbox._received(self, url.path, query, body)
        if early is not None:
            status, refusal, headers = early
            self.send_json(status, refusal, headers=headers, close=length != 0)
            if length != 0:
                self._discard_rest()
        elif not sandbox._override(self, url.path, token, query, body):
            answer = sandbox._answer(url.path, token, query, body, self.headers, sandbox.execute)
            self.send_json(200, answer)

    do_HEAD = do_OPTIONS = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def send_json(self, status: int, value: object, **kwargs: Any) -> None:
        self._send(status, data.json_bytes(value), data.JSON, **kwargs)

    def _early_answer(
        self, path: str, length: int, token: str
    ) -> tuple[int, dict[str, Any], list[tuple[str, str]]] | None:
        """The answer to a call refused before its body is read: (status, envelope, headers)."""
        if length < 0:
            return 400, envelope("10004", "参数无效: 请求体需要Content-Length"), []
        if length > data.MAX_BODY:
            return 413, envelope("10011", "文件过大"), []
        endpoint = data.ENDPOINTS.get(path)
        # Another host's endpoint is as unknown here as on the real platform: a /ac/ call sent
        # to the login host, or a notebook call sent to the platform host, finds nothing.
        if endpoint is None or data.ROLES[endpoint.host] != self.server.role:
            return 404, envelope("10001", f"接口不存在: {path}"), []
        if self.command != endpoint.method:
            allow = [("Allow", endpoint.method)]
            return 405, envelope("10001", f"请求方法不支持: {self.command}"), allow
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
