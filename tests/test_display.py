from __future__ import annotations

import json

from scnet_magic import i18n
from scnet_magic.display import (
    notebooks_html,
    notebooks_text,
    service_url_html,
    service_url_text,
    start_html,
    start_text,
    waiting_bundle,
    waiting_text,
)
from scnet_magic.models import NotebookList, ServiceUrl, StartResult
from scnet_magic.readiness import Probe, WaitProgress

URL = "https://c-1896476639463936002.ksai.scnet.cn:58043"


def result(**changes: object) -> StartResult:
    fields: dict[str, object] = {
        "code": "0",
        "msg": "success",
        "exec_success": False,
        "error_msg": f"对应的外部地址为:{URL}",
        "output": None,
        "url": URL,
        "notebook_id": "1896050410550136833",
        "port": 1223,
        "raw": {},
    }
    fields.update(changes)
    return StartResult(**fields)  # type: ignore[arg-type]


def test_pending_html_has_a_safe_clickable_link() -> None:
    page = start_html(result())
    assert (
        f'<a href="{URL}" target="_blank" rel="noopener noreferrer" '
        f'style="color:var(--jp-content-link-color, #1565c0);text-decoration:underline;'
        f'font-family:monospace">{URL}</a>'
    ) in page
    assert "scnet-pending" in page and "not answering yet" in page


def test_ok_and_error_states() -> None:
    assert result(exec_success=True).ok
    assert "scnet-ok" in start_html(result(exec_success=True))
    failed = result(code="10004")
    assert not failed.ok and not failed.pending and failed.status == "error"


def test_everything_from_the_server_is_escaped() -> None:
    evil = '<script>alert(1)</script>"'
    page = start_html(
        result(
            error_msg=evil,
            output=evil,
            url='https://x.cn/"onmouseover="alert(1)',
        )
    )
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert '"onmouseover="' not in page


def test_text_and_json_forms_contain_the_url() -> None:
    item = result(output="line one\nline two")
    assert URL in repr(item) and URL in str(item)
    assert "line two" in repr(item)
    data = json.loads(item.to_json())
    assert data["url"] == URL and data["status"] == "pending" and data["port"] == 1223
    assert data == item.to_dict()
    # JupyterLab would prefer a JSON tree over the HTML link: only HTML and text are shown.
    assert set(item._repr_mimebundle_()) == {"text/plain", "text/html"}


def test_long_output_is_clipped_in_html_but_kept_whole() -> None:
    item = result(output="x" * 50_000)
    assert len(start_html(item)) < 30_000
    assert len(item.output or "") == 50_000


def test_service_url_and_notebook_table() -> None:
    active = ServiceUrl("1", URL, "active", {})
    assert active.active and 'target="_blank"' in service_url_html(active)
    assert "No external address" in service_url_html(ServiceUrl("1", None, None, {}))
    rows = NotebookList.from_records(
        [{"id": "1896050410550136833", "notebookName": "<b>x</b>", "notebookStatus": "Running"}]
    )
    table = notebooks_html(rows)
    assert "1896050410550136833" in table and "&lt;b&gt;" in table
    assert "1896050410550136833" in notebooks_text(rows) and "(1 notebook)" in repr(rows)


def test_a_ready_result_says_after_how_long_and_drops_the_pending_text() -> None:
    pending = result()
    ready = pending.marked_ready(3.24)
    assert pending.ready_after is None and pending.pending  # the original is unchanged
    assert ready.ready and not ready.pending and not ready.ok and ready.status == "ready"
    assert repr(ready).startswith("Service is ready after 3.2 s: port 1223")
    page = start_html(ready)
    assert "scnet-ready" in page and f'href="{URL}"' in page
    # The platform's "nothing listens yet" message and the pending note are out of date now.
    assert "对应的外部地址" not in page and "not answering yet" not in page
    assert ready.to_dict()["ready"] is True and ready.to_dict()["ready_after"] == 3.24
    assert ready.error_msg == pending.error_msg  # still there for whoever needs it


def test_waiting_line_shows_elapsed_time_and_the_last_answer() -> None:
    progress = WaitProgress(URL, 12.4, 300, 7, Probe(502, "HTTP 502 Bad Gateway"))
    assert waiting_text(URL, 300, None) == f"Waiting up to 300 s for {URL} to answer…"
    line = waiting_text(URL, 300, progress)
    assert line == f"Waiting for {URL} to answer: 12 s of 300 s, check 7: HTTP 502 Bad Gateway"
    bundle = waiting_bundle(result(), 300, progress)
    assert bundle["text/plain"].endswith(line) and URL in bundle["text/plain"]
    assert "HTTP 502 Bad Gateway" in bundle["text/html"]


def test_no_displayed_bundle_offers_json() -> None:
    # JupyterLab and Notebook 7 rank their JSON viewer above HTML: offering application/json
    # would hide the clickable link behind a JSON tree.
    rows = NotebookList.from_records(
        [{"id": "1", "notebookName": "a", "notebookStatus": "Running"}]
    )
    for bundle in (
        result()._repr_mimebundle_(),
        ServiceUrl("1", URL, "active", {})._repr_mimebundle_(),
        rows._repr_mimebundle_(),
    ):
        assert set(bundle) == {"text/plain", "text/html"}


def test_a_pending_result_does_not_repeat_the_platform_text() -> None:
    url = "https://c-1896050410550136833.ksai.scnet.cn:58043"
    said = (
        "根据您提供的端口,未检测到可用的服务。若您的服务为特定的API接口,"
        f"系统将自动建立通路,对应的外部地址为:{url}"
    )
    pending = StartResult("0", "success", False, said, None, url, "1896050410550136833", 7860, {})
    assert "Platform message" not in start_text(pending) and "根据" not in start_html(pending)
    assert pending.error_msg == said  # kept for whoever needs it
    other = StartResult("0", "success", False, "端口被占用", None, url, "1", 7860, {})
    assert "端口被占用" in start_text(other) and "端口被占用" in start_html(other)


def test_notebook_statuses_are_translated_coloured_and_running_first() -> None:
    records = NotebookList.from_records(
        [
            {"id": "1", "notebookName": "a", "notebookStatus": "Terminated"},
            {"id": "2", "notebookName": "b", "notebookStatus": "Running"},
        ]
    )
    assert notebooks_text(records).splitlines()[1].startswith("2 ")
    assert 'style="text-align:left"' in notebooks_html(records)
    with i18n.using("zh"):
        assert "运行中" in notebooks_text(records) and "已停止" in notebooks_html(records)
        active = ServiceUrl("1", "https://x.cn", "active", {})
        assert "可访问" in service_url_text(active)
