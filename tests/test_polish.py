"""Guards of sandbox sessions, the Chinese wording and small glitches of the output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from protect_helpers import PASSWORD, serve_command

from scnet_magic import i18n
from scnet_magic.guard import guard_lines, list_guards, start_guard
from scnet_magic.sandbox import Sandbox
from scnet_magic.validation import validate_status

from conftest import free_port
from frontends import run_scnet

# -- item 10: guards started for a sandbox end with it -----------------------------------------


def _wait_until(condition: object, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


@pytest.mark.slow
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


@pytest.mark.slow
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


# -- item 15: small glitches of the output -----------------------------------------------------


def test_the_notebooks_table_leaves_an_empty_command_cell_empty() -> None:
    from scnet_magic.display import notebooks_html
    from scnet_magic.models import Notebook, NotebookList

    bare = Notebook.from_record({"id": "1", "notebookName": "a", "notebookStatus": "Terminated"})
    html = notebooks_html(NotebookList([bare]))
    assert "<code" not in html.split("</td>")[-2], html  # no grey stub in the Command cell


@pytest.fixture
def booting_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A sandbox whose stopped instance boots in a fraction of a second; this session on it.
    Nothing is started on the port: the start answers after a short wait for it."""
    with Sandbox(execute=True, workdir=tmp_path, ready_timeout=0.3) as sb:
        sb.boot_seconds = 0.6
        monkeypatch.setenv("SCNET_BASE_URL", sb.base_url)
        monkeypatch.setenv("SCNET_AC_URL", sb.ac_url)
        monkeypatch.setenv("SCNET_TOKEN", sb.token)
        monkeypatch.setenv("SCNET_NOTEBOOK_ID", STOPPED)
        yield sb


def test_while_the_instance_boots_the_notebook_does_not_say_the_service_is_starting(
    ip: InteractiveShell, booting_env: Sandbox
) -> None:
    with capture_output() as out:
        result = ip.run_line_magic("scnet_start", f"--boot --port {free_port()}")
    assert result.pending
    texts = [output.data.get("text/plain", "") for output in out.outputs]
    booting = [i for i, text in enumerate(texts) if "Creating" in text]
    starting = [i for i, text in enumerate(texts) if text.startswith("Starting the service")]
    assert booting and starting, texts
    assert min(starting) > max(booting), texts  # the service's start is shown once it is sent
    # The boot's last line names the instance as the stop prompt does.
    assert f"Notebook instance old-experiment ({STOPPED}) is running." in texts, texts


# -- item 22: rough edges ----------------------------------------------------------------------


def test_a_status_written_as_the_table_shows_it_is_taken(sandbox_env: Sandbox) -> None:
    listed = run_scnet(["notebooks", "--status", "Shutting down"], {}, "")
    assert listed.returncode == 0, listed.stderr
    assert validate_status("shutting down") == "Shutting"


def test_ctrl_c_while_the_instance_boots_says_the_start_was_not_sent(
    ip: InteractiveShell, booting_env: Sandbox
) -> None:
    booting_env.boot_seconds = 6.0
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        text = _error_of(ip, "scnet_start", f"--boot --port {free_port()}")
    finally:
        timer.cancel()
    assert "may already have run" not in text
    assert "before the start request was sent" in text


README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_exit_codes_cover_every_failure_that_exits_1(guard_dir: Path) -> None:
    unknown_guard = run_scnet(["guard", "--stop", str(free_port())], {}, "")
    assert unknown_guard.returncode == 1
    text = " ".join(README.read_text(encoding="utf-8").split())
    codes = text[text.index("Exit codes:") :].split(" 2 bad usage")[0]
    for case in ("a stop not confirmed", "a guard conflict", "no guard on the given port"):
        assert case in codes, codes


def test_the_platform_notebook_signs_in_as_the_readme_recommends() -> None:
    import nbformat

    path = README.parent / "notebooks" / "scnet-platform.ipynb"
    notebook = nbformat.read(path, as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert "%scnet_login --save" in code
    assert "%scnet_token" not in code


@pytest.mark.slow
@pytest.mark.parametrize("columns", [60, 160])
def test_scnet_guard_list_on_a_terminal_marks_a_guard_in_front_of_nothing(
    guard_dir: Path, columns: int
) -> None:
    import fcntl
    import pty
    import struct
    import termios

    from frontends import SCNET

    port = free_port()  # nothing listens there
    start_guard(port, PASSWORD, host="127.0.0.1")
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal of ``columns`` columns, then the command
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        os.execv(SCNET[0], [*SCNET, "guard", "--list"])
    screen = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the command ended
            break
        if not chunk:
            break
        screen += chunk
    os.close(fd)
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    text = " ".join(screen.decode(errors="replace").split())
    assert f"guards port {port}" in text
    assert f"nothing listens on port {port} any more" in text
