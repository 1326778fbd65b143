"""ScnetClient against the sandbox over real loopback HTTP, and answer shapes in memory."""

from __future__ import annotations

import gzip
import json
import ssl
import time
from pathlib import Path

import pytest
import trustme
from hostile_server import Received, Reply, hostile_server
from sandbox_faults import FaultySandbox as Sandbox

from scnet_magic import (
    ApiError,
    ConfigError,
    HttpError,
    InvalidInput,
    MalformedResponse,
    RequestTimeout,
    ScnetClient,
    TransportError,
    config,
    i18n,
)
from scnet_magic.endpoints import START
from scnet_magic.transport import HttpTransport, MockTransport, Request, Response

from conftest import CANARY, free_port

DOC_URL_SHAPE = "https://c-{}.ksai.scnet.cn:58043"


def client_for(sb: Sandbox, **kwargs: object) -> ScnetClient:
    return ScnetClient(base_url=sb.base_url, token=sb.token, **kwargs)  # type: ignore[arg-type]


MEMORY_BASE = "https://memory.example"
ID = Sandbox.notebook_id


def answering(answer: Response, seen: list[Request] | None = None) -> ScnetClient:
    """A client whose every request is answered with ``answer``, in memory."""

    def handler(request: Request) -> Response:
        if seen is not None:
            seen.append(request)
        return answer

    return ScnetClient(base_url=MEMORY_BASE, token=CANARY, transport=MockTransport(handler))


def envelope(data: object) -> Response:
    return Response.json({"code": "0", "msg": "success", "data": data})


@pytest.mark.parametrize(
    ("answer", "error", "text"),
    [
        (Response.json({"code": "10008", "msg": "no"}, 401), ApiError, "10008"),
        (Response(200, b'{"code": "0", "data": {"execSu'), MalformedResponse, "not valid JSON"),
        (Response(502, b"<html>502 Bad Gateway</html>"), HttpError, "HTTP 502"),
        (Response(307, headers={"Location": "/again"}), HttpError, "redirected to /again"),
        (Response.json({"msg": "ok"}), MalformedResponse, "no 'code' field"),
        (Response.json({"code": None}), MalformedResponse, "'code' is null"),
        (Response(200, b" " * (3 * 1024 * 1024)), MalformedResponse, "larger than 2 MiB"),
        (envelope([]), MalformedResponse, "'data' is an array"),
        (envelope({"execSuccess": "yes"}), MalformedResponse, "'execSuccess' is a string"),
    ],
)
def test_answer_shapes_in_memory(answer: Response, error: type[Exception], text: str) -> None:
    seen: list[Request] = []
    with pytest.raises(error, match=text) as info:
        answering(answer, seen).start_service(ID, 1223)
    assert CANARY not in str(info.value) and CANARY not in repr(seen)
    assert [(r.method, r.url, r.body) for r in seen[:1]] == [
        ("POST", MEMORY_BASE + START.path, {"id": ID, "customizePort": "1223"})
    ]
    assert seen[0].headers["token"] == CANARY


def test_exact_request_on_the_wire(sandbox: Sandbox) -> None:
    client_for(sandbox).start_service(1896050410550136833, 1223, "python app.py --port 1223")
    (req,) = sandbox.start_requests()
    assert req.method == "POST" and req.path == START.path
    assert req.headers["token"] == "<redacted>"
    assert "authorization" not in {k.lower() for k in req.headers}
    assert req.headers.get("Content-Type", req.headers.get("content-type")) == "application/json"
    assert req.body == {
        "id": "1896050410550136833",
        "customizePort": "1223",
        "command": "python app.py --port 1223",
    }


def test_command_left_out_when_not_given(sandbox: Sandbox) -> None:
    client_for(sandbox).start_service("1896050410550136833", "8080")
    assert sandbox.start_requests()[0].body == {
        "id": "1896050410550136833",
        "customizePort": "8080",
    }


def test_documented_example_answer_is_pending_with_the_exact_url(sandbox: Sandbox) -> None:
    result = client_for(sandbox).start_service(sandbox.notebook_id, 1223, "python app.py")
    assert result.pending and not result.ok and result.code == "0"
    assert result.exec_success is False and result.output is None
    assert result.url == DOC_URL_SHAPE.format(sandbox.notebook_id)
    assert result.error_msg and result.error_msg.endswith(result.url)
    assert result.raw["data"]["errorMsg"] == result.error_msg
    assert (result.notebook_id, result.port) == (sandbox.notebook_id, 1223)


def test_real_service_is_ok_and_the_url_comes_from_the_url_query(
    exec_sandbox: Sandbox, tmp_path: Path
) -> None:
    (tmp_path / "instance" / "hello.txt").write_text("hello scnet")
    port = free_port()
    client = client_for(exec_sandbox)
    result = client.start_service(
        exec_sandbox.notebook_id, port, f"python -m http.server {port} --bind 127.0.0.1"
    )
    assert result.ok, result
    assert result.url and result.url.startswith("http://127.0.0.1:")
    paths = [r.path for r in exec_sandbox.requests]
    assert paths.count(START.path) == 1 and any("customize-service/url" in p for p in paths)
    import requests

    assert requests.get(result.url + "hello.txt", timeout=5).text == "hello scnet"


@pytest.mark.parametrize(
    ("notebook_id", "code", "fragment"),
    [
        ("1896050410550136834", "716866", "Terminated"),
        ("1234567890123456789", "10004", ""),
    ],
)
def test_platform_errors_become_api_errors(
    sandbox: Sandbox, notebook_id: str, code: str, fragment: str
) -> None:
    with pytest.raises(ApiError) as info:
        client_for(sandbox).start_service(notebook_id, 1223, "true")
    assert info.value.code == code and fragment in info.value.msg
    assert code in str(info.value) and info.value.hint


def test_wrong_token_is_10009_with_a_hint(sandbox: Sandbox) -> None:
    client = ScnetClient(base_url=sandbox.base_url, token=CANARY)
    with pytest.raises(ApiError) as info:
        client.start_service(sandbox.notebook_id, 1223)
    assert info.value.code == "10009" and "region" in info.value.hint
    assert CANARY not in info.value.user_message()


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.start_service("", 1223, "x"),
        lambda c: c.start_service("12a", 1223, "x"),
        lambda c: c.start_service("1896050410550136833", 0, "x"),
        lambda c: c.start_service("1896050410550136833", 65536, "x"),
        lambda c: c.start_service("1896050410550136833", "12.5", "x"),
        lambda c: c.start_service("1896050410550136833", 1223, "  "),
        lambda c: c.service_url("x1"),
        lambda c: c.list_notebooks(status="Sleeping"),
    ],
)
def test_bad_input_sends_nothing(sandbox: Sandbox, call: object) -> None:
    with pytest.raises(InvalidInput):
        call(client_for(sandbox))  # type: ignore[operator]
    assert sandbox.requests == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"base_url": "http://scnet-demo.accloud.cn"}, InvalidInput),
        ({"base_url": "ftp://127.0.0.1"}, InvalidInput),
        ({"token": "abc\r\nX-Evil: 1"}, InvalidInput),
        ({"token": ""}, InvalidInput),
    ],
)
def test_bad_settings_refused_before_sending(
    sandbox: Sandbox, kwargs: dict[str, str], error: type[Exception]
) -> None:
    args = {"base_url": sandbox.base_url, "token": sandbox.token, **kwargs}
    with pytest.raises(error):
        ScnetClient(**args)
    assert sandbox.requests == []


def test_no_token_anywhere_is_a_config_error(sandbox: Sandbox) -> None:
    with pytest.raises(ConfigError, match="No SCNET token"):
        ScnetClient(base_url=sandbox.base_url)


def test_connection_dropped_after_the_start_was_read_is_sent_once(sandbox: Sandbox) -> None:
    sandbox.fault = "drop"
    with pytest.raises(TransportError) as info:
        client_for(sandbox).start_service(sandbox.notebook_id, 1223, "python app.py")
    assert len(sandbox.start_requests()) == 1
    assert "may have reached" in info.value.hint


def test_slow_server_times_out_within_the_timeout(sandbox: Sandbox) -> None:
    sandbox.delay = 5.0
    client = client_for(sandbox, timeout=1.0)
    began = time.monotonic()
    with pytest.raises(RequestTimeout, match="within 1 s"):
        client.start_service(sandbox.notebook_id, 1223, "python app.py")
    assert time.monotonic() - began < 1.0 + 1.5
    assert len(sandbox.start_requests()) == 1


def test_connection_refused_is_a_transport_error_after_bounded_retries() -> None:
    port = free_port()  # nothing listens there any more
    client = ScnetClient(base_url=f"http://127.0.0.1:{port}", token=CANARY, timeout=2)
    began = time.monotonic()
    with pytest.raises(TransportError, match="connection refused") as info:
        client.start_service("1896050410550136833", 1223)
    assert time.monotonic() - began < 5
    assert CANARY not in str(info.value)


def test_an_answer_with_retry_after_is_an_answer_sent_once() -> None:
    """urllib3 would retry a GET answered 503 with Retry-After, then make it a RetryError."""

    def busy(request: Received) -> Reply:
        return Reply(503, b"busy", "Service Unavailable", [("Retry-After", "1")])

    with hostile_server(busy) as server, HttpTransport(5) as transport:
        with pytest.raises(HttpError, match="HTTP 503 Service Unavailable: busy"):
            transport.call(Request("GET", server.url + "/ai/x"))
        assert transport.probe(server.url, 5) == (503, "HTTP 503 Service Unavailable", None)
        assert len(server.received) == 2


def test_untrusted_certificate_is_a_transport_error_naming_tls() -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with Sandbox(tls=context) as https_sandbox:
        client = ScnetClient(base_url=https_sandbox.base_url, token=CANARY)
        with pytest.raises(TransportError, match="TLS certificate not trusted") as info:
            client.list_notebooks()
        assert CANARY not in str(info.value)
        # A wait's check says it once, not "TLS error (TLS certificate not trusted (…))".
        with HttpTransport(5) as transport:
            status, reason, _signed = transport.probe(https_sandbox.base_url, 5)
    assert status is None and reason.startswith("TLS certificate not trusted (")


def test_api_error_in_a_non_200_envelope() -> None:
    refused = Response.json({"code": "10008", "msg": "token expired", "data": None}, 401)
    with pytest.raises(ApiError) as info:
        answering(refused).start_service(ID, 1223)
    assert info.value.status == 401 and info.value.code == "10008"


def test_not_json_is_reported_with_status_and_body() -> None:
    cut = Response(200, b'{"code": "0", "msg": "success", "data": {"execSuccess": tr')
    with pytest.raises(MalformedResponse, match=r"HTTP 200, not valid JSON\): \{") as info:
        answering(cut).start_service(ID, 1223)
    assert "execSuccess" in info.value.body


def test_html_gateway_page_is_an_http_error() -> None:
    page = Response(
        502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", reason="Bad Gateway"
    )
    with pytest.raises(HttpError, match="HTTP 502") as info:
        answering(page).start_service(ID, 1223)
    assert info.value.status == 502 and "502" in info.value.body


def test_redirect_is_not_followed(sandbox: Sandbox) -> None:
    sandbox.fault = "redirect-loop"
    with pytest.raises(HttpError, match="redirected to") as info:
        client_for(sandbox).start_service(sandbox.notebook_id, 1223)
    assert info.value.status == 307
    assert len(sandbox.start_requests()) == 1


def test_service_url(sandbox: Sandbox) -> None:
    client = client_for(sandbox)
    before = client.service_url(sandbox.notebook_id)
    assert before.url is None and not before.active
    client.start_service(sandbox.notebook_id, 1223)
    after = client.service_url(sandbox.notebook_id)
    assert after.url == DOC_URL_SHAPE.format(sandbox.notebook_id)
    assert after.notebook_id == sandbox.notebook_id


@pytest.mark.parametrize(
    ("data", "url", "status"),
    [
        ({"status": "inactive", "url": None}, None, "inactive"),
        ({"url": "https://c-1.ksai.scnet.cn:58043"}, "https://c-1.ksai.scnet.cn:58043", None),
        ("地址：https://c-1.ksai.scnet.cn:58043。", "https://c-1.ksai.scnet.cn:58043", None),
        ({}, None, None),
        (None, None, None),
    ],
)
def test_service_url_shapes(data: object, url: str | None, status: str | None) -> None:
    found = answering(envelope(data)).service_url(ID)
    assert (found.url, found.status) == (url, status)


def test_service_url_of_an_unknown_shape_names_what_came() -> None:
    data = {"externalUrl": "https://c-1.ksai.scnet.cn:58043", "state": 1}
    with pytest.raises(MalformedResponse) as info:
        answering(envelope(data)).service_url(ID)
    message = str(info.value)
    assert "'data' has no 'url' or 'status' (it has: externalUrl, state)" in message
    assert "customize-service/url" in message


def test_a_refused_token_at_the_default_base_url_names_it(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no base URL set anywhere, calls go to the documentation's example host; a region's
    token is refused there. The sandbox plays that host (it cannot be reached here)."""
    monkeypatch.setattr(config, "DEFAULT_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("SCNET_TOKEN", CANARY)  # a token this host does not know
    with pytest.raises(ApiError) as info:
        ScnetClient().service_url(sandbox.notebook_id)
    assert info.value.code == "10009"
    assert info.value.hint.startswith(
        f"This went to {sandbox.base_url}, the default base URL (the documentation's example "
        "host): sign in with scnet login or %scnet_login"
    )
    monkeypatch.setenv("SCNET_BASE_URL", sandbox.base_url + "/")  # set: the usual hint
    with pytest.raises(ApiError) as info:
        ScnetClient().service_url(sandbox.notebook_id)
    assert "default base URL" not in info.value.hint


def test_list_notebooks_reads_every_page(sandbox: Sandbox) -> None:
    client = client_for(sandbox)
    records = client.list_notebooks()
    assert len(records) == 25 and len({r.raw["id"] for r in records}) == 25
    assert all(isinstance(r.raw["id"], str) for r in records)
    pages = [r.query.get("page") for r in sandbox.requests]
    assert pages == ["1", "2"]
    running = client.list_notebooks(status="running")
    assert running and {r.raw["notebookStatus"] for r in running} == {"Running"}
    assert sandbox.requests[-1].query["notebookStatus"] == "Running"
    assert [r.raw["notebookName"] for r in client.list_notebooks(name="llm")] == ["llm-api"]


def test_keep_alive_and_repr(sandbox: Sandbox) -> None:
    with client_for(sandbox) as client:
        for _ in range(3):
            client.start_service(sandbox.notebook_id, 1223)
        assert sandbox.token not in repr(client) and sandbox.base_url in repr(client)
        adapter = client.transport._session.get_adapter(sandbox.base_url)
        pools = adapter.poolmanager.pools
        (key,) = pools.keys()
        assert pools[key].num_connections == 1  # three requests, one connection


def test_canary_token_never_in_output_errors_or_logs(
    sandbox: Sandbox, debug_logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    client = ScnetClient(base_url=sandbox.base_url, token=CANARY, timeout=1)
    texts: list[str] = [repr(client)]
    for fault in (None, "html502", "truncated", "drop", "500-plain"):
        sandbox.fault = fault
        try:
            client.start_service(sandbox.notebook_id, 1223)
        except Exception as exc:
            texts += [str(exc), repr(exc), getattr(exc, "hint", "")]
            cause: BaseException | None = exc
            while cause is not None:
                texts.append(repr(cause))
                cause = cause.__cause__ or cause.__context__
    sandbox.fault = None
    sandbox.token, good = CANARY, sandbox.token  # make the canary valid: a success path too
    try:
        result = client.start_service(sandbox.notebook_id, 1223)
        texts += [repr(result), result._repr_html_(), json.dumps(result.to_dict())]
    finally:
        sandbox.token = good
    texts += [record.getMessage() for record in debug_logs.records]
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    assert debug_logs.records, "expected DEBUG records from the client and urllib3"
    for text in texts:
        assert CANARY not in text
    assert all(req.headers.get("token") == "<redacted>" for req in sandbox.requests)


def test_a_malformed_start_answer_says_the_command_may_be_running_in_the_language_shown() -> None:
    """The start's own hint comes before the transport's, both written when the error is
    shown: in the language in force then, as two sentences of that language."""
    not_json = Response(200, b"<html>gateway</html>")
    with pytest.raises(MalformedResponse) as english:
        answering(not_json).start_service(ID, 1223)
    assert english.value.hint.startswith("The command may already be running")
    assert "twice. The base URL may not be the API address." in english.value.hint
    with pytest.raises(MalformedResponse) as chinese:
        answering(not_json).start_service(ID, 1223)
    with i18n.using("zh"):
        assert chinese.value.hint.startswith("命令可能已在运行"), chinese.value.hint
        assert "两次。" in chinese.value.hint and "The" not in chinese.value.hint


def test_a_server_that_would_compress_gets_asked_for_plain_bytes() -> None:
    """A gzip answer would be read as garbage, and the size bound would count packed bytes."""
    envelope = {"code": "0", "msg": "success", "data": {"url": "https://x.example/"}}

    def compressing(request: Received) -> Reply:
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            packed = gzip.compress(json.dumps(envelope).encode())
            return Reply(200, packed, headers=[("Content-Encoding", "gzip")])
        return Reply(200, envelope)

    with hostile_server(compressing) as server, HttpTransport(5) as transport:
        assert transport.call(Request("GET", server.url + "/ai/x"))["data"] == envelope["data"]


def test_a_message_that_is_not_text_is_shown_as_json() -> None:
    refused = Response.json({"code": "1", "msg": {"why": "无"}, "data": None})
    with pytest.raises(ApiError) as info:
        answering(refused).start_service(ID, 1223)
    assert info.value.msg == '{"why": "无"}'
