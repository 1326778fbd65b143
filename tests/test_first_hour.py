"""What a new user met in the first hour (issue "The first hour"), each as it happened: the
README's lines typed literally, terminal IPython, the ``scnet`` command in a shell."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.oinspect import getdoc
from IPython.utils.capture import capture_output

from scnet_magic import NotebookList, ScnetClient, StartResult, display, i18n
from scnet_magic.config import DEFAULT_WAIT
from scnet_magic.errors import ApiError, InvalidInput, as_sentence, sentences
from scnet_magic.magics import ScnetMagics
from scnet_magic.sandbox import Sandbox

from conftest import CANARY, Terminal, free_port
from frontends import run_scnet

ID = "1896050410550136833"


def magics(ip: InteractiveShell) -> ScnetMagics:
    found = ip.magics_manager.registry["ScnetMagics"]
    assert isinstance(found, ScnetMagics)
    return found


def scnet(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, process: bool = False
) -> Any:
    return run_scnet(list(args), env or {}, stdin or "", process=process)


# -- 1. a trailing comment on a magic line -------------------------------------------------


def test_a_trailing_comment_on_a_magic_line_is_a_comment(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    with capture_output():
        result = ip.run_line_magic(
            "scnet_start", f'--id {ID} --port 1223 --command "echo a#b"   # start it'
        )
    assert isinstance(result, StartResult)
    # Quoted, the # belongs to the command; unquoted, it starts the comment.
    assert sandbox_env.start_requests()[0].body["command"] == "echo a#b"
    with capture_output() as out:
        ip.run_line_magic("scnet_notebooks", "--status Running  # every running one")
    assert "unexpected" not in out.stdout


# -- 2. --wait in terminal IPython -----------------------------------------------------------


@pytest.mark.slow
def test_wait_in_a_terminal_rewrites_one_line_and_prints_the_result_once(
    ip: InteractiveShell, gateway_env: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    port = free_port()
    command = f"sleep 2 && python -m http.server {port} --bind 127.0.0.1"
    # The plain InteractiveShell prints displays as terminal IPython does.
    assert display.prints_only(ip)
    outcome = ip.run_cell(f'r = %scnet_start --port {port} --command "{command}" --wait 30')
    assert outcome.success, outcome.error_in_exec
    written = screen.getvalue()
    assert ip.user_ns["r"].ready
    assert written.count("Service is ready after") == 1
    assert written.count("Started, not answering yet") == 0
    # Progress went to one line, rewritten with \r: no line of it was ever ended.
    progress = [line for line in written.split("\n") if "Waiting" in line]
    assert len(progress) == 1 and progress[0].count("\r\x1b[K") >= 2
    assert "Starting the service on port" in written


def test_bare_magic_in_a_terminal_fills_its_out_prompt(
    ip: InteractiveShell, sandbox_env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.run_cell(f"%scnet_start --id {ID} --port 1223", store_history=True)
    bare = capsys.readouterr().out
    # Out[n]: followed by the result, shown once; never an empty Out[n]: line.
    assert re.search(r"Out\[\d+\]: Started, not answering yet", bare), bare
    assert bare.count("Started, not answering yet") == 1
    ip.run_cell(f"r = %scnet_start --id {ID} --port 1224", store_history=True)
    assigned = capsys.readouterr().out
    assert assigned.count("Started, not answering yet") == 1 and "Out[" not in assigned


# -- 4. and 5. the scnet command: a port out of range, a reader that went away --------------


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_sandbox_port_out_of_range_is_a_usage_error(port: str) -> None:
    done = scnet("sandbox", f"--port={port}")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "OverflowError" not in done.stderr
    assert "port must be" in done.stderr and len(done.stderr.strip().splitlines()) <= 2


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_the_sandbox_module_refuses_a_port_out_of_range_as_scnet_sandbox_does(port: str) -> None:
    module = subprocess.run(
        [sys.executable, "-m", "scnet_magic.sandbox", "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert module.returncode == 2
    assert "Traceback" not in module.stderr and "OverflowError" not in module.stderr
    # The same one-line reason as scnet sandbox gives (as a sentence), after argparse's usage.
    reason = module.stderr.strip().splitlines()[-1].split("error: ", 1)[1]
    same = scnet("sandbox", f"--port={port}").stderr.strip().splitlines()[-1]
    assert reason.startswith("argument --port: port must be") and same.endswith(as_sentence(reason))


def test_a_reader_that_goes_away_ends_the_command_quietly(sandbox_env: Sandbox) -> None:
    shell = subprocess.run(
        f"{sys.executable} -m scnet_magic notebooks | true; echo status=${{PIPESTATUS[0]}}",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "BrokenPipeError" not in shell.stderr and "Exception ignored" not in shell.stderr
    assert re.search(r"status=(0|141)\b", shell.stdout), shell.stdout


# -- 6. waiting from Python ------------------------------------------------------------------


@pytest.mark.slow
def test_waiting_from_python_names_the_command_and_gives_the_result_marked_ready(
    gateway_sandbox: Sandbox,
) -> None:
    client = ScnetClient(base_url=gateway_sandbox.base_url, token=gateway_sandbox.token)
    port = free_port()
    res = client.start_service(
        gateway_sandbox.notebook_id,
        port,
        f"sleep 1 && python -m http.server {port} --bind 127.0.0.1 > web.log 2>&1",
    )
    assert res.command and not res.ready
    ready = client.wait_until_ready(res, timeout=30)
    assert ready.result is not None and ready.result.ready
    assert ready.result.to_dict()["ready"] is True and ready.result.url == res.url

    late = client.start_service(gateway_sandbox.notebook_id, free_port(), "sleep 60 > web.log")
    with pytest.raises(Exception) as info:
        client.wait_until_ready(late, timeout=1)
    assert "No command was given" not in str(getattr(info.value, "hint", ""))
    assert "web.log" in info.value.hint  # type: ignore[attr-defined]


# -- 7. no stray reprs -----------------------------------------------------------------------


def test_sandbox_magic_value_reads_well_and_hides_the_token(ip: InteractiveShell) -> None:
    with capture_output() as out:
        ip.run_cell("%scnet_sandbox", store_history=True)
    try:
        sandbox = magics(ip).session.sandbox
        text = out.stdout + "".join(o.data.get("text/plain", "") for o in out.outputs)
        assert "<scnet_magic.sandbox" not in text and " at 0x" not in text
        assert repr(sandbox).startswith("<SCNet sandbox running at http://127.0.0.1:")
        assert sandbox.token not in repr(sandbox) and sandbox.secret_key not in repr(sandbox)
    finally:
        with capture_output():
            ip.run_line_magic("scnet_sandbox", "--stop")


# -- 8. message and hint as two sentences ----------------------------------------------------


def test_message_and_hint_are_two_sentences_in_both_languages() -> None:
    error = InvalidInput("--port is required", "Give the port the service listens on.")
    assert error.user_message() == "--port is required. Give the port the service listens on."
    chinese = InvalidInput("--port is required", "Give the port the service listens on.")
    with i18n.using("zh"):  # written in the language in force when shown
        assert chinese.user_message() == "必须给出 --port。请给出服务监听的端口。"
    assert sentences("done.", "Next.") == "done. Next."
    with i18n.using("zh"):
        assert sentences("已完成。", "下一步。") == "已完成。下一步。"
        assert " " not in ApiError("10008", "权限不足").user_message().split("。", 1)[1][:1]


def test_magic_errors_join_message_and_hint_as_sentences(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("scnet_start", f"--id {ID}")
    assert str(info.value) == "--port is required. Give the port the service listens on."
    ip.run_line_magic("config", 'ScnetMagics.language = "zh"')
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("scnet_start", f"--id {ID}")
    assert str(info.value) == "必须给出 --port。请给出服务监听的端口。"


# -- 9. a hint for every bad input -----------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "hint"),
    [
        ("--id abc --port 1", "copy one from %scnet_notebooks"),
        (f"--id {ID} --port 99999", "the port the service listens on"),
        (f"--id {ID} --port 1 --command python app.py", "Quote the command"),
    ],
)
def test_every_bad_start_line_has_a_hint(
    ip: InteractiveShell, sandbox_env: Sandbox, line: str, hint: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(hint)):
        ip.run_line_magic("scnet_start", line)
    assert sandbox_env.requests == []


def test_an_unknown_status_has_a_hint(ip: InteractiveShell, sandbox_env: Sandbox) -> None:
    with pytest.raises(UsageError, match=r"\. For example --status Running\.$"):
        ip.run_line_magic("scnet_notebooks", "--status running-ish")


# -- 10. no token: a way forward -------------------------------------------------------------


def test_no_token_names_login_then_token_then_sandbox(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("scnet_start", f"--id {ID} --port 1223")
    message = str(info.value)
    places = [message.find(word) for word in ("%scnet_login", "%scnet_token", "%scnet_sandbox")]
    assert -1 not in places and places == sorted(places), message
    assert "scnet login" in message and "SCNET_TOKEN" in message
    assert "scnet-demo" not in message


def test_no_token_in_the_shell_names_scnet_login_first() -> None:
    done = scnet("notebooks")
    assert done.returncode == 2
    assert done.stderr.find("scnet login") < done.stderr.find("SCNET_TOKEN")
    assert "scnet sandbox" in done.stderr


# -- 11. prompts -----------------------------------------------------------------------------


def interrupted(prompt: str = "") -> str:
    """A hidden prompt at which the user pressed Ctrl-C."""
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("magic", "says"),
    [
        ("scnet_token", "Cancelled; the token is unchanged."),
        ("scnet_login", "Cancelled; nothing was changed."),
    ],
)
def test_ctrl_c_at_a_prompt_cancels_quietly(
    ip: InteractiveShell,
    login_env: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    magic: str,
    says: str,
) -> None:
    monkeypatch.delenv("SCNET_SECRET_KEY")  # so that %scnet_login asks for it
    monkeypatch.setattr("getpass.getpass", interrupted)
    with capture_output() as out:
        ip.run_line_magic(magic, "")
    assert says in out.stdout and "Traceback" not in out.stdout + out.stderr
    assert magics(ip).session.token is None


# -- 12. a token pasted on the %scnet_token line ---------------------------------------------


def test_a_token_on_the_token_line_is_refused_and_taken_out_of_the_history(
    ip: InteractiveShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from IPython.core.history import HistoryManager

    history_file = tmp_path / "history.sqlite"
    saved = ip.history_manager
    ip.history_manager = HistoryManager(shell=ip, hist_file=str(history_file))
    try:
        ip.run_cell("x = 1", store_history=True)
        ip.run_cell(f"%scnet_token {CANARY}", store_history=True)
        ip.run_cell("y = 2", store_history=True)
        ip.history_manager.writeout_cache()
        shown = capsys.readouterr()
        assert "removed from this session's input history" in shown.err + shown.out
        assert "replace it with a new one" in shown.err + shown.out
        assert CANARY not in shown.err + shown.out
        assert not any(CANARY in text for text in ip.user_ns["In"])
        assert not any(CANARY in text for text in ip.user_ns["_ih"])
        assert not any(
            CANARY in value
            for name, value in ip.user_ns.items()
            if name.startswith("_i") and isinstance(value, str)
        )
        rows = sqlite3.connect(history_file).execute("SELECT source, source_raw FROM history")
        saved_rows = [text for row in rows for text in row]
        assert "x = 1" in saved_rows and "y = 2" in saved_rows
        assert not any(CANARY in text for text in saved_rows)
    finally:
        ip.history_manager.end_session()
        ip.history_manager = saved


# -- 13. small ones --------------------------------------------------------------------------


def test_one_notebook_is_singular_in_both_languages() -> None:
    one = NotebookList.from_records([{"id": ID, "notebookName": "a", "notebookStatus": "Running"}])
    assert display.notebooks_text(one).endswith("(1 notebook)")
    assert "1 notebook<" in display.notebooks_html(one)
    with i18n.using("zh"):
        assert display.notebooks_text(one).endswith("共 1 个实例)")


def test_lang_after_the_command(sandbox_env: Sandbox) -> None:
    done = scnet("url", "--id", ID, "--lang", "zh")
    assert done.returncode == 0, done.stderr
    assert "自定义服务" in done.stdout


def test_unknown_scnet_lang_falls_back_to_english_with_one_line(sandbox_env: Sandbox) -> None:
    # A process of its own: the fallback is said once a process.
    done = scnet("notebooks", env={"SCNET_LANG": "klingon"}, process=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("\n") == 1 and "using English" in done.stderr


def test_json_output_is_formatted_alike(sandbox_env: Sandbox, login_env: Sandbox) -> None:
    listed = scnet("notebooks", "--json")
    status = scnet("login", "--status", "--json")
    for text in (listed.stdout, status.stdout):
        assert text == display.to_json(json.loads(text)) + "\n"


def test_config_file_permission_warning_is_one_line(isolated_config: Path) -> None:
    isolated_config.write_text(f'token = "{CANARY}"\n')
    isolated_config.chmod(0o644)
    done = scnet("notebooks", env={"SCNET_BASE_URL": "http://127.0.0.1:9"})
    warning = [line for line in done.stderr.splitlines() if "chmod 600" in line]
    assert len(warning) == 1 and warning[0].startswith("Warning: config file")
    assert "warnings.warn" not in done.stderr and "UserWarning" not in done.stderr


def test_api_errors_keep_their_own_label(
    ip: InteractiveShell, sandbox_env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox_env.fault = "401-json"
    ip.run_cell(f"%scnet_start --id {ID} --port 1223")
    shown = capsys.readouterr()
    assert "ApiError: SCNet API error" in shown.err + shown.out
    assert "UsageError" not in shown.err + shown.out
    assert "Traceback" not in shown.err + shown.out


def test_compiling_the_catalog_on_an_up_to_date_tree_changes_nothing() -> None:
    root = Path(__file__).resolve().parent.parent
    catalog = root / "scnet_magic" / "locale" / "zh_CN" / "LC_MESSAGES"
    before = {path.name: path.read_bytes() for path in catalog.iterdir()}
    done = subprocess.run(
        [sys.executable, str(root / "tools" / "compile_catalog.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr
    assert "0 without a translation" in done.stdout
    assert {path.name: path.read_bytes() for path in catalog.iterdir()} == before


# -- 19. %scnet_start? reads as text ---------------------------------------------------------


def test_the_magics_help_reads_as_plain_text(ip: InteractiveShell) -> None:
    for name in ("scnet_start", "scnet_url", "scnet_notebooks", "scnet_login", "scnet_sandbox"):
        help_text = getdoc(ip.magics_manager.magics["line"][name])
        assert help_text.startswith(f"%{name}")
        assert "::" not in help_text and "``" not in help_text
    start = getdoc(ip.magics_manager.magics["line"]["scnet_start"])
    # The option is written the same way in the usage line and in the list of options.
    assert "[--wait [SECONDS]]" in start and "\n  --wait [SECONDS]  " in start
    assert "<[SECONDS]>" not in start


def test_the_magics_help_follows_the_sessions_language(ip: InteractiveShell) -> None:
    start = ip.magics_manager.magics["line"]["scnet_start"]
    ip.run_line_magic("config", 'ScnetMagics.language = "zh"')
    try:
        chinese = getdoc(start)
        stop = getdoc(ip.magics_manager.magics["line"]["scnet_stop"])
    finally:
        ip.run_line_magic("config", 'ScnetMagics.language = "en"')
    assert chinese.startswith("%scnet_start [--id ID]")
    assert "在 SCNet notebook 实例中启动自定义服务" in chinese and "示例：" in chinese
    assert "服务在实例内监听的端口。" in chinese and "Port the service" not in chinese
    assert '--command "python app.py"' in chinese  # the examples are code: kept as written
    assert "不经确认直接关机。" in stop
    english = getdoc(start)
    assert "Port the service listens on inside the instance." in english
    assert "服务" not in english
    # The --wait help writes the default out, for one catalog entry: it must stay the default.
    assert f"({DEFAULT_WAIT:g} when left out)" in " ".join(english.split())
