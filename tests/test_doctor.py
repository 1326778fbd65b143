"""``scnet doctor`` and ``%scnet_doctor``: read-only checks against the sandbox, each fault
named in one line, the shape report, and never a secret."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from sandbox_faults import _FIXED_FAULTS, FaultySandbox

from scnet_magic import config
from scnet_magic.account import renew_token
from scnet_magic.doctor import diagnose, shape
from scnet_magic.guard import start_guard, stop_guard
from scnet_magic.transport import MockTransport, Request, Response

from conftest import CANARY
from frontends import run_scnet

EXPECTED = Path(__file__).with_name("doctor_expected_shapes.json")
_LIST = "/ai/openapi/v2/notebook/list"
_CENTER = "/ac/openapi/v2/center"


def env_of(sb: FaultySandbox, token: str | None = None) -> dict[str, str]:
    return {
        "SCNET_BASE_URL": sb.base_url,
        "SCNET_TOKEN": token or sb.token,
        "SCNET_LOGIN_URL": sb.login_url,
        "SCNET_AC_URL": sb.ac_url,
    }


@pytest.fixture(autouse=True)
def _no_guards(guard_dir: Path) -> None:
    """A guard folder of the test's own: no guard of the machine's in the checks."""


def test_every_check_passes_against_the_sandbox(sandbox: FaultySandbox, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    run = run_scnet(
        ["doctor", "--id", sandbox.notebook_id, "--report", str(report)], env_of(sandbox)
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "✗" not in run.stdout
    for found in (
        "✓ token state: valid",
        "✓ clock agrees",
        "✓ region discovery",
        "✓ notebook list",
    ):
        assert found in run.stdout
    assert "SCNET_TOKEN from SCNET_TOKEN" in run.stdout
    assert "`data.aiUrls[].enable` missing, read as enabled" in run.stdout
    written = json.loads(report.read_text())
    assert written["version"]
    assert written["answers"] == json.loads(EXPECTED.read_text())["answers"]
    # Nothing but reading: no start, stop, boot or renewal reached the sandbox.
    assert {r.method for r in sandbox.requests} == {"GET"}


def test_shape_keeps_keys_and_types_never_values() -> None:
    data = {"records": [{"id": "1896050410550136833", "port": 8080, "on": True}, {"x": 1}], "e": []}
    assert shape(data) == {
        "records": [{"id": "string", "port": "number", "on": "boolean"}],
        "e": [],
    }
    assert shape(None) == "null"


def test_an_unknown_token_is_named(sandbox: FaultySandbox) -> None:
    run = run_scnet(["doctor"], env_of(sandbox, token=sandbox.token[:-4] + "AAAA"))
    assert run.returncode == 1
    assert "✗ token state:" in run.stdout
    assert "10009" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def test_a_region_without_an_enabled_address_is_named(sandbox: FaultySandbox) -> None:
    sandbox.addresses_enabled = False
    run = run_scnet(["doctor"], env_of(sandbox))
    assert run.returncode == 1
    assert "no usable AI address (aiUrls)" in run.stdout


def test_a_shape_the_client_does_not_read_is_named(sandbox: FaultySandbox) -> None:
    sandbox.answers[_LIST] = {"code": "0", "msg": "success", "data": {"total": "3", "rows": []}}
    run = run_scnet(["doctor"], env_of(sandbox))
    assert run.returncode == 1
    assert (
        "✗ GET /ai/openapi/v2/notebook/list: `data.records`: missing, expected array" in run.stdout
    )


def test_a_port_as_text_is_read(sandbox: FaultySandbox) -> None:
    record = {
        "id": "1896050410550136833",
        "notebookName": "n",
        "notebookStatus": "Running",
        "customsizePort": "8080",
    }
    sandbox.answers[_LIST] = {"code": "0", "msg": "ok", "data": {"total": 1, "records": [record]}}
    run = run_scnet(["doctor"], env_of(sandbox))
    assert run.returncode == 0, run.stdout
    assert (
        "`data.records[].customsizePort`: string, expected number or string or null" in run.stdout
    )


def test_a_base_url_other_than_the_regions_is_named(sandbox: FaultySandbox) -> None:
    sandbox.answers[_CENTER] = {
        "code": "0",
        "msg": "ok",
        "data": [{"aiUrls": [{"url": "http://127.0.0.1:9/ai", "enable": "true"}]}],
    }
    run = run_scnet(["doctor"], env_of(sandbox))
    assert run.returncode == 1
    assert "✗ the base URL setting" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def test_a_platform_that_does_not_answer_is_named(sandbox: FaultySandbox) -> None:
    env = {
        **env_of(sandbox),
        "SCNET_AC_URL": "http://127.0.0.1:9",
        "SCNET_LOGIN_URL": "http://127.0.0.1:9",
    }
    run = run_scnet(["doctor", "--timeout", "5"], env)
    assert run.returncode == 1
    assert "✗ the login host" in run.stdout
    assert "✗ token state:" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def test_no_token_is_named(sandbox: FaultySandbox) -> None:
    env = env_of(sandbox)
    del env["SCNET_TOKEN"]
    run = run_scnet(["doctor"], env)
    assert run.returncode == 1
    assert "✗ no token is set" in run.stdout


def test_a_config_file_others_can_read_is_named(
    sandbox: FaultySandbox, isolated_config: Path
) -> None:
    isolated_config.write_text('language = "en"\n')
    isolated_config.chmod(0o644)
    run = run_scnet(["doctor"], env_of(sandbox))
    assert run.returncode == 1
    assert "can be read by other users (mode 644)" in run.stdout
    isolated_config.chmod(0o600)
    assert run_scnet(["doctor"], env_of(sandbox)).returncode == 0


class _SkewedDate(BaseHTTPRequestHandler):
    def date_time_string(self, timestamp: float | None = None) -> str:
        return "Mon, 01 Jan 2001 00:00:00 GMT"

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def skewed_login_host() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SkewedDate)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_clock_off_the_login_hosts_is_named(
    sandbox: FaultySandbox, skewed_login_host: str
) -> None:
    run = run_scnet(["doctor"], {**env_of(sandbox), "SCNET_LOGIN_URL": skewed_login_host})
    assert run.returncode == 1
    assert "✗ this machine's clock is" in run.stdout


def test_bad_usage_exits_2_and_sends_nothing(sandbox: FaultySandbox) -> None:
    assert run_scnet(["doctor", "--id", "abc"], env_of(sandbox)).returncode == 2
    assert run_scnet(["doctor", "--bogus"], env_of(sandbox)).returncode == 2
    assert sandbox.requests == []


def test_never_a_secret_in_the_output_or_the_report(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    with FaultySandbox(token=CANARY) as sb:
        sb.answers[_LIST] = {
            "code": "0",
            "msg": CANARY,
            "data": {"total": 1, "records": [{"id": CANARY}]},
        }
        run = run_scnet(["doctor", "--id", sb.notebook_id, "--report", str(report)], env_of(sb))
        refused = run_scnet(["doctor"], {**env_of(sb), "SCNET_AC_URL": "http://127.0.0.1:9"})
    for text in (run.stdout, run.stderr, report.read_text(), refused.stdout, refused.stderr):
        for secret in (CANARY, *CANARY.split(".")[1:]):
            assert secret not in text


def test_the_magic_runs_the_same_checks(
    ip: InteractiveShell, sandbox: FaultySandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env_of(sandbox).items():
        monkeypatch.setenv(name, value)
    report = tmp_path / "r.json"
    with capture_output() as out:
        found = ip.run_line_magic("scnet_doctor", f"--id {sandbox.notebook_id} --report {report}")
    assert found.passed, out.stdout
    assert "✓ notebook list" in out.stdout
    assert json.loads(report.read_text())["answers"] == json.loads(EXPECTED.read_text())["answers"]


def test_the_checks_speak_chinese(sandbox: FaultySandbox) -> None:
    run = run_scnet(["--lang", "zh", "doctor"], env_of(sandbox))
    assert run.returncode == 0, run.stdout
    assert "✓ 令牌状态：有效" in run.stdout
    assert "按已启用读取" in run.stdout


def _hostile(request: Request) -> Response:
    """A platform that quotes the token back, answers HTML, and a token as its code."""
    token = request.headers["token"]
    path = request.url.split("?")[0]
    if path.endswith("/tokens/state"):
        return Response.json({"code": "10009", "msg": f"unknown token {token}", "data": None})
    if path.endswith("/center"):
        return Response(200, b"<html><body>gateway " + token.encode() + b"</body></html>")
    return Response.json({"code": token, "msg": token, "data": {token: [token]}})


def test_hostile_answers_are_named_without_the_token() -> None:
    settings = config.resolve(token=CANARY, base_url="https://ai.example.invalid")
    found = diagnose(settings, transport=MockTransport(_hostile))
    text = "\n".join(found.lines())
    report = json.dumps(found.report(), ensure_ascii=False)
    assert not found.passed
    assert "✗ token state: " in text and "10009" in text
    assert "✗ region discovery at" in text and "not valid JSON" in text
    assert "✗ notebook list at" in text
    assert [a["code"] for a in found.report()["answers"]] == ["10009", None, "<string>"]
    for secret in (CANARY, *CANARY.split(".")[1:]):
        assert secret not in text
        assert secret not in report


def test_json_output(sandbox: FaultySandbox) -> None:
    run = run_scnet(["doctor", "--json"], env_of(sandbox))
    assert run.returncode == 0
    found = json.loads(run.stdout)
    assert found["passed"] is True
    assert {"state": "pass", "text": "token state: valid", "hint": ""} in found["checks"]


def test_each_guard_and_whether_its_service_listens(sandbox: FaultySandbox) -> None:
    service = socket.create_server(("127.0.0.1", 0))
    port = service.getsockname()[1]
    record = start_guard(port, "a password here", host="127.0.0.1")
    try:
        run = run_scnet(["doctor"], env_of(sandbox))
        assert run.returncode == 0, run.stdout
        assert (
            f"✓ guard on port {record.port} for 127.0.0.1:{port}: the service listens" in run.stdout
        )
        service.close()
        run = run_scnet(["doctor"], env_of(sandbox))
        assert run.returncode == 1
        assert f"127.0.0.1:{port}: nothing listens on the service's port" in run.stdout
        assert f"scnet guard --stop {record.port}" in run.stdout
    finally:
        service.close()
        stop_guard(record.port)


def test_a_report_that_cannot_be_written_is_bad_usage(
    sandbox: FaultySandbox, tmp_path: Path
) -> None:
    for where in (str(tmp_path / "no-such-folder" / "r.json"), str(tmp_path)):
        run = run_scnet(["doctor", "--report", where], env_of(sandbox))
        assert run.returncode == 2
        assert "--report:" in run.stderr and "Traceback" not in run.stderr
    assert sandbox.requests == []


def test_an_expired_token_is_named(sandbox: FaultySandbox) -> None:
    old = sandbox.issue_token()
    renew_token(old, ac_url=sandbox.ac_url, timeout=10)
    run = run_scnet(["doctor"], env_of(sandbox, token=old))
    assert run.returncode == 1
    assert "✗ token state:" in run.stdout and "10008" in run.stdout


def test_region_discovery_as_the_documented_list_passes(sandbox: FaultySandbox) -> None:
    sandbox.center_as_list = True
    run = run_scnet(["doctor"], env_of(sandbox))
    assert run.returncode == 0, run.stdout
    assert "`data`: array, expected object or array" in run.stdout


def test_a_token_state_with_an_expiry_says_it(sandbox: FaultySandbox) -> None:
    state = {"expireTime": "2026-12-31 00:00:00", "clusterName": "华东一区"}
    sandbox.answers["/ac/openapi/v2/tokens/state"] = {"code": "0", "msg": "ok", "data": state}
    run = run_scnet(["doctor"], env_of(sandbox))
    assert "token state: " in run.stdout and "2026-12-31 00:00:00" in run.stdout
    assert "华东一区" in run.stdout


def test_a_region_address_that_is_not_a_url_is_named(sandbox: FaultySandbox) -> None:
    entry = {"name": "x\n\x1b[31mred", "aiUrls": [{"url": "ftp://somewhere/ai"}]}
    sandbox.answers[_CENTER] = {"code": "0", "msg": "ok", "data": entry}
    run = run_scnet(["doctor"], env_of(sandbox))
    assert run.returncode == 1
    assert "✗ region discovery at" in run.stdout and "AI address is not usable" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def _good(request: Request) -> dict[str, Any]:
    path = request.url.split("?")[0]
    if path.endswith("/tokens/state"):
        return {"code": "0", "msg": "success", "data": "token is valid"}
    if path.endswith("/center"):
        return {"code": "0", "msg": "success", "data": {"aiUrls": [{"url": AI + "/ai"}]}}
    return {"code": "0", "msg": "success", "data": {"total": 0, "records": []}}


AI = "https://ai.example.invalid"
_JSON_FAULTS: dict[str, Callable[[dict[str, Any]], object]] = {
    "data-null": lambda envelope: {**envelope, "data": None},
    "data-list": lambda envelope: {**envelope, "data": [envelope["data"]]},
    "code-missing": lambda envelope: {k: v for k, v in envelope.items() if k != "code"},
    "truncated": lambda envelope: json.dumps(envelope)[:-1],
}


@pytest.mark.parametrize("fault", sorted([*_FIXED_FAULTS, *_JSON_FAULTS]))
def test_each_faulty_answer_is_named_in_one_line(fault: str) -> None:
    def handler(request: Request) -> Response:
        if fault in _FIXED_FAULTS:
            status, _type, body = _FIXED_FAULTS[fault]
            return Response(status, body)
        changed = _JSON_FAULTS[fault](_good(request))
        return (
            Response(200, changed.encode()) if isinstance(changed, str) else Response.json(changed)
        )

    settings = config.resolve(token=CANARY, base_url=AI)
    found = diagnose(settings, transport=MockTransport(handler))
    failed = [check for check in found.checks if check.state == "fail"]
    assert failed, fault
    for check in failed:
        assert "\n" not in check.text and "Traceback" not in check.text
    assert all(answer.endpoint.startswith("GET /") for answer in found.answers)


def test_the_sandbox_answers_pass_in_memory_too() -> None:
    found = diagnose(
        config.resolve(token=CANARY, base_url=AI),
        transport=MockTransport(lambda request: Response.json(_good(request))),
    )
    assert found.passed, "\n".join(found.lines())


def test_the_magic_names_where_the_sessions_token_came_from(
    ip: InteractiveShell, sandbox: FaultySandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = env_of(sandbox)
    del env["SCNET_TOKEN"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    session = ip.magics_manager.registry["ScnetMagics"].session
    session.use_token(sandbox.token, "%scnet_token")
    try:
        with capture_output() as out:
            found = ip.run_line_magic("scnet_doctor", "")
    finally:
        session.use_token(None)
    assert found.passed, out.stdout
    assert "SCNET_TOKEN from %scnet_token" in out.stdout
    assert sandbox.token not in out.stdout


def test_an_answer_nested_past_the_stack_is_recorded_not_a_crash() -> None:
    from scnet_magic.doctor import _seen
    from scnet_magic.transport import Request, Response

    deep = b'{"code": "0", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    answer = _seen(Request("GET", "https://x/ai/openapi/v2/notebook/list"), Response(200, deep))
    assert answer.status == 200
