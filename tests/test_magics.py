"""The magics in a real IPython shell, against the sandbox over loopback."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import pytest
import requests
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from scnet_magic import ConfigError, StartResult
from scnet_magic.magics import ScnetMagics
from scnet_magic.sandbox import Sandbox

from conftest import CANARY, free_port

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
    (shown,) = out.outputs
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
    with capture_output() as bare:
        ip.run_cell(f"%scnet_start --id {ID} --port 1223", store_history=True)
    assert len(bare.outputs) == 1
    with capture_output() as assigned:
        ip.run_cell(f"r = %scnet_start --id {ID} --port 1224", store_history=True)
    assert len(assigned.outputs) == 1
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
    assert len(out.outputs) == 1


@pytest.mark.parametrize(
    ("line", "cell", "fragment"),
    [
        (f"--id {ID} --port 0", None, "port must be from 1 to 65535"),
        (f"--id {ID} --port abc", None, "port must be a whole number"),
        (f"--id {ID}", None, "--port is required"),
        ("--port 1223", None, "no notebook id"),
        ("--id 12ab --port 1223", None, "notebook id must contain only digits"),
        (f'--id {ID} --port 1223 --command ""', None, "command is empty"),
        (f'--id {ID} --port 1223 --command "python app.py', None, "check the quotes"),
        (f"--id {ID} --port 1223 --bogus", None, "unknown option --bogus"),
        (f"--id {ID} --port", None, "expected one argument"),
        (f"--id {ID} --port 1223", "   \n", "command is empty"),
        (f"--id {ID} --port 1223 --command x", "python a.py", "not both"),
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
    with pytest.raises(UsageError, match=r"716866.*Terminated.*instance is running"):
        ip.run_line_magic("scnet_start", "--id 1896050410550136834 --port 1223")


def test_usage_error_stops_run_cell_without_traceback(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    with capture_output() as out:
        outcome = ip.run_cell(f"%scnet_start --id {ID} --port 99999\nran_after = True")
    assert not outcome.success
    assert "ran_after" not in ip.user_ns
    assert "UsageError: port must be from 1 to 65535" in out.stderr + out.stdout
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
    assert magics(ip)._token is None


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
    doc = ip.magics_manager.magics["line"]["scnet_start"].__doc__
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


def test_load_ext_does_not_import_widgets_sandbox_or_cli() -> None:
    import subprocess

    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'scnet_magic')\n"
        "bad = [m for m in ('ipywidgets', 'scnet_magic.sandbox', 'scnet_magic.cli', "
        "'scnet_magic.form') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


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
    assert magics(ip).base_url is None and magics(ip)._token is None
