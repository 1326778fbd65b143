"""The magics in a real IPython shell, against the sandbox over loopback."""

from __future__ import annotations

import getpass
import html
import os
import signal
import stat
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.oinspect import getdoc
from IPython.utils.capture import capture_output
from sandbox_faults import FaultySandbox as Sandbox

from scnet_magic import ConfigError, NotebookList, ServiceUrl, StartResult
from scnet_magic.config import read_config_file
from scnet_magic.magics import ScnetMagics

from conftest import CANARY, SECRET_CANARY, free_port, said, terminal_ipython

ID = "1896050410550136833"


def magics(ip: InteractiveShell) -> ScnetMagics:
    found = ip.magics_manager.registry["ScnetMagics"]
    assert isinstance(found, ScnetMagics)
    return found


def test_line_magic_displays_and_returns_the_result(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    with capture_output() as out:
        result = ip.run_line_magic(
            "scnet_start", f'--id {ID} --port 1223 --command "python app.py"'
        )
    assert isinstance(result, StartResult) and result.pending
    assert result.url == f"https://c-{ID}.ksai.scnet.cn:58043"
    # "Starting …" while the request is in flight, emptied when the answer comes, then the
    # result in a display of its own.
    starting, emptied, shown = out.outputs
    assert starting.data["text/plain"] == f"Starting the service on port 1223 of notebook {ID}…"
    assert emptied.update and emptied.transient["display_id"] == starting.transient["display_id"]
    assert emptied.data == {"text/plain": "", "text/html": ""}
    assert not shown.update
    assert f'href="{result.url}"' in shown.data["text/html"]
    assert 'target="_blank"' in shown.data["text/html"]
    assert result.url in shown.data["text/plain"]
    assert sandbox_env.start_requests()[0].body == {
        "id": ID,
        "customizePort": "1223",
        "command": "python app.py",
    }


def test_bare_magic_in_a_cell_is_shown_once_and_assignment_shows_it_too(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    def displays(outputs: list[Any]) -> int:
        """Displays of the result (not the "Starting…" line, nor updates in place)."""
        return sum(
            1
            for output in outputs
            if not output.update and not output.data["text/plain"].startswith("Starting the")
        )

    with capture_output() as bare:
        ip.run_cell(f"%scnet_start --id {ID} --port 1223", store_history=True)
    assert displays(bare.outputs) == 1
    with capture_output() as assigned:
        ip.run_cell(f"r = %scnet_start --id {ID} --port 1224", store_history=True)
    assert displays(assigned.outputs) == 1
    with capture_output() as later:
        ip.run_cell("r", store_history=True)
    assert len(later.outputs) == 1 and "1224" in later.outputs[0].data["text/plain"]


def test_default_notebook_id_from_config(ip: InteractiveShell, sandbox_env: Sandbox) -> None:
    ip.run_line_magic("config", f'ScnetMagics.notebook_id = "{ID}"')
    try:
        with capture_output():
            result = ip.run_line_magic("scnet_start", "--port 7860 --command 'python webui.py'")
        assert result.notebook_id == ID
    finally:
        ip.run_line_magic("config", "ScnetMagics.notebook_id = None")


def test_cell_magic_sends_the_body_verbatim(ip: InteractiveShell, sandbox_env: Sandbox) -> None:
    body = (
        "cd /root/SimpleSDXL && python entry_with_update.py --listen 0.0.0.0 \\\n"
        "  --port 1223 > /root/sd.log 2>&1\n"
    )
    with capture_output():
        result = ip.run_cell_magic("scnet_start", f"--id {ID} --port 1223", body)
    assert result.pending
    assert sandbox_env.start_requests()[0].body["command"] == body.rstrip("\n")


def test_cell_magic_through_run_cell(ip: InteractiveShell, sandbox_env: Sandbox) -> None:
    with capture_output() as out:
        outcome = ip.run_cell(f"%%scnet_start --id {ID} --port 1223\necho 'a b' && sleep 1\n")
    assert outcome.success, outcome.error_in_exec
    assert sandbox_env.start_requests()[0].body["command"] == "echo 'a b' && sleep 1"
    # "Starting…", emptied in place, then the result.
    assert [output.update for output in out.outputs] == [False, True, False]


@pytest.mark.parametrize(
    ("line", "cell", "fragment"),
    [
        (f"--id {ID} --port 0", None, "Port must be from 1 to 65535"),
        (f"--id {ID} --port abc", None, "Port must be a whole number"),
        (f"--id {ID}", None, "--port is required"),
        ("--port 1223", None, "No notebook id"),
        ("--id 12ab --port 1223", None, "Notebook id must contain only digits"),
        (f'--id {ID} --port 1223 --command ""', None, "Command is empty"),
        (f'--id {ID} --port 1223 --command "python app.py', None, "check the quotes"),
        (f"--id {ID} --port 1223 --bogus", None, "Unknown option --bogus"),
        (f"--id {ID} --port", None, "expected one argument"),
        (f"--id {ID} --port 1223", "   \n", "Command is empty"),
        (f"--id {ID} --port 1223 --command x", "python a.py", "not both"),
        (f"--id {ID} --port 1223 --wait 0", None, "--wait: timeout must be a positive number"),
        (f"--id {ID} --port 1223 --wait soon", None, "--wait: timeout must be a positive"),
    ],
)
def test_bad_input_is_one_usage_line_and_sends_nothing(
    ip: InteractiveShell, sandbox_env: Sandbox, line: str, cell: str | None, fragment: str
) -> None:
    with pytest.raises(UsageError) as info:
        if cell is None:
            ip.run_line_magic("scnet_start", line)
        else:
            ip.run_cell_magic("scnet_start", line, cell)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)
    assert sandbox_env.requests == []


def test_api_error_is_a_usage_error_with_hint(ip: InteractiveShell, sandbox_env: Sandbox) -> None:
    with pytest.raises(
        UsageError, match=r"716866.*Terminated.*The instance is Terminated\. Add --boot"
    ):
        ip.run_line_magic("scnet_start", "--id 1896050410550136834 --port 1223")


def test_usage_error_stops_run_cell_without_traceback(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    with capture_output() as out:
        outcome = ip.run_cell(f"%scnet_start --id {ID} --port 99999\nran_after = True")
    assert not outcome.success
    assert "ran_after" not in ip.user_ns
    assert "UsageError: Port must be from 1 to 65535" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr + out.stdout


def test_short_errors_off_shows_the_real_exception(
    ip: InteractiveShell, sandbox_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCNET_TOKEN")
    ip.run_line_magic("config", "ScnetMagics.short_errors = False")
    try:
        with pytest.raises(ConfigError):
            ip.run_line_magic("scnet_start", f"--id {ID} --port 1223")
    finally:
        ip.run_line_magic("config", "ScnetMagics.short_errors = True")


def test_missing_token_says_how_to_give_one(ip: InteractiveShell, sandbox: Sandbox) -> None:
    ip.run_line_magic("config", f'ScnetMagics.base_url = "{sandbox.base_url}"')
    try:
        with pytest.raises(UsageError, match=r"%scnet_token.*SCNET_TOKEN.*token ="):
            ip.run_line_magic("scnet_start", f"--id {ID} --port 1223")
    finally:
        ip.run_line_magic("config", "ScnetMagics.base_url = None")
    assert sandbox.requests == []


def test_scnet_token_prompts_hidden_and_keeps_it_in_memory(
    ip: InteractiveShell, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return sandbox.token

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    ip.run_line_magic("config", f'ScnetMagics.base_url = "{sandbox.base_url}"')
    try:
        with capture_output() as out:
            ip.run_line_magic("scnet_token", "")
            result = ip.run_line_magic("scnet_start", f"--id {ID} --port 1223")
        assert prompts and result.pending
        assert sandbox.token not in out.stdout + out.stderr
        with capture_output():
            ip.run_line_magic("scnet_token", "--clear")
        with pytest.raises(UsageError, match="No SCNET token"):
            ip.run_line_magic("scnet_start", f"--id {ID} --port 1223")
    finally:
        ip.run_line_magic("config", "ScnetMagics.base_url = None")


def test_token_on_the_magic_line_is_refused_without_echo(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("scnet_token", CANARY)
    assert CANARY not in str(info.value) and "history" in str(info.value)


def test_bad_token_from_the_prompt(ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "abc\r\nX-Evil: 1")
    with pytest.raises(UsageError, match="line breaks"):
        ip.run_line_magic("scnet_token", "")
    assert magics(ip).session.token is None


def test_config_lists_and_validates_the_options(ip: InteractiveShell) -> None:
    with capture_output() as out:
        ip.run_line_magic("config", "")
    assert "ScnetMagics" in out.stdout
    with capture_output() as out:
        ip.run_line_magic("config", "ScnetMagics")
    for name in ("base_url", "notebook_id", "timeout", "short_errors"):
        assert name in out.stdout
    with pytest.raises(Exception, match="loopback"):
        magics(ip).base_url = "http://scnet.example.cn"
    magics(ip).notebook_id = 1896050410550136833  # an int is kept exact, as text
    assert magics(ip).notebook_id == ID
    magics(ip).notebook_id = None


def test_help_is_complete(ip: InteractiveShell) -> None:
    doc = getdoc(ip.magics_manager.magics["line"]["scnet_start"])  # what ? shows
    for word in ("--id", "--port", "--command", "StartResult", "%scnet_token"):
        assert word in doc


def test_unload_removes_everything_and_reload_works(ip: InteractiveShell) -> None:
    ip.run_line_magic("unload_ext", "scnet_magic")
    assert "scnet_start" not in ip.magics_manager.magics["line"]
    assert "scnet_start" not in ip.magics_manager.magics["cell"]
    assert "scnet_token" not in ip.magics_manager.magics["line"]
    assert "ScnetMagics" not in ip.magics_manager.registry
    assert not any(isinstance(c, ScnetMagics) for c in ip.configurables)
    ip.run_line_magic("load_ext", "scnet_magic")
    assert "scnet_start" in ip.magics_manager.magics["cell"]
    assert sum(isinstance(c, ScnetMagics) for c in ip.configurables) == 1


def test_load_ext_and_start_do_not_import_widgets_sandbox_or_cli(sandbox_env: Sandbox) -> None:
    import json
    import subprocess

    # A fresh process, so only what it imported itself counts; the sandbox runs in this one.
    code = (
        "import json, sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "lazy = ('ipywidgets', 'scnet_magic.sandbox', 'scnet_magic.cli', 'scnet_magic.startform')\n"
        "on_use = ('requests', 'scnet_magic.client', 'scnet_magic.transport')\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'scnet_magic')\n"
        "after_load = [m for m in lazy + on_use if m in sys.modules]\n"
        "result = ip.run_line_magic('scnet_start', sys.argv[1])\n"
        "after_start = [m for m in lazy if m in sys.modules]\n"
        "print(json.dumps([after_load, after_start, result.pending]))\n"
    )
    line = f'--id {ID} --port 1223 --command "python app.py"'
    out = subprocess.run(
        [sys.executable, "-c", code, line], capture_output=True, text=True, check=True, timeout=60
    )
    after_load, after_start, pending = json.loads(out.stdout.strip().splitlines()[-1])
    assert pending, "the start request did not reach the sandbox"
    assert after_load == []
    assert after_start == []
    assert len(sandbox_env.start_requests()) == 1


def test_sandbox_magic_points_the_session_at_it_without_showing_the_token(
    ip: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "index.html").write_text("served by the sandbox test")
    port = free_port()
    with capture_output() as out:
        sb = ip.run_line_magic("scnet_sandbox", "--execute")
        result = ip.run_line_magic(
            "scnet_start", f'--port {port} --command "python -m http.server {port}"'
        )
    try:
        assert result.ok and result.url
        assert requests.get(result.url, timeout=5).text == "served by the sandbox test"
        assert sb.token not in out.stdout + out.stderr + repr(out.outputs)
        assert sb.base_url in out.stdout
    finally:
        with capture_output() as stopped:
            ip.run_line_magic("scnet_sandbox", "--stop")
    assert "stopped" in stopped.stdout
    assert magics(ip).base_url is None and magics(ip).session.token is None


def test_the_sandbox_magic_ending_a_cell_says_it_once(
    ip: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with capture_output() as out:
        ip.run_cell("sb = %scnet_sandbox\n%scnet_sandbox", store_history=True)
    try:
        assert out.stdout.count("Sandbox running at") == 2
        shown = [str(o.data) for o in out.outputs]
        assert "<SCNet sandbox" not in out.stdout + "".join(shown)  # not its repr as well
        with capture_output() as later:
            ip.run_cell("sb", store_history=True)  # the value shown later: shown as usual
        assert "<SCNet sandbox" in later.stdout + "".join(str(o.data) for o in later.outputs)
    finally:
        with capture_output():
            ip.run_line_magic("scnet_sandbox", "--stop")


def test_the_sandbox_magic_ending_a_cell_in_a_terminal_prints_its_lines_once(
    tmp_path: Path,
) -> None:
    # Terminal IPython writes "Out[n]: " before the value shows itself: the lines are the
    # value's text there, said once, and an assigned sandbox still says them once.
    import pexpect

    shell = terminal_ipython(tmp_path, cwd=tmp_path)
    try:
        shell.expect_exact("In [1]: ")
        shell.sendline("%load_ext scnet_magic")
        shell.expect_exact("In [2]: ")
        shell.sendline("%scnet_sandbox")
        shell.expect_exact("In [3]: ")
        ended = shell.before or ""
        assert "Out[2]: Sandbox running at http://127.0.0.1:" in ended, ended
        assert ended.count("Sandbox running at") == 1 and ended.count("Its account:") == 1
        assert "<SCNet sandbox" not in ended
        shell.sendline("sb = %scnet_sandbox")
        shell.expect_exact("In [4]: ")
        assigned = shell.before or ""
        assert assigned.count("Sandbox running at") == 1 and "Out[" not in assigned, assigned
        shell.sendline("%scnet_sandbox --stop")
        shell.expect_exact("In [5]: ")
        shell.sendline("exit")
        shell.expect(pexpect.EOF)
    finally:
        shell.close(force=True)


# -- %scnet_login -----------------------------------------------------------------------------


def test_login_then_start_with_nothing_configured_by_hand(
    ip: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "index.html").write_text("reached after signing in")
    prompts: list[str] = []
    with Sandbox(execute=True, workdir=tmp_path, secret_key=SECRET_CANARY) as sb:
        monkeypatch.setenv("SCNET_LOGIN_URL", sb.login_url)
        monkeypatch.setenv("SCNET_AC_URL", sb.ac_url)
        answers = iter([sb.access_key, SECRET_CANARY])
        monkeypatch.setattr("builtins.input", lambda prompt="": prompts.append(prompt) or sb.user)
        monkeypatch.setattr(
            getpass, "getpass", lambda prompt="": prompts.append(prompt) or next(answers)
        )
        port = free_port()
        with capture_output() as out:
            ip.run_cell("%scnet_login --region 昆山", store_history=True).raise_error()
            result = ip.run_line_magic(
                "scnet_start", f'--id {ID} --port {port} --command "python -m http.server {port}"'
            )
        try:
            assert result.ok and result.url
            assert requests.get(result.url, timeout=5).text == "reached after signing in"
            assert prompts == [
                "SCNet account name: ",
                "SCNet access key (hidden): ",
                "SCNet secret key (hidden): ",
            ]
            assert "Signed in as sandbox-user, region 华东一区【昆山】 (11250)" in said(out)
            assert f"Address: {sb.base_url}" in said(out)
            token = magics(ip).session.token
            assert token is not None and sb.accepts_token(token) and token != sb.token
            history = ip.history_manager
            shown = said(out) + out.stderr + repr(out.outputs)
            shown += repr(history.input_hist_raw) + repr(history.output_hist)
            shown += repr({k: v for k, v in ip.user_ns.items() if k.startswith("_")})
            assert "%scnet_login --region 昆山" in repr(history.input_hist_raw)
            assert token not in shown and SECRET_CANARY not in shown
        finally:
            magics(ip).session.close()
            ip.run_line_magic("config", "ScnetMagics.base_url = None")


def test_login_region_by_id_save_status_and_renew(
    ip: InteractiveShell, login_env: Sandbox, isolated_config: Path
) -> None:
    try:
        with capture_output() as out:
            ip.run_line_magic("scnet_login", "--region 11276 --save")
        first = magics(ip).session.token
        assert first is not None and magics(ip).base_url == login_env.base_url
        saved = isolated_config.read_text()
        assert stat.S_IMODE(isolated_config.stat().st_mode) == 0o600
        assert read_config_file() == {
            "token": first,
            "base_url": login_env.base_url,
            "ac_url": login_env.ac_url,  # renewal and the token check go there
            "user": "sandbox-user",
            "region": "西北一区【西安】",
        }
        assert "secret" not in saved and SECRET_CANARY not in saved
        assert "readable by you only" in said(out)

        with capture_output() as status:
            ip.run_line_magic("scnet_login", "--status")
        assert said(status).splitlines() == [
            "Account: sandbox-user",
            "Region: 西北一区【西安】 (11276)",
            f"Address: {login_env.base_url}",
            f"Platform address (renewal, token check): {login_env.ac_url}",
            f"Login address (sign-in): {login_env.login_url}",
            "Token: valid.",
        ]

        with capture_output() as renewed:
            ip.run_line_magic("scnet_login", "--renew")
        second = magics(ip).session.token
        assert second not in (None, first) and "Token renewed" in said(renewed)
        assert not login_env.accepts_token(first) and login_env.accepts_token(second)
        assert read_config_file()["token"] == first  # not saved without --save
        with capture_output() as status:
            ip.run_line_magic("scnet_login", "--status")
            result = ip.run_line_magic("scnet_start", f"--id {ID} --port 1223")
        assert "Region: 西北一区【西安】 (11276)" in said(status) and "Token: valid." in said(
            status
        )
        assert result.pending

        ip.run_line_magic("scnet_token", "--clear")
        magics(ip).base_url = None
        with capture_output() as status:
            ip.run_line_magic("scnet_login", "--status")
        # The session forgot it; the saved token was renewed away.
        assert "Account: sandbox-user" in said(status)
        assert "Token: not valid" in said(status) and "%scnet_login" in said(status)
        shown = said(out) + said(renewed) + said(status)
        assert first not in shown and second not in shown and SECRET_CANARY not in shown
    finally:
        magics(ip).session.close()
        magics(ip).base_url = None


@pytest.mark.parametrize(
    ("language", "signed_in", "uses"),
    [
        ("en", "Signed in as sandbox-user, region 华东一区【昆山】", "This session now uses"),
        ("zh", "已登录：账号 sandbox-user，区域 华东一区【昆山】", "本会话"),
    ],
)
def test_login_output_is_a_card_like_the_results(
    ip: InteractiveShell, login_env: Sandbox, language: str, signed_in: str, uses: str
) -> None:
    # In a notebook, an HTML card of lines (not plain printed text); in a terminal, the same
    # lines as text (the display's text/plain).
    ip.run_line_magic("config", f'ScnetMagics.language = "{language}"')
    try:
        with capture_output() as out:
            ip.run_line_magic("scnet_login", "--region 昆山")
        assert out.stdout == ""
        (card,) = out.outputs
        text, shown = card.data["text/plain"], card.data["text/html"]
        assert 'class="scnet-result scnet-ok"' in shown
        assert text.startswith(signed_in) and uses in text
        assert all(f"<div>{html.escape(line)}</div>" in shown for line in text.splitlines())
        with capture_output() as status:
            ip.run_line_magic("scnet_login", "--status")
        assert 'class="scnet-result scnet-info"' in status.outputs[0].data["text/html"]
    finally:
        ip.run_line_magic("config", "ScnetMagics.language = None")


def test_login_status_when_not_signed_in(ip: InteractiveShell, login_env: Sandbox) -> None:
    with capture_output() as out:
        ip.run_line_magic("scnet_login", "--status")
    assert said(out).strip() == "Not signed in: run %scnet_login."
    assert login_env.requests == []


def test_login_failures_are_one_line_usage_errors(
    ip: InteractiveShell, login_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(line: str, match: str) -> None:
        with pytest.raises(UsageError, match=match) as info:
            ip.run_line_magic("scnet_login", line)
        assert "\n" not in str(info.value) and SECRET_CANARY not in str(info.value)
        assert magics(ip).session.token is None and magics(ip).base_url is None

    # Several regions and no widgets (a terminal IPython): the names are listed.
    refused("", r"2 regions; choose one with --region.*华东一区【昆山】 \(11250\).*郑州")
    refused("--region 郑州", "has no token: the account may be suspended")
    refused("--status --renew", "takes no other option")
    refused("--renew --region 昆山", "keeps the region")
    refused("--renew", "No SCNET token is set")
    login_env.clock_skew = -600
    refused("--region 昆山", "timestamp.*clock")
    login_env.clock_skew = 0
    login_env.suspended = True
    refused("--region 昆山", "No region of account sandbox-user has a token")
    login_env.suspended = False
    login_env.addresses_enabled = False
    refused("--region 昆山", "no enabled notebook API address")
    monkeypatch.setenv("SCNET_SECRET_KEY", "wrong")
    refused("--region 昆山", "Sign-in refused.*access control")

    def no_stdin(prompt: str = "") -> str:
        raise StdinNotImplementedError("getpass not supported here")

    monkeypatch.delenv("SCNET_SECRET_KEY")
    monkeypatch.setattr(getpass, "getpass", no_stdin)
    refused("--region 昆山", "No SCNet secret key is set, and this front end cannot ask for it")


def test_login_with_several_regions_shows_a_dropdown_in_a_notebook(
    ip: InteractiveShell, login_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scnet_magic import startform

    pickers: list[Any] = []
    real_picker = startform.region_picker

    def keep(*args: Any) -> Any:
        pickers.append(real_picker(*args))
        return pickers[-1]

    session = magics(ip).session
    monkeypatch.setattr(session, "widgets", replace(session.widgets, pick_region=keep))
    # A kernel is what makes widgets reachable; a plain shell has none.
    monkeypatch.setattr(ip, "kernel", object(), raising=False)
    try:
        with capture_output() as out:
            ip.run_line_magic("scnet_login", "")
        (picker,) = pickers
        dropdown, message = picker.children
        assert magics(ip).session.token is None and len(out.outputs) == 1
        dropdown.value = "11250"
        assert "Signed in as sandbox-user, region 华东一区【昆山】" in message.value
        assert magics(ip).base_url == login_env.base_url
        with capture_output():
            assert ip.run_line_magic("scnet_start", f"--id {ID} --port 1223").pending
    finally:
        magics(ip).session.close()
        magics(ip).base_url = None


# -- %scnet_start --wait ---------------------------------------------------------------------


@pytest.mark.slow
def test_wait_shows_progress_in_place_then_ready_after_the_service_listens(
    ip: InteractiveShell, gateway_env: Sandbox
) -> None:
    port = free_port()
    command = f"sleep 3 && python -m http.server {port} --bind 127.0.0.1"
    with capture_output() as out:
        result = ip.run_line_magic("scnet_start", f'--port {port} --command "{command}" --wait 30')

    assert isinstance(result, StartResult) and result.ready and result.status == "ready"
    assert result.ready_after is not None and result.ready_after >= 3  # it slept 3 s first
    assert result.url and requests.get(result.url, timeout=5).status_code == 200
    assert len(gateway_env.start_requests()) == 1
    # After the "Starting…" line (emptied in place), one display, updated in place: every
    # later output replaces it.
    starting, _emptied, first, *updates = out.outputs
    assert starting.data["text/plain"].startswith("Starting the service on port")
    display_id = first.transient["display_id"]
    assert updates and all(o.update and o.transient["display_id"] == display_id for o in updates)
    assert "Waiting up to 30 s" in first.data["text/plain"]
    assert any("HTTP 502" in o.data["text/plain"] for o in updates[:-1])
    final = updates[-1].data
    assert final["text/plain"].startswith("Service is ready after ")
    assert f'href="{result.url}"' in final["text/html"] and "Waiting" not in final["text/html"]


def test_wait_that_times_out_names_the_url_and_the_log_file(
    ip: InteractiveShell, gateway_env: Sandbox
) -> None:
    port = free_port()
    with capture_output() as out, pytest.raises(UsageError) as info:
        ip.run_line_magic(
            "scnet_start", f'--port {port} --command "sleep 60 > web.log 2>&1" --wait 1'
        )
    message = str(info.value)
    assert "not ready after 1 s" in message and "HTTP 502" in message
    assert "web.log" in message and "\n" not in message
    url = magics(ip).session.client().service_url(gateway_env.notebook_id).url
    assert url and url in message
    final = out.outputs[-1]
    assert final.update and "Waiting" not in final.data["text/plain"]
    assert final.data["text/plain"].startswith("Started, not answering yet")
    assert len(gateway_env.start_requests()) == 1


@pytest.mark.slow
def test_interrupting_the_wait_stops_it_quietly_and_returns_the_result(
    ip: InteractiveShell, gateway_env: Sandbox
) -> None:
    # A real SIGINT, as Jupyter's "interrupt kernel" sends, while the wait polls a URL that
    # will never answer (no command, nothing listens).
    timer = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGINT))
    with capture_output() as out:
        timer.start()
        try:
            result = ip.run_line_magic("scnet_start", f"--port {free_port()} --wait 120")
        except KeyboardInterrupt:
            pytest.fail("the interrupt escaped the magic")
        finally:
            timer.cancel()
    assert isinstance(result, StartResult) and result.pending and not result.ready
    # The note is the card's last line, not plain text under it.
    stopped = "Stopped waiting; the service may still be starting."
    assert stopped not in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    assert out.outputs[-1].data["text/plain"].startswith("Started, not answering yet")
    assert out.outputs[-1].data["text/plain"].endswith(stopped)
    card = out.outputs[-1].data["text/html"]
    assert card.startswith('<div class="scnet-result') and f"<i>{stopped}</i></div></div>" in card
    assert len(gateway_env.start_requests()) == 1


# -- %scnet_url and %scnet_notebooks ---------------------------------------------------------


def test_url_magic_shows_status_and_link_and_returns_the_service_url(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    with capture_output():
        ip.run_line_magic("scnet_start", f"--id {ID} --port 1223")
    sandbox_env.clear_log()
    with capture_output() as out:
        service = ip.run_line_magic("scnet_url", f"--id {ID}")
    assert isinstance(service, ServiceUrl)
    assert service.url == f"https://c-{ID}.ksai.scnet.cn:58043" and service.status == "inactive"
    (shown,) = out.outputs
    assert f'href="{service.url}"' in shown.data["text/html"]
    assert "inactive" in shown.data["text/html"] and service.url in shown.data["text/plain"]
    # The service's address, then the instance around it (its custom port and command).
    assert [(r.path.rsplit("/", 1)[-1], r.query) for r in sandbox_env.requests] == [
        ("url", {"notebookId": ID}),
        ("detail", {"notebookId": ID}),
    ]
    assert "custom port 1223" in shown.data["text/plain"]


def test_url_magic_uses_the_default_id_and_is_shown_once_in_a_cell(
    ip: InteractiveShell, sandbox_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCNET_NOTEBOOK_ID", ID)
    with capture_output() as out:
        outcome = ip.run_cell("%scnet_url", store_history=True)
    assert outcome.success and isinstance(outcome.result, ServiceUrl)
    assert len(out.outputs) == 1
    assert "no address yet" in out.outputs[0].data["text/plain"]


def test_url_magic_refuses_a_bad_id_without_sending(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    with pytest.raises(UsageError, match="Notebook id must contain only digits"):
        ip.run_line_magic("scnet_url", "--id 12ab")
    with pytest.raises(UsageError, match="No notebook id"):
        ip.run_line_magic("scnet_url", "")
    assert sandbox_env.requests == []


def test_notebooks_magic_reads_every_page_into_a_table(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    with capture_output() as out:
        records = ip.run_line_magic("scnet_notebooks", "")
    assert isinstance(records, NotebookList) and len(records) == 25
    assert len({r.id for r in records}) == 25
    assert [r.query["page"] for r in sandbox_env.requests] == ["1", "2"]  # page size 20
    (shown,) = out.outputs
    html = shown.data["text/html"]
    assert html.count("<tr>") == 26  # the header and 25 rows
    assert f'<code style="user-select:all">{ID}</code>' in html
    assert "(25 notebooks)" in shown.data["text/plain"]


def test_notebooks_magic_filters_by_status_and_name(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    with capture_output():
        records = ip.run_line_magic("scnet_notebooks", "--status running --name demo")
    assert records and all(
        r.raw["notebookStatus"] == "Running" and "demo" in r.raw["notebookName"] for r in records
    )
    assert sandbox_env.requests[0].query["notebookStatus"] == "Running"
    assert sandbox_env.requests[0].query["notebookName"] == "demo"


def test_notebooks_magic_refuses_an_unknown_status_without_sending(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    with pytest.raises(UsageError, match=r"Status must be one of Creating, .*got 'Runing'"):
        ip.run_line_magic("scnet_notebooks", "--status Runing")
    assert sandbox_env.requests == []
