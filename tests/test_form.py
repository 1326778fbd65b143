"""The start form, headless: real widgets, real threads, the sandbox over loopback."""

from __future__ import annotations

import getpass
import html
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from sandbox_faults import FaultySandbox as Sandbox

import scnet_magic
from scnet_magic import ApiError, StartResult, config
from scnet_magic.config import Settings
from scnet_magic.startform import StartForm

from conftest import CANARY, free_port
from frontends import widgets_in

ID = "1896050410550136833"
OTHER_ID = "1896476639463936002"  # llm-api, Running
TERMINATED_ID = "1896050410550136834"
WAIT = 30.0  # a bound for background requests, not a speed target
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def all_state(form: StartForm) -> str:
    return json.dumps([w.get_state() for w in widgets_in(form.widget)], default=repr)


def ready(form: StartForm) -> StartForm:
    assert form.wait(WAIT), "the notebook list did not finish"
    return form


def click_start(form: StartForm) -> None:
    form.start_button.click()
    assert form.wait(WAIT), "the start request did not finish"


def shown(form: StartForm) -> str:
    return html.unescape(form.problems.value + form.result_area.value)


def point_env_at(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, token: bool = True) -> None:
    monkeypatch.setenv("SCNET_BASE_URL", sandbox.base_url)
    if token:
        monkeypatch.setenv("SCNET_TOKEN", sandbox.token)


# -- showing the form ---------------------------------------------------------------------


def test_magic_without_arguments_shows_the_form_once(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    with capture_output() as bare:
        ip.run_cell("%scnet_start", store_history=True)
    assert len(bare.outputs) == 1
    assert WIDGET_VIEW in bare.outputs[0].data
    assert "start form" in bare.outputs[0].data["text/plain"]
    with capture_output() as assigned:
        ip.run_cell("f = %scnet_start", store_history=True)
    form = ip.user_ns["f"]
    assert isinstance(form, StartForm) and len(assigned.outputs) == 1
    assert assigned.outputs[0].data[WIDGET_VIEW]["model_id"] == form.widget.model_id
    ready(form)


def test_form_from_python_is_shown_once_with_its_defaults(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    with capture_output() as last_line:
        ip.run_cell("import scnet_magic\nscnet_magic.form(port=8000)", store_history=True)
    assert len(last_line.outputs) == 1
    with capture_output() as assigned:
        ip.run_cell("g = scnet_magic.form(port=8000)", store_history=True)
    assert len(assigned.outputs) == 1
    with capture_output() as later:
        ip.run_cell("g", store_history=True)
    assert len(later.outputs) == 1  # asked for again in a later cell: shown again
    assert ready(ip.user_ns["g"]).port.value == "8000"


def test_package_form_stays_callable_once_the_widgets_module_is_imported(
    sandbox_env: Sandbox,
) -> None:
    import scnet_magic.startform as module

    # The widgets module is named unlike the form() function, so importing it replaces nothing.
    assert callable(scnet_magic.form) and scnet_magic.form is not module
    with capture_output() as out:
        form = scnet_magic.form(port=8000)
    assert isinstance(ready(form), StartForm) and len(out.outputs) == 1


def test_session_settings_are_used(
    ip: InteractiveShell, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": sandbox.token)
    ip.run_line_magic("config", f'ScnetMagics.base_url = "{sandbox.base_url}"')
    try:
        with capture_output():
            ip.run_line_magic("scnet_token", "")
            from_magic = ready(ip.run_line_magic("scnet_start", ""))
            from_python = ready(scnet_magic.form(notebook_id=ID, port=1223))
        for form in (from_magic, from_python):
            assert "using %scnet_token" in form.token_note.value
            assert form.base_url.value == sandbox.base_url
            assert len(form.notebook_menu.options) == 25
        click_start(from_python)
        assert from_python.result is not None and from_python.result.pending
    finally:
        ip.run_line_magic("config", "ScnetMagics.base_url = None")
        ip.run_line_magic("scnet_token", "--clear")


def test_prefilled_from_configuration_and_defaults(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_env_at(monkeypatch, sandbox)
    monkeypatch.setenv("SCNET_NOTEBOOK_ID", OTHER_ID)
    form = ready(StartForm(port=7860, command="python webui.py"))
    assert form.notebook_id.value == OTHER_ID
    assert form.notebook_menu.value == OTHER_ID
    assert (form.port.value, form.command.value) == ("7860", "python webui.py")
    assert form.base_url.value == sandbox.base_url
    assert form.advanced.selected_index is None  # "Advanced" starts collapsed
    assert form.token.value == "" and "using SCNET_TOKEN" in form.token_note.value

    explicit = ready(StartForm(notebook_id=ID, base_url="https://scnet.example.cn"))
    assert (explicit.notebook_id.value, explicit.base_url.value) == (ID, "https://scnet.example.cn")


def test_unknown_or_secret_defaults_are_refused() -> None:
    with pytest.raises(TypeError, match="%scnet_token") as secret:
        StartForm(token=CANARY)
    assert CANARY not in str(secret.value)
    with pytest.raises(TypeError, match="prot"):
        StartForm(prot=8000)


# -- starting -----------------------------------------------------------------------------


def test_start_shows_the_result_with_a_clickable_link(sandbox_env: Sandbox) -> None:
    form = ready(StartForm(notebook_id=ID, port=1223, command="python app.py --port 1223\n"))
    click_start(form)
    url = f"https://c-{ID}.ksai.scnet.cn:58043"
    assert f'<a href="{url}" target="_blank"' in form.result_area.value
    assert "Started, not answering yet" in form.result_area.value
    assert isinstance(form.result, StartResult) and form.result.url == url
    assert form.error is None and form.problems.value == ""
    (request,) = sandbox_env.start_requests()
    assert request.body == {
        "id": ID,
        "customizePort": "1223",
        "command": "python app.py --port 1223",
    }
    assert not form.start_button.disabled and form.start_button.description == "Start"


def test_empty_command_is_left_out(sandbox_env: Sandbox) -> None:
    form = ready(StartForm(notebook_id=ID, port=1223))
    click_start(form)
    assert sandbox_env.start_requests()[0].body == {"id": ID, "customizePort": "1223"}


def test_the_started_service_answers_at_the_url(
    exec_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_env_at(monkeypatch, exec_sandbox)
    assert exec_sandbox.workdir is not None
    (Path(exec_sandbox.workdir) / "index.html").write_text("served through the form")
    port = free_port()
    command = f"{shlex.quote(sys.executable)} -m http.server {port} --bind 127.0.0.1"
    form = ready(StartForm(notebook_id=ID, port=port, command=command))
    click_start(form)
    assert form.result is not None and form.result.ok and form.result.url
    assert f'<a href="{form.result.url}" target="_blank"' in form.result_area.value
    assert "Service is up" in form.result_area.value
    assert requests.get(form.result.url, timeout=10).text == "served through the form"


def test_button_is_disabled_in_flight_and_a_second_click_sends_nothing(
    sandbox_env: Sandbox,
) -> None:
    form = ready(StartForm(notebook_id=ID, port=1223))
    # The sandbox holds the request until it is stopped, so "in flight" does not depend on
    # how fast this machine is.
    sandbox_env.delay = 600
    form.start_button.click()
    assert form.busy and form.start_button.disabled
    assert form.start_button.description == "Starting…"
    assert "Starting the service on port 1223" in form.result_area.value
    form.start_button.click()  # still in flight: ignored
    assert not form.wait(0.2)

    sandbox_env.stop()  # the platform drops the connection without answering
    assert form.wait(WAIT)
    assert len(sandbox_env.start_requests()) == 1  # neither the click nor a retry re-sent it
    assert "The request may have reached the platform" in shown(form)
    assert not form.busy and not form.start_button.disabled
    assert form.start_button.description == "Start"


def test_a_click_on_a_button_back_on_is_taken(sandbox_env: Sandbox) -> None:
    # The buttons come back on in their threads' last steps: a click from that moment on is
    # taken, not dropped as "still busy" (with the token typed for it).
    form = ready(StartForm(notebook_id=ID, port=1223))
    again = {"start": 1, "refresh": 1}  # one more click each, the moment it comes back on

    def click_when_back(name: str, button: Any) -> Callable[[dict[str, Any]], None]:
        def clicked(change: dict[str, Any]) -> None:
            if not change["new"] and again[name]:
                again[name] -= 1
                button.click()

        return clicked

    form.start_button.observe(click_when_back("start", form.start_button), "disabled")
    form.refresh_button.observe(click_when_back("refresh", form.refresh_button), "disabled")
    lists = sum(r.path.endswith("/notebook/list") for r in sandbox_env.requests)
    click_start(form)  # its last step clicks Start again
    form.refresh_button.click()
    assert form.wait(WAIT)  # the second start, and the first list, which clicks Refresh again
    assert ready(form)
    assert len(sandbox_env.start_requests()) == 2
    assert sum(r.path.endswith("/notebook/list") for r in sandbox_env.requests) >= lists + 2


def test_other_cells_run_while_a_start_is_in_flight(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    with capture_output():
        ip.run_cell(f"import scnet_magic\nf = scnet_magic.form(notebook_id='{ID}', port=1223)")
    form = ready(ip.user_ns["f"])
    sandbox_env.delay = 600
    form.start_button.click()  # returns at once: the request runs in a thread
    outcome = ip.run_cell("answer = 6 * 7")
    assert outcome.success and ip.user_ns["answer"] == 42
    assert form.busy and form.result is None  # the cell ran while the request was in flight
    sandbox_env.stop()
    assert form.wait(WAIT) and not form.busy


def test_a_slow_answer_is_posted_back_into_the_form(sandbox_env: Sandbox) -> None:
    form = ready(StartForm(notebook_id=ID, port=1223))
    sandbox_env.delay = 0.5
    form.start_button.click()
    assert form.wait(WAIT)
    assert form.result is not None and form.result.pending
    assert 'target="_blank"' in form.result_area.value
    assert not form.start_button.disabled


def test_api_error_is_one_line_with_a_hint(sandbox_env: Sandbox) -> None:
    form = ready(StartForm(notebook_id=TERMINATED_ID, port=1223))
    click_start(form)
    assert isinstance(form.error, ApiError) and form.result is None
    text = shown(form)
    assert "SCNet API error 716866" in text and form.error.hint in text
    assert "Traceback" not in text and "scnet-error" in form.result_area.value
    assert not form.start_button.disabled


def test_connection_failure_is_shown_in_the_form(sandbox_env: Sandbox) -> None:
    form = ready(StartForm(notebook_id=ID, port=1223))
    form.base_url.value = f"http://127.0.0.1:{free_port()}"
    click_start(form)
    assert "connection refused" in shown(form) and "Check the base URL" in shown(form)
    assert not form.busy and not form.start_button.disabled


# -- the token ----------------------------------------------------------------------------


def test_typed_token_is_used_once_and_never_kept_in_widget_state(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_env_at(monkeypatch, sandbox, token=False)
    form = ready(StartForm(notebook_id=ID, port=1223))
    assert "no token configured" in form.token_note.value
    assert form.token.trait_metadata("value", "echo_update") is False

    form.token.value = sandbox.token  # what the front end sends when the field loses focus
    assert form.token.value == ""  # moved out of the widget at once
    assert sandbox.token not in all_state(form)
    assert "typed token is ready" in form.token_note.value

    click_start(form)
    assert form.result is not None and form.result.pending  # the typed token was accepted
    for text in (all_state(form), repr(form), form.result_area.value, repr(form.result.raw)):
        assert sandbox.token not in text

    click_start(form)  # the typed token was forgotten: nothing to send with
    assert "No SCNET token is set" in shown(form)
    assert len(sandbox.start_requests()) == 1


def test_typed_token_overrides_the_configured_one_for_one_request(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_env_at(monkeypatch, sandbox, token=False)
    monkeypatch.setenv("SCNET_TOKEN", CANARY)  # a token the sandbox refuses
    form = ready(StartForm(notebook_id=ID, port=1223))
    assert "using SCNET_TOKEN" in form.token_note.value
    assert "Cannot list notebooks: SCNet API error 10009" in html.unescape(form.notebook_note.value)
    assert 'class="scnet-error"' in form.notebook_note.value  # styled as the error it is

    form.token.value = sandbox.token
    click_start(form)
    first = form.result
    assert first is not None and first.pending and form.error is None

    assert "using SCNET_TOKEN" in form.token_note.value  # the typed one is gone
    click_start(form)  # back to SCNET_TOKEN, which the sandbox refuses
    assert isinstance(form.error, ApiError) and form.error.code == "10009"
    assert form.result is first  # the last StartResult is kept
    for secret in (CANARY, sandbox.token):
        assert secret not in all_state(form) + repr(form)


# -- validation ---------------------------------------------------------------------------

BAD_INPUT = [
    ("port", "0", "Port must be from 1 to 65535, got 0"),
    ("port", "65536", "Port must be from 1 to 65535, got 65536"),
    ("port", "abc", "Port must be a whole number from 1 to 65535, got 'abc'"),
    ("port", "", "Port is empty"),
    ("port", "-1", "Port must be a whole number from 1 to 65535"),
    ("port", "12.5", "Port must be a whole number from 1 to 65535"),
    ("notebook_id", "", "Notebook id is empty"),
    ("notebook_id", "18960504105501368ab", "Notebook id must contain only digits"),
    ("notebook_id", "1896050 410550136833", "Notebook id must contain only digits"),
    ("command", "  \n\t ", "Command is empty"),
    ("base_url", "scnet-demo.accloud.cn", "Base URL must start with https://"),
    ("base_url", "ftp://scnet-demo.accloud.cn", "Base URL must start with https://"),
    ("base_url", "http://scnet-demo.accloud.cn", "plain http:// is allowed only for loopback"),
    ("base_url", "https://me:hunter2@scnet-demo.accloud.cn", "must not contain a user name"),
    ("base_url", "", "Base URL is empty"),
    ("token", CANARY + "\nX-Injected: 1", "Token must not contain spaces, line breaks"),
    ("token", "令牌", "Token must contain only ASCII characters"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_INPUT)
def test_bad_input_is_named_next_to_the_form_and_nothing_is_sent(
    sandbox_env: Sandbox, field: str, value: str, message: str
) -> None:
    form = ready(StartForm(notebook_id=ID, port=1223, command="python app.py"))
    sandbox_env.clear_log()
    getattr(form, field).value = value
    form.start_button.click()
    assert not form.busy and form.wait(WAIT)
    assert message in html.unescape(form.problems.value)
    assert form.error is not None and message in html.unescape(form.error.user_message())
    assert form.result_area.value == "" and form.result is None
    assert sandbox_env.requests == []
    assert not form.start_button.disabled
    for secret in (CANARY, "hunter2"):
        assert secret not in form.problems.value + all_state(form)
    if field == "base_url" and "@" in value:
        assert form.base_url.value == "https://scnet-demo.accloud.cn"  # credentials removed


def test_a_refused_start_clears_the_last_result_and_marks_the_bad_fields(
    sandbox_env: Sandbox,
) -> None:
    form = ready(StartForm(notebook_id=ID, port=1223))
    click_start(form)
    assert "scnet-result" in form.result_area.value
    form.port.value, form.command.value = "0", " "
    form.start_button.click()
    assert "got 0" in shown(form)
    assert form.result_area.value == ""  # the earlier result is not this attempt's
    marked = [
        w for w in (form.notebook_id, form.port, form.command) if "scnet-invalid" in w._dom_classes
    ]
    assert marked == [form.port, form.command]
    assert ".scnet-invalid" in form.problems.value  # the rule that outlines them
    form.port.value, form.command.value = "1223", ""
    click_start(form)
    assert not any("scnet-invalid" in w._dom_classes for w in (form.port, form.command))


def test_the_menu_follows_a_start_from_the_form(sandbox_env: Sandbox) -> None:
    form = ready(StartForm(notebook_id=ID))
    port = free_port()
    form.port.value = str(port)
    click_start(form)
    labels = {value: label for label, value in form.notebook_menu.options}
    assert f"port {port}" in labels[ID], labels[ID]
    assert "replaces" not in form.port_note.value  # the note agrees with the menu
    assert form.notebook_menu.value == ID


def test_every_problem_is_listed_at_once(sandbox_env: Sandbox) -> None:
    form = ready(StartForm(notebook_id="abc", port="0"))
    form.start_button.click()
    text = html.unescape(form.problems.value)
    assert "Notebook id must contain only digits" in text and "got 0" in text
    assert sandbox_env.start_requests() == []

    form.notebook_id.value, form.port.value = ID, "1223"  # fixed: the problems go away
    click_start(form)
    assert form.problems.value == "" and form.result is not None


def test_missing_token_is_a_problem_and_nothing_is_sent(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_env_at(monkeypatch, sandbox, token=False)
    form = ready(StartForm(notebook_id=ID, port=1223))
    form.start_button.click()
    assert "No SCNET token is set" in html.unescape(form.problems.value)
    assert "%scnet_token" in html.unescape(form.problems.value)
    assert sandbox.requests == []


def test_bad_setting_in_the_environment_is_shown_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCNET_BASE_URL", "ftp://scnet.example.cn")
    form = ready(StartForm(notebook_id=ID, port=1223))
    assert "(from SCNET_BASE_URL)" in html.unescape(form.problems.value)
    form.start_button.click()
    assert "(from SCNET_BASE_URL)" in html.unescape(form.problems.value)
    assert not form.busy


# -- the notebook menu --------------------------------------------------------------------


def test_notebook_menu_lists_running_instances_first(sandbox_env: Sandbox) -> None:
    form = ready(StartForm())
    labels = [label for label, _value in form.notebook_menu.options]
    assert len(labels) == 25  # both pages of the list
    statuses = [label.split(" · ")[1] for label in labels]
    assert statuses == sorted(statuses, key=lambda status: status != "Running")
    assert statuses.count("Running") == 6 and statuses[6] != "Running"
    assert labels[0] == f"sdxl-webui · Running · {ID}"
    assert f"old-experiment · Terminated · {TERMINATED_ID}" in labels
    assert "25 notebooks, 6 running" in form.notebook_note.value
    assert form.notebook_menu.value is None and form.notebook_id.value == ""


def test_picking_or_typing_a_notebook(sandbox_env: Sandbox) -> None:
    form = ready(StartForm(port=1223))
    form.notebook_menu.value = OTHER_ID
    assert form.notebook_id.value == OTHER_ID
    form.notebook_id.value = ID  # typed by hand: the menu follows
    assert form.notebook_menu.value == ID
    click_start(form)
    assert sandbox_env.start_requests()[-1].body["id"] == ID

    unlisted = "1896050410550139999"
    form.notebook_id.value = f" {unlisted} "
    assert form.notebook_menu.value is None
    click_start(form)  # still sent, with the typed id; the platform answers for it
    assert sandbox_env.start_requests()[-1].body["id"] == unlisted
    assert "SCNet API error 10004" in shown(form)


def test_refresh_reloads_the_list(sandbox_env: Sandbox) -> None:
    form = ready(StartForm())

    def list_calls() -> int:
        return sum(r.path.endswith("/notebook/list") for r in sandbox_env.requests)

    before = list_calls()
    form.refresh_button.click()
    assert ready(form) and list_calls() > before
    assert len(form.notebook_menu.options) == 25 and not form.refresh_button.disabled


def test_opening_reads_the_settings_once_and_refresh_reads_them_again(
    sandbox_env: Sandbox,
) -> None:
    read: list[Settings] = []

    def settings() -> Settings:
        read.append(config.resolve())
        return read[-1]

    form = ready(StartForm(settings=settings))
    assert len(read) == 1  # the fields, the language and the notebook list share one reading
    assert len(form.notebook_menu.options) == 25
    form.refresh_button.click()  # the user may have changed the settings since
    assert ready(form) and len(read) == 2


def test_menu_appears_when_a_token_is_set_and_refresh_is_clicked(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_env_at(monkeypatch, sandbox, token=False)
    form = ready(StartForm(notebook_id=ID))
    # No lone Refresh button and no menu with nothing in it: the id field and one line.
    assert form.notebook_row.layout.display == "none"
    assert form.notebook_id.layout.display is None
    assert "to list your notebooks" in form.notebook_note.value
    assert "%scnet_login" in form.notebook_note.value
    assert "scnet-error" not in form.notebook_note.value
    assert sandbox.requests == []

    monkeypatch.setenv("SCNET_TOKEN", sandbox.token)
    form.refresh_button.click()
    ready(form)
    assert form.notebook_row.layout.display is None
    assert len(form.notebook_menu.options) == 25 and form.notebook_menu.value == ID
    assert "using SCNET_TOKEN" in form.token_note.value


# -- waiting until ready ------------------------------------------------------------------


@pytest.mark.slow
def test_wait_until_ready_reports_ready_after_the_service_listens(
    gateway_env: Sandbox, tmp_path: Path
) -> None:
    (tmp_path / "instance" / "page.txt").write_text("up at last")
    port = free_port()
    form = ready(StartForm(wait=30))
    assert form.wait_ready.value and form.wait_seconds.value == 30
    form.port.value = str(port)
    form.command.value = f"sleep 2 && {sys.executable} -m http.server {port} --bind 127.0.0.1"
    click_start(form)
    assert form.result is not None and form.result.ready, shown(form)
    assert form.result.ready_after is not None and form.result.ready_after >= 1.5
    assert "Service is ready" in shown(form)
    assert form.stop_button.layout.display == "none" and not form.start_button.disabled
    assert requests.get(form.result.url + "page.txt", timeout=5).text == "up at last"
    assert len(gateway_env.start_requests()) == 1  # waiting never sends the start again


def test_not_ready_in_time_keeps_the_result_and_says_why(gateway_env: Sandbox) -> None:
    form = ready(StartForm())
    form.wait_ready.value = True
    form.wait_seconds.value = 1
    form.port.value = str(free_port())
    form.command.value = "sleep 30"
    click_start(form)
    assert form.result is not None and not form.result.ready
    assert type(form.error).__name__ == "NotReady"
    text = shown(form)
    assert "Started, not answering yet" in text and "1 s" in text
    assert len(gateway_env.start_requests()) == 1


def test_stop_waiting_ends_the_wait_and_keeps_the_kernel_free(gateway_env: Sandbox) -> None:
    form = ready(StartForm(wait=600))
    form.port.value = str(free_port())
    form.command.value = "sleep 60"
    form.start_button.click()
    deadline = time.monotonic() + WAIT
    while "Waiting for" not in shown(form):  # the wait runs in its thread; this one is free
        assert time.monotonic() < deadline, shown(form)
        time.sleep(0.05)
    assert form.start_button.disabled and form.stop_button.layout.display is None
    form.stop_button.click()
    assert form.wait(WAIT)
    assert "Stopped waiting; the service may still be starting." in shown(form)
    assert form.result_area.value.count('class="scnet-result') == 1  # part of the card
    assert form.error is None and form.result is not None and not form.result.ready
    assert not form.start_button.disabled


def test_token_note_names_the_sandbox_as_the_source(ip: InteractiveShell) -> None:
    with capture_output():
        ip.run_line_magic("scnet_sandbox", "")
    try:
        form = ready(StartForm())
        assert "using %scnet_sandbox" in form.token_note.value
    finally:
        with capture_output():
            ip.run_line_magic("scnet_sandbox", "--stop")


def test_up_to_seconds_is_editable_only_while_waiting(sandbox_env: Sandbox) -> None:
    form = ready(StartForm())
    assert not form.wait_ready.value and form.wait_seconds.disabled
    form.wait_ready.value = True
    assert not form.wait_seconds.disabled
    form.wait_ready.value = False
    assert form.wait_seconds.disabled
    assert not ready(StartForm(wait=30)).wait_seconds.disabled


def test_a_stopped_sandbox_is_noticed_as_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with Sandbox() as gone:
        point_env_at(monkeypatch, gone)
    form = ready(StartForm(notebook_id=ID, port=1223))  # its address now refuses connections
    note = html.unescape(form.notebook_note.value)
    assert 'class="scnet-error"' in note and "connection refused" in note
    click_start(form)
    assert "scnet-error" in form.result_area.value and "connection refused" in shown(form)
