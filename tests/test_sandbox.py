"""The local SCNet sandbox, over real loopback HTTP."""

from __future__ import annotations

import http.client
import inspect
import json
import os
import re
import shlex
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import trustme
import websocket
from guard_helpers import refused_websocket, running_service
from sandbox_faults import FAULTS, RecordedRequest, token_tag
from sandbox_faults import FaultySandbox as Sandbox

import scnet_magic.sandbox as sandbox_module
from scnet_magic.account import sign_in

from conftest import free_port, localhost_names

API = "/ai/openapi/v2/notebook"
START = f"{API}/customize-service/actions/start"
SERVICE_URL = f"{API}/customize-service/url"
NOTEBOOK_URL = f"{API}/url"
LIST = f"{API}/list"
RUNNING = "1896050410550136833"
LLM = "1896476639463936002"
TERMINATED = "1896050410550136834"
UNKNOWN = "1234567890123456789"
PENDING = (
    "根据您提供的端口,未检测到可用的服务。若您的服务为特定的API接口,"
    "系统将自动建立通路,对应的外部地址为:"
)
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")
ROOT = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie (PID 1 here may not reap orphans)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # a proxy from the environment must not see loopback calls
        yield session


@pytest.fixture
def sb(sandbox: Sandbox) -> Sandbox:
    return sandbox  # conftest's: shared, reset before each test


@pytest.fixture
def api(session: requests.Session, sb: Sandbox) -> Callable[..., requests.Response]:
    return make_api(session, sb)


def make_api(session: requests.Session, sb: Sandbox) -> Callable[..., requests.Response]:
    def call(method: str, path: str, *, token: str | None = sb.token, **kw: Any) -> Any:
        headers = kw.pop("headers", {})
        if token is not None:
            headers["token"] = token
        kw.setdefault("timeout", 10)
        return session.request(method, sb.base_url + path, headers=headers, **kw)

    return call


def start_body(notebook_id: str = RUNNING, port: object = "7860", **extra: object) -> Any:
    return {"id": notebook_id, "customizePort": port, **extra}


def ok_data(response: requests.Response) -> Any:
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    envelope = response.json()
    assert envelope["code"] == "0", envelope
    assert envelope["msg"] == "success"
    return envelope["data"]


# -- construction and binding ---------------------------------------------------------------


def test_token_is_jwt_shaped_and_random_per_instance() -> None:
    a, b = Sandbox(), Sandbox()
    assert JWT.fullmatch(a.token)
    assert a.token != b.token
    assert Sandbox(token="given").token == "given"


def test_binds_loopback_on_a_free_port(sb: Sandbox) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sb.base_url)
    # The three hosts (login, platform, AI address), each on a loopback port of its own.
    assert sorted(sb._servers) == ["ai", "login", "platform"]
    assert all(server.server_address[0] == "127.0.0.1" for server in sb._servers.values())
    assert len({sb.base_url, sb.login_url, sb.ac_url}) == 3
    assert sb.notebook_id == RUNNING
    assert sb.execute is False


def test_non_loopback_host_warns(session: requests.Session) -> None:
    with pytest.warns(UserWarning, match="other machines"):
        sandbox = Sandbox(host="0.0.0.0").start()
    try:
        assert sandbox.base_url.startswith("http://127.0.0.1:")
        assert ok_data(make_api(session, sandbox)("GET", LIST))["total"] == 25
    finally:
        sandbox.stop()


def test_stop_is_idempotent_and_a_stopped_sandbox_does_not_answer(
    session: requests.Session,
) -> None:
    sandbox = Sandbox().start()
    url = sandbox.base_url
    sandbox.stop()
    sandbox.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(url + LIST, timeout=2)
    with pytest.raises(RuntimeError):
        sandbox.start()


def test_keep_alive_requests_are_fast(api: Callable[..., requests.Response]) -> None:
    started = time.monotonic()
    for _ in range(30):
        api("GET", LIST, params={"size": "1"})
    # With Nagle's algorithm and delayed ACKs each request would take ~40 ms.
    assert time.monotonic() - started < 1.0


# -- endpoints ------------------------------------------------------------------------------


def test_start_answers_like_the_documented_example(
    api: Callable[..., requests.Response], sb: Sandbox, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    body = start_body(command=f"touch {shlex.quote(str(marker))}")
    data = ok_data(api("POST", START, json=body))
    url = f"https://c-{RUNNING}.ksai.scnet.cn:58043"
    assert data == {"execSuccess": False, "errorMsg": PENDING + url, "output": None}
    assert sb.external_url(RUNNING, 7860) == url
    time.sleep(0.2)
    assert not marker.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"id": int(LLM), "customizePort": 1},
        {"id": LLM, "customizePort": "65535", "command": None},
        {"id": LLM, "customizePort": 8080, "command": "python app.py > /root/app.log 2>&1"},
    ],
)
def test_start_accepts_strings_or_ints(
    api: Callable[..., requests.Response], body: dict[str, object]
) -> None:
    data = ok_data(api("POST", START, json=body))
    assert data["errorMsg"] == PENDING + f"https://c-{LLM}.ksai.scnet.cn:58043"


def test_service_url_before_and_after_start(api: Callable[..., requests.Response]) -> None:
    params = {"notebookId": LLM}
    assert ok_data(api("GET", SERVICE_URL, params=params)) == {"status": "inactive", "url": None}
    ok_data(api("POST", START, json=start_body(LLM)))
    assert ok_data(api("GET", SERVICE_URL, params=params)) == {
        "status": "inactive",
        "url": f"https://c-{LLM}.ksai.scnet.cn:58043",
    }


@pytest.mark.parametrize(("notebook_id", "status"), [(RUNNING, "active"), (TERMINATED, "inactive")])
def test_notebook_url(api: Callable[..., requests.Response], notebook_id: str, status: str) -> None:
    data = ok_data(api("GET", NOTEBOOK_URL, params={"notebookId": notebook_id}))
    assert data == {
        "status": status,
        "url": f"https://n-{notebook_id}.ksai.scnet.cn:58043/jupyter/",
    }


def test_list_pages(api: Callable[..., requests.Response]) -> None:
    first = ok_data(api("GET", LIST))
    assert first["total"] == 25
    assert len(first["records"]) == 20
    assert [(r["id"], r["notebookName"], r["notebookStatus"]) for r in first["records"][:3]] == [
        (RUNNING, "sdxl-webui", "Running"),
        (LLM, "llm-api", "Running"),
        (TERMINATED, "old-experiment", "Terminated"),
    ]
    second = ok_data(api("GET", LIST, params={"page": "2"}))
    assert second["total"] == 25
    assert len(second["records"]) == 5
    records = first["records"] + second["records"]
    assert all(isinstance(r["id"], str) and re.fullmatch(r"\d{19}", r["id"]) for r in records)
    assert len({r["id"] for r in records}) == 25
    assert all("createTime" in r and "imageName" in r for r in records)
    assert len({r["notebookStatus"] for r in records}) >= 4
    assert len(ok_data(api("GET", LIST, params={"size": "10", "page": "3"}))["records"]) == 5
    assert ok_data(api("GET", LIST, params={"page": "4", "size": "10"}))["records"] == []
    assert len(ok_data(api("GET", LIST, params={"size": "100"}))["records"]) == 25


def test_list_filters(api: Callable[..., requests.Response]) -> None:
    demo = ok_data(api("GET", LIST, params={"notebookName": "demo"}))
    assert demo["total"] == 22
    assert ok_data(api("GET", LIST, params={"notebookName": "sdxl"}))["records"][0]["id"] == RUNNING
    terminated = ok_data(api("GET", LIST, params={"notebookStatus": "Terminated", "size": "100"}))
    assert terminated["total"] == len(terminated["records"]) > 1
    assert {r["notebookStatus"] for r in terminated["records"]} == {"Terminated"}
    both = ok_data(api("GET", LIST, params={"notebookName": "old", "notebookStatus": "Running"}))
    assert both == {"total": 0, "records": []}


@pytest.mark.parametrize(
    "params",
    [
        {"notebookStatus": "running"},
        {"notebookStatus": "Deleted"},
        {"size": "0"},
        {"size": "101"},
        {"size": "ten"},
        {"page": "0"},
        {"page": "-1"},
    ],
)
def test_list_rejects_invalid_parameters(
    api: Callable[..., requests.Response], params: dict[str, str]
) -> None:
    envelope = api("GET", LIST, params=params).json()
    assert envelope["code"] == "10004"
    assert envelope["msg"] == f"参数无效: {next(iter(params))}"
    assert envelope["data"] is None


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong", "eyJhbGciOiJIUzI1NiJ9.e30.x", "tökén"])
@pytest.mark.parametrize(
    ("method", "path", "kw"),
    [
        ("POST", START, {"json": start_body()}),
        ("GET", SERVICE_URL, {"params": {"notebookId": RUNNING}}),
        ("GET", NOTEBOOK_URL, {"params": {"notebookId": RUNNING}}),
        ("GET", LIST, {}),
    ],
)
def test_missing_or_wrong_token(
    api: Callable[..., requests.Response],
    token: str | None,
    method: str,
    path: str,
    kw: dict[str, Any],
) -> None:
    if token == "tökén":
        token = token.encode().decode("latin-1")  # what a raw non-ASCII header arrives as
    response = api(method, path, token=token, **kw)
    assert response.status_code == 200
    assert response.json() == {"code": "10009", "msg": "没有权限访问接口", "data": None}


@pytest.mark.parametrize(
    ("body", "code", "msg"),
    [
        ("[1, 2]", "10004", "参数无效"),
        ("not json", "10004", "参数无效"),
        ("", "10004", "参数无效"),
        ({}, "10003", "参数不全"),
        ({"id": RUNNING}, "10003", "参数不全"),
        ({"customizePort": "7860"}, "10003", "参数不全"),
        ({"id": RUNNING, "customsizePort": "7860"}, "10003", "参数不全"),
        ({"id": "", "customizePort": "7860"}, "10003", "参数不全"),
        ({"id": "18960504105501x", "customizePort": "7860"}, "10004", "参数无效: id"),
        ({"id": -5, "customizePort": "7860"}, "10004", "参数无效: id"),
        ({"id": 1.5, "customizePort": "7860"}, "10004", "参数无效: id"),
        (start_body(port="0"), "10004", "参数无效: customizePort"),
        (start_body(port=65536), "10004", "参数无效: customizePort"),
        (start_body(port="http"), "10004", "参数无效: customizePort"),
        (start_body(port=True), "10004", "参数无效: customizePort"),
        (start_body(port=78.6), "10004", "参数无效: customizePort"),
        (start_body(port="9" * 5000), "10004", "参数无效: customizePort"),
        (start_body(command=["python", "app.py"]), "10004", "参数无效: command"),
        (start_body(UNKNOWN), "10004", "不存在"),
        (start_body(TERMINATED), "716866", "Notebook实例未处于运行状态(Terminated)"),
    ],
)
def test_start_rejects(
    api: Callable[..., requests.Response], body: object, code: str, msg: str
) -> None:
    if isinstance(body, str):
        response = api("POST", START, data=body.encode())
    else:
        response = api("POST", START, json=body)
    assert response.status_code == 200
    envelope = response.json()
    assert envelope["code"] == code
    assert msg in envelope["msg"]
    assert envelope["data"] is None


@pytest.mark.parametrize("path", [SERVICE_URL, NOTEBOOK_URL])
@pytest.mark.parametrize(
    ("params", "code", "msg"),
    [
        ({}, "10003", "参数不全"),
        ({"notebookId": ""}, "10003", "参数不全"),
        ({"notebookId": "abc"}, "10004", "参数无效: notebookId"),
        ({"notebookId": UNKNOWN}, "10004", "不存在"),
    ],
)
def test_notebook_id_errors(
    api: Callable[..., requests.Response], path: str, params: dict[str, str], code: str, msg: str
) -> None:
    envelope = api("GET", path, params=params).json()
    assert envelope["code"] == code
    assert msg in envelope["msg"]


def test_unknown_path_is_404_with_envelope(api: Callable[..., requests.Response]) -> None:
    for path in (f"{API}/nothing", "/", START + "/"):
        response = api("GET", path)
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert response.json()["code"] == "10001"


@pytest.mark.parametrize(
    ("method", "path"), [("GET", START), ("POST", LIST), ("DELETE", LIST), ("OPTIONS", START)]
)
def test_wrong_method_is_405_with_envelope(
    api: Callable[..., requests.Response], method: str, path: str
) -> None:
    response = api(method, path)
    assert response.status_code == 405
    assert isinstance(response.json()["code"], str)
    assert response.headers["Allow"] in ("GET", "POST")


def test_no_cors_headers(api: Callable[..., requests.Response]) -> None:
    response = api("GET", LIST, headers={"Origin": "https://evil.example"})
    assert not any(name.lower().startswith("access-control") for name in response.headers)


def test_oversized_body_is_413_without_hanging(
    api: Callable[..., requests.Response], sb: Sandbox
) -> None:
    started = time.monotonic()
    response = api("POST", START, data=b"x" * (8 * MIB), timeout=5)
    assert response.status_code == 413
    assert response.json()["code"] == "10011"
    assert time.monotonic() - started < 3
    assert sb.start_requests()[-1].body is None
    # 1 MiB exactly is still read (and refused only for not being a JSON object).
    assert api("POST", START, data=b"x" * MIB).json()["code"] == "10004"
    # A chunked body has no length to check up front.
    chunked = api("POST", START, data=(part for part in [b"{", b"}"]))
    assert (chunked.status_code, chunked.json()["code"]) == (400, "10004")


def test_delay_applies_to_every_endpoint(
    api: Callable[..., requests.Response], sb: Sandbox
) -> None:
    sb.delay = 0.3
    for method, path in (("POST", START), ("GET", SERVICE_URL), ("GET", NOTEBOOK_URL)):
        started = time.monotonic()
        api(method, path, json=start_body(), params={"notebookId": RUNNING})
        assert time.monotonic() - started >= 0.3
    sb.delay = 0
    started = time.monotonic()
    api("GET", LIST)
    assert time.monotonic() - started < 0.3


# -- request log ----------------------------------------------------------------------------


def test_request_log_redacts_the_token_and_parses_bodies(
    api: Callable[..., requests.Response], sb: Sandbox
) -> None:
    api("POST", START, json=start_body(command="echo hi"))
    api("GET", LIST, params={"page": "2"}, token="wrong")
    api("POST", START, data=b"not json")
    api("GET", f"{API}/nothing", token=None)
    first, second, third, fourth = sb.requests
    assert first == RecordedRequest(
        "POST",
        START,
        {},
        first.headers,
        {"id": RUNNING, "customizePort": "7860", "command": "echo hi"},
        "ai",
        token_tag(sb.token),
    )
    assert first.headers["token"] == "<redacted>"
    assert sb.token not in repr(sb.requests)
    assert (second.method, second.path, second.query, second.body) == (
        "GET",
        LIST,
        {"page": "2"},
        None,
    )
    assert second.headers["token"] == "<redacted>"
    assert third.body == "not json"
    assert "token" not in fourth.headers
    assert sb.start_requests() == [first, third]
    sb.clear_log()
    assert sb.requests == []
    assert sb.start_requests() == []


def test_log_lines_never_show_the_token(
    api: Callable[..., requests.Response], sb: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="scnet_magic.sandbox")
    api("POST", START, json=start_body())
    assert any("POST" in r.getMessage() and "200" in r.getMessage() for r in caplog.records)
    assert sb.token not in caplog.text


# -- faults ---------------------------------------------------------------------------------


def test_unknown_fault_is_refused(sb: Sandbox) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        sb.fault = "explode"
    sb.fault = "drop"
    sb.fault = None
    assert len(FAULTS) == 20


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ("401-json", 401, "10008"),
        ("403-json", 403, "10008"),
        ("500-json", 500, "10001"),
        ("401-plain", 401, None),
        ("403-plain", 403, None),
        ("500-plain", 500, None),
        ("html502", 502, None),
    ],
)
def test_status_faults(
    api: Callable[..., requests.Response],
    sb: Sandbox,
    fault: str,
    status: int,
    code: str | None,
) -> None:
    sb.fault = fault
    response = api("POST", START, json=start_body())
    assert response.status_code == status
    if code is None:
        assert not response.headers["Content-Type"].startswith("application/json")
        with pytest.raises(ValueError):
            response.json()
    else:
        assert response.json()["code"] == code
    if fault == "html502":
        assert "<h1>502 Bad Gateway</h1>" in response.text
    # Faults affect only the start endpoint.
    assert ok_data(api("GET", LIST))["total"] == 25
    assert len(sb.start_requests()) == 1


def test_shape_faults(api: Callable[..., requests.Response], sb: Sandbox) -> None:
    def answer(fault: str) -> requests.Response:
        sb.fault = fault
        response = api("POST", START, json=start_body())
        assert response.status_code == 200
        return response

    documented = {
        "execSuccess": False,
        "errorMsg": PENDING + f"https://c-{RUNNING}.ksai.scnet.cn:58043",
        "output": None,
    }
    truncated = answer("truncated").text
    with pytest.raises(ValueError):
        json.loads(truncated)
    assert json.loads(truncated + "}")["data"] == documented
    assert answer("data-null").json() == {"code": "0", "msg": "success", "data": None}
    assert answer("data-list").json()["data"] == [documented]
    assert answer("code-missing").json() == {"msg": "success", "data": documented}
    assert answer("code-int").json() == {"code": 0, "msg": "success", "data": documented}
    assert answer("exec-string").json()["data"]["execSuccess"] == "false"


def test_huge_fault_streams_ten_megabytes(
    api: Callable[..., requests.Response], sb: Sandbox
) -> None:
    sb.fault = "huge"
    with api("POST", START, json=start_body(), stream=True) as response:
        assert response.status_code == 200
        assert response.headers["Content-Length"] == str(10 * MIB)
        chunks = response.iter_content(1024 * 1024)
        assert next(chunks).startswith(b'{"code": "0", "msg": "')
        assert sum(len(c) for c in chunks) == 9 * MIB


def test_slow_headers_fault(api: Callable[..., requests.Response], sb: Sandbox) -> None:
    sb.fault, sb.fault_delay = "slow-headers", 1.0
    with pytest.raises(requests.ReadTimeout):
        api("POST", START, json=start_body(), timeout=0.3)
    started = time.monotonic()
    assert ok_data(api("POST", START, json=start_body()))["execSuccess"] is False
    assert time.monotonic() - started >= 1.0


def test_trickle_fault(api: Callable[..., requests.Response], sb: Sandbox) -> None:
    sb.fault, sb.fault_delay = "trickle", 1.0
    started = time.monotonic()
    with api("POST", START, json=start_body(), stream=True) as response:
        assert time.monotonic() - started < 0.5  # headers come at once
        assert response.json()["data"]["execSuccess"] is False
    assert time.monotonic() - started >= 1.0


def test_reset_fault(sb: Sandbox) -> None:
    sb.fault = "reset"
    conn = http.client.HTTPConnection("127.0.0.1", int(sb.base_url.rsplit(":", 1)[1]), timeout=5)
    try:
        conn.request("POST", START, json.dumps(start_body()), {"token": sb.token})
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") == "1000"
        with pytest.raises(ConnectionResetError):
            response.read()
    finally:
        conn.close()


def test_drop_fault(api: Callable[..., requests.Response], sb: Sandbox) -> None:
    sb.fault = "drop"
    with pytest.raises(requests.ConnectionError):
        api("POST", START, json=start_body())
    assert sb.start_requests()[-1].body == start_body()


def test_redirect_faults(api: Callable[..., requests.Response], sb: Sandbox) -> None:
    sb.fault = "redirect-http"
    response = api("POST", START, json=start_body(), allow_redirects=False)
    assert response.status_code == 307
    assert response.headers["Location"] == f"http://example.invalid{START}"
    sb.fault = "redirect-loop"
    response = api("POST", START, json=start_body(), allow_redirects=False)
    assert response.status_code == 307
    assert response.headers["Location"] == sb.base_url + START
    with pytest.raises(requests.TooManyRedirects):
        api("POST", START, json=start_body())


# -- execution ------------------------------------------------------------------------------


def test_execute_runs_the_command_behind_a_gateway(
    session: requests.Session, tmp_path: Path
) -> None:
    (tmp_path / "hello.txt").write_text("hello from the instance\n")
    port = free_port()
    server = f"{shlex.quote(sys.executable)} -m http.server {port} --bind 127.0.0.1"
    command = f"echo starting-up; echo $$ > server.pid; exec {server}"
    sandbox = Sandbox(execute=True, workdir=tmp_path).start()
    try:
        api = make_api(session, sandbox)
        data = ok_data(api("POST", START, json=start_body(port=str(port), command=command)))
        assert data["execSuccess"] is True
        assert data["errorMsg"] is None
        assert "starting-up" in data["output"]

        url = ok_data(api("GET", SERVICE_URL, params={"notebookId": RUNNING}))
        assert url["status"] == "active"
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url["url"])
        assert url["url"] == sandbox.external_url(RUNNING, port)
        page = session.get(url["url"] + "hello.txt", timeout=5)
        assert page.status_code == 200
        assert page.text == "hello from the instance\n"
        assert "Connection" not in page.headers or page.headers["Connection"] != "close"
        assert session.get(url["url"] + "missing", timeout=5).status_code == 404

        # Not idempotent: each start runs its command again.
        for _ in range(2):
            again = start_body(port=port, command="echo run >> runs.txt")
            assert ok_data(api("POST", START, json=again))["execSuccess"] is True
        runs = tmp_path / "runs.txt"
        assert wait_for(lambda: runs.exists() and runs.read_text() == "run\nrun\n")
        pid = int((tmp_path / "server.pid").read_text())
        assert alive(pid)
    finally:
        sandbox.stop()
    assert not alive(pid)
    assert not accepts(port)
    assert (tmp_path / "hello.txt").exists()  # a workdir the caller gave is kept


def test_execute_without_a_listener(session: requests.Session, tmp_path: Path) -> None:
    command = "echo $$ > sh.pid; sleep 30 & echo $! > child.pid; wait"
    sandbox = Sandbox(execute=True, workdir=tmp_path, ready_timeout=1).start()
    try:
        api = make_api(session, sandbox)
        port = free_port()
        started = time.monotonic()
        data = ok_data(api("POST", START, json=start_body(port=port, command=command)))
        assert time.monotonic() - started >= 1
        gateway = sandbox.external_url(RUNNING, port)
        assert data == {"execSuccess": False, "errorMsg": PENDING + gateway, "output": ""}
        assert ok_data(api("GET", SERVICE_URL, params={"notebookId": RUNNING})) == {
            "status": "inactive",
            "url": gateway,
        }
        page = session.get(gateway, timeout=5)
        assert page.status_code == 502
        assert "502 Bad Gateway" in page.text
        pids = [int((tmp_path / name).read_text()) for name in ("sh.pid", "child.pid")]
        assert all(alive(pid) for pid in pids)
    finally:
        started = time.monotonic()
        sandbox.stop()
    assert time.monotonic() - started < 2.5
    assert not any(alive(pid) for pid in pids)
    with pytest.raises(requests.ConnectionError):
        session.get(gateway, timeout=2)


def test_a_command_that_ends_is_answered_at_once_with_its_output(
    session: requests.Session, tmp_path: Path
) -> None:
    # The wait for the port stops when the command has ended: nothing will listen, and its
    # output is complete (a dead command's error is not cut off by the wait's limit).
    sandbox = Sandbox(execute=True, workdir=tmp_path, ready_timeout=60).start()
    try:
        api = make_api(session, sandbox)
        started = time.monotonic()
        command = "echo starting; echo 'no such file' >&2; exit 2"
        data = ok_data(api("POST", START, json=start_body(port=free_port(), command=command)))
        assert time.monotonic() - started < 30
        assert data["execSuccess"] is False
        assert data["output"] == "starting\nno such file\n"
    finally:
        sandbox.stop()


def test_execute_in_the_current_folder_and_faults_never_run(
    session: requests.Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sandbox = Sandbox(execute=True, ready_timeout=0.2).start()
    try:
        assert sandbox.workdir == tmp_path
        api = make_api(session, sandbox)
        data = ok_data(api("POST", START, json=start_body(port=free_port())))
        assert data["execSuccess"] is False
        assert data["output"] is None  # no command, nothing captured
        sandbox.fault = "code-int"
        marker = tmp_path / "ran"
        body = start_body(port=free_port(), command=f"touch {shlex.quote(str(marker))}")
        assert api("POST", START, json=body).json()["code"] == 0
        time.sleep(0.3)
        assert not marker.exists()
    finally:
        sandbox.stop()
    assert sandbox.workdir.is_dir()  # the user's folder, kept


# -- WebSockets through a gateway -------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    """A WebSocket echo service (tests/guard_service.py) on a port of its own."""
    with running_service() as port:
        yield port


@pytest.fixture
def exposed(session: requests.Session, tmp_path: Path, echo_port: int) -> Iterator[Sandbox]:
    """A sandbox that exposed the echo service's port (a start without a command)."""
    with Sandbox(execute=True, workdir=tmp_path) as sandbox:
        started = make_api(session, sandbox)("POST", START, json=start_body(port=echo_port))
        assert ok_data(started)["execSuccess"] is True
        yield sandbox


def ws_url(sandbox: Sandbox, port: int, path: str = "/ws") -> str:
    gateway = sandbox.external_url(RUNNING, port).rstrip("/")
    assert gateway.startswith("http://")
    return "ws://" + gateway.removeprefix("http://") + path


def tunnels() -> int:
    """The gateways' tunnel threads running in this process."""
    return sum(thread.name == "gateway tunnel" for thread in threading.enumerate())


def test_gateway_relays_a_websocket_both_ways(exposed: Sandbox, echo_port: int) -> None:
    connection = websocket.create_connection(
        ws_url(exposed, echo_port),
        header=["Cookie: theme=dark"],
        subprotocols=["chat.v2", "chat.v1"],
        timeout=10,
    )
    try:
        # The service greets right behind its 101, so the greeting may come with the head.
        greeting = json.loads(connection.recv())
        assert greeting == {"cookie": "theme=dark", "authorization": None, "subprotocol": "chat.v2"}
        assert connection.subprotocol == "chat.v2"
        connection.send("ping ☃")
        assert connection.recv() == "ping ☃"
        big = os.urandom(3 * MIB)
        connection.send_binary(big)
        assert connection.recv() == big
    finally:
        connection.close()


def test_a_websocket_closed_by_either_side_ends_its_connection(
    exposed: Sandbox, echo_port: int
) -> None:
    connection = websocket.create_connection(ws_url(exposed, echo_port), timeout=10)
    connection.recv()  # the greeting
    connection.send_close(websocket.STATUS_NORMAL, b"bye")
    opcode, data = connection.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert data[:2] == struct.pack("!H", websocket.STATUS_NORMAL)
    # The service then closed its end: the gateway passes the end on.
    assert connection.sock is not None
    with connection.sock as raw:
        assert raw.recv(1) == b""
    assert wait_for(lambda: tunnels() == 0)

    dropped = websocket.create_connection(ws_url(exposed, echo_port), timeout=10)
    dropped.recv()
    assert tunnels() == 1 and dropped.sock is not None
    dropped.sock.close()  # no close frame: the client just goes
    assert wait_for(lambda: tunnels() == 0)


def test_stopping_the_sandbox_ends_its_websockets(exposed: Sandbox, echo_port: int) -> None:
    connection = websocket.create_connection(ws_url(exposed, echo_port), timeout=10)
    try:
        connection.recv()
        assert tunnels() == 1
        exposed.stop()
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            connection.recv()
        assert wait_for(lambda: tunnels() == 0)
    finally:
        connection.close()


@pytest.mark.parametrize("status", [401, 403, 404])
def test_an_upgrade_the_service_refuses_comes_back_as_its_answer(
    exposed: Sandbox, echo_port: int, status: int
) -> None:
    assert refused_websocket(ws_url(exposed, echo_port, f"/status/{status}")) == status
    assert tunnels() == 0


def test_an_upgrade_goes_on_with_its_two_hop_by_hop_headers_only(
    exposed: Sandbox, echo_port: int
) -> None:
    port = urlsplit(exposed.external_url(RUNNING, echo_port)).port
    gateway = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        upgrade = {
            "Connection": "keep-alive, Upgrade, X-Hop",
            "Upgrade": "websocket",
            "Keep-Alive": "timeout=5",
            "X-Hop": "for the gateway only",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        }
        gateway.request("GET", "/echo", headers=upgrade)
        answer = gateway.getresponse()
        # The echo route answers an upgrade like any GET: a 200, relayed as an ordinary answer.
        assert answer.status == 200
        headers = json.loads(answer.read())["headers"]
        assert (headers["connection"], headers["upgrade"]) == (["Upgrade"], ["websocket"])
        assert headers["sec-websocket-key"] == ["dGhlIHNhbXBsZSBub25jZQ=="]
        assert "keep-alive" not in headers and "x-hop" not in headers
        # Nothing switched: the same connection goes on speaking HTTP.
        used = gateway.sock
        gateway.request("GET", "/echo")
        again = gateway.getresponse()
        assert again.status == 200 and gateway.sock is used
        assert "upgrade" not in json.loads(again.read())["headers"]
    finally:
        gateway.close()


def test_headers_named_by_any_connection_line_stay_with_the_gateway(
    exposed: Sandbox, echo_port: int
) -> None:
    port = urlsplit(exposed.external_url(RUNNING, echo_port)).port
    gateway = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        gateway.putrequest("GET", "/echo")
        gateway.putheader("Connection", "keep-alive")
        gateway.putheader("Connection", "X-Hop")  # a second line names a header too
        gateway.putheader("X-Hop", "for the gateway only")
        gateway.endheaders()
        headers = json.loads(gateway.getresponse().read())["headers"]
        assert "x-hop" not in headers
    finally:
        gateway.close()


def test_an_upgrade_with_nothing_listening_is_a_502(exposed: Sandbox) -> None:
    assert refused_websocket(ws_url(exposed, free_port())) == 502


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is still running (zombies do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp = stat.read_text().rpartition(")")[2].split()[:3]
        except (OSError, ValueError):
            continue
        if int(pgrp) == pgid and state not in ("Z", "X"):
            return True
    return False


class Failed(Exception):
    """A test failing in the middle of its work."""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process groups from /proc")
def test_stops_every_process_it_started_when_the_test_fails(
    session: requests.Session, tmp_path: Path
) -> None:
    port = free_port()
    server = f"{shlex.quote(sys.executable)} -m http.server {port} --bind 127.0.0.1"
    # A shell, a background child that outlives it, and a server in front.
    command = f"echo $$ > group.pid; sleep 60 & echo $! > child.pid; exec {server}"
    with pytest.raises(Failed), Sandbox(execute=True, workdir=tmp_path, ready_timeout=8) as sb:
        data = ok_data(
            make_api(session, sb)("POST", START, json=start_body(port=port, command=command))
        )
        assert data["execSuccess"] is True
        pgid = int((tmp_path / "group.pid").read_text())
        child = int((tmp_path / "child.pid").read_text())
        assert group_alive(pgid) and alive(child) and accepts(port)
        raise Failed
    assert not group_alive(pgid)
    assert not alive(child)
    assert not accepts(port)


@pytest.mark.parametrize(
    "wrong",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # same length
        lambda token: token[:-1],  # a prefix
        lambda token: token + "x",  # longer
        lambda token: token.swapcase(),
        lambda token: "",
        lambda token: token.replace(".", "\u00e9", 1).encode().decode("latin-1"),
    ],
)
def test_token_comparison_is_exact(
    api: Callable[..., requests.Response], sb: Sandbox, wrong: Callable[[str], str]
) -> None:
    envelope = api("GET", LIST, token=wrong(sb.token)).json()
    assert envelope["code"] == "10009"
    assert api("GET", LIST).json()["code"] == "0"


def test_token_comparison_takes_constant_time() -> None:
    """Timing a comparison is too noisy for a test; the code says which comparison it is."""
    assert "self.accepts_token(token)" in inspect.getsource(Sandbox._refusal)
    accepts = inspect.getsource(Sandbox.accepts_token)
    assert "hmac.compare_digest(token.encode(), t.encode()) for t in valid" in accepts
    # And nowhere is a token compared with == or != (the header's name "token" may be).
    compared = r"(?<![\w\"'])(self\.)?token\s*[!=]=|[!=]=\s*(self\.)?token\b"
    package = Path(inspect.getfile(sandbox_module)).parent
    sources = "".join(module.read_text(encoding="utf-8") for module in package.glob("*.py"))
    assert not re.findall(compared, sources)


# -- TLS and the command line ---------------------------------------------------------------


def test_an_instance_host_only_where_this_machine_resolves_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The browser test (tests/browser/test_instance_hosts.py) shows why a host of its own.
    localhost_names(monkeypatch, resolved=False)
    with Sandbox(execute=True, workdir=tmp_path) as sandbox:
        assert sandbox.external_url(sandbox.notebook_id, 8000).startswith("http://127.0.0.1:")
    localhost_names(monkeypatch, resolved=True)
    with Sandbox(execute=True, workdir=tmp_path) as sandbox:
        named = sandbox.external_url(sandbox.notebook_id, 8001)
        assert named.startswith(f"http://c-{sandbox.notebook_id}.localhost:")


def test_tls(session: requests.Session) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with Sandbox(tls=context) as sandbox:
        assert sandbox.base_url.startswith("https://127.0.0.1:")
        api = make_api(session, sandbox)
        with ca.cert_pem.tempfile() as ca_file:
            assert ok_data(api("GET", LIST, verify=ca_file))["total"] == 25
        with pytest.raises(requests.exceptions.SSLError):
            api("GET", LIST)


def test_command_line(session: requests.Session, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scnet_magic.sandbox", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(10)]
        exports = dict(
            line[len("export ") :].rstrip("\n").split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        assert list(exports)[:3] == ["SCNET_BASE_URL", "SCNET_TOKEN", "SCNET_NOTEBOOK_ID"]
        assert exports["SCNET_NOTEBOOK_ID"] == RUNNING
        assert JWT.fullmatch(exports["SCNET_TOKEN"])
        assert "Ctrl-C" in lines[9] and "off" in lines[9]
        # The exports to sign in with instead sign in to this sandbox: its login and platform
        # hosts, each on a port of its own beside the AI address.
        urls = [exports[name] for name in ("SCNET_LOGIN_URL", "SCNET_AC_URL", "SCNET_BASE_URL")]
        assert len(set(urls)) == 3
        signed = sign_in(
            exports["SCNET_USER"],
            exports["SCNET_ACCESS_KEY"],
            exports["SCNET_SECRET_KEY"],
            region="昆山",
            login_url=exports["SCNET_LOGIN_URL"],
            ac_url=exports["SCNET_AC_URL"],
        )
        assert signed.base_url == exports["SCNET_BASE_URL"]
        response = session.get(
            exports["SCNET_BASE_URL"] + LIST, headers={"token": exports["SCNET_TOKEN"]}, timeout=5
        )
        assert ok_data(response)["total"] == 25
        # The first block alone points every address at the sandbox: the doctor, which
        # checks the token on the platform host, finds nothing wrong.
        first_block = lines[: next(i for i, line in enumerate(lines) if line.startswith("#"))]
        doctor_env = {k: v for k, v in env.items() if not k.startswith("SCNET_")}
        doctor_env |= {
            name: value
            for name, value in exports.items()
            if any(line.startswith(f"export {name}=") for line in first_block)
        }
        doctor = subprocess.run(
            [sys.executable, "-m", "scnet_magic", "doctor", "--lang", "en"],
            env={**doctor_env, "SCNET_CONFIG_FILE": str(tmp_path / "none.toml")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "✗" not in doctor.stdout
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert f"GET {LIST} 200" in stderr
        assert exports["SCNET_TOKEN"] not in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_services_end_with_a_process_killed_without_stopping_its_sandbox(tmp_path: Path) -> None:
    # A kernel killed by its front end runs no atexit handler: what the sandbox started there
    # must end all the same, not keep its port and its card-hours on a real machine.
    port = free_port()
    code = (
        "import sys, time\n"
        "from scnet_magic import ScnetClient\n"
        "from scnet_magic.sandbox import Sandbox\n"
        f"sb = Sandbox(execute=True, workdir={str(tmp_path)!r}).start()\n"
        "client = ScnetClient(base_url=sb.base_url, token=sb.token)\n"
        f"r = client.start_service(sb.notebook_id, {port}, "
        f"'python3 -m http.server {port} --bind 127.0.0.1')\n"
        "print(r.ok, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "True"
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass  # the service answers while its sandbox's process lives
    finally:
        proc.kill()
        proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
        except OSError:
            return
        time.sleep(0.2)
    raise AssertionError(f"the service on port {port} outlived the process that started it")
