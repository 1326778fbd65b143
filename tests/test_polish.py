"""Guards of sandbox sessions, the Chinese wording and small glitches of the output."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from protect_helpers import PASSWORD, serve_command

from scnet_magic import i18n
from scnet_magic.guard import guard_lines, list_guards, start_guard
from scnet_magic.sandbox import Sandbox

from conftest import free_port

# -- item 10: guards started for a sandbox end with it -----------------------------------------


def _wait_until(condition: object, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_a_guard_started_in_a_sandbox_session_ends_with_the_sandbox(
    ip: InteractiveShell,
    guard_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCNET_GUARD_PASSWORD", PASSWORD)
    port = free_port()
    ip.run_line_magic("scnet_sandbox", "--execute")
    try:
        ip.run_line_magic(
            "scnet_start", f"--port {port} --command '{serve_command(port)}' --protect --wait 30"
        )
        assert [record.upstream_port for record in list_guards()] == [port]
    finally:
        ip.run_line_magic("scnet_sandbox", "--stop")
    capsys.readouterr()
    assert list_guards() == []


SANDBOX_THEN_CRASH = """
import os, sys
from scnet_magic import service
from scnet_magic.sandbox import Sandbox

port = int(sys.argv[1])
sandbox = Sandbox(execute=True, workdir=os.getcwd()).start()
os.environ.update(SCNET_TOKEN=sandbox.token, SCNET_BASE_URL=sandbox.base_url)
service.start_service(sandbox.notebook_id, port, sys.argv[2], wait=30, protect=os.environ["PW"])
print("started", flush=True)
os._exit(9)  # a kernel that dies: no atexit, no stop
"""


def test_a_guard_started_for_a_sandbox_ends_when_its_process_dies(
    guard_dir: Path, tmp_path: Path
) -> None:
    port = free_port()
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent(SANDBOX_THEN_CRASH), encoding="utf-8")
    environment = {**os.environ, "PW": PASSWORD}
    run = subprocess.run(
        [sys.executable, str(script), str(port), serve_command(port)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "started" in run.stdout, run.stderr
    assert _wait_until(lambda: list_guards() == []), guard_lines(list_guards())


def test_the_list_marks_a_guard_whose_service_no_longer_listens(guard_dir: Path) -> None:
    port = free_port()  # nothing listens there
    start_guard(port, PASSWORD, host="127.0.0.1")
    (line,) = guard_lines(list_guards())
    assert f"guards port {port}" in line
    assert "nothing listens" in line


# -- item 12: Chinese mode speaks Chinese ------------------------------------------------------

STOPPED = "1896050410550136834"  # "old-experiment", Terminated in the sandbox
ENGLISH_STATUSES = ("Running", "Terminated")


def _in_chinese(ip: InteractiveShell) -> None:
    ip.run_line_magic("config", 'ScnetMagics.language = "zh"')


def _error_of(ip: InteractiveShell, magic: str, line: str) -> str:
    with pytest.raises(UsageError) as caught:
        ip.run_line_magic(magic, line)
    return str(caught.value)


def test_in_chinese_the_url_and_the_list_name_statuses_alike(
    ip: InteractiveShell, sandbox_env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    _in_chinese(ip)
    ip.run_line_magic("scnet_url", f"--id {sandbox_env.notebook_id}")
    url_text = capsys.readouterr().out
    ip.run_line_magic("scnet_notebooks", "")  # (the sandbox's one running instance)
    list_text = capsys.readouterr().out
    for text in (url_text, list_text):
        assert "运行中" in text
        assert not any(status in text for status in ENGLISH_STATUSES), text


def test_in_chinese_a_start_on_a_stopped_instance_names_its_status_in_chinese(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    _in_chinese(ip)
    text = _error_of(ip, "scnet_start", f"--id {STOPPED} --port 8000")
    assert "已停止" in text
    assert text.count("Terminated") == 1  # the platform's own words only, which it sends so


def test_in_chinese_a_line_that_cannot_be_read_says_why_in_chinese(
    ip: InteractiveShell, sandbox_env: Sandbox
) -> None:
    _in_chinese(ip)
    text = _error_of(ip, "scnet_start", "--port 8000 --command 'python app.py")
    assert "引号" in text
    assert "No closing quotation" not in text


def test_in_chinese_the_guard_list_reads_as_a_sentence_about_the_guard(guard_dir: Path) -> None:
    port = free_port()
    start_guard(port, PASSWORD, host="127.0.0.1")
    with i18n.using("zh"):
        (line,) = guard_lines(list_guards())
    assert line.startswith("守卫（端口 "), line
    assert f"保护端口 {port}" in line
