"""The ``scnet`` command, run as a real subprocess against the sandbox over loopback."""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from scnet_magic import __version__, cli, display
from scnet_magic.models import InstanceProgress
from scnet_magic.readiness import Probe, WaitProgress
from scnet_magic.sandbox import Sandbox

from conftest import CANARY, Terminal, free_port
from frontends import run_scnet

SCNET = str(Path(sys.executable).with_name("scnet"))
ID = "1896050410550136833"
TERMINATED = "1896050410550136834"
START_KEYS = {
    "replaced_port",
    "nothing_ran",
    "status",
    "ok",
    "pending",
    "ready",
    "ready_after",
    "url",
    "notebook_id",
    "port",
    "protected",
    "guard_port",
    "code",
    "msg",
    "exec_success",
    "error_msg",
    "output",
    "raw",
}


def scnet(
    *args: str, stdin: str = "", process: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    """``scnet ARGS`` in the test's (isolated) environment: through ``cli.main`` in this
    process, or with ``process`` the installed script (one such smoke test per verb)."""
    if not process:
        return run_scnet(list(args), env, stdin)
    return subprocess.run(
        [SCNET, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=90,
    )


def spawn(*args: str) -> subprocess.Popen[str]:
    """``scnet`` running in the background, its output readable line by line."""
    return subprocess.Popen(
        [SCNET, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_secret_kept(proc: subprocess.CompletedProcess[str], secret: str) -> None:
    assert secret not in proc.stdout and secret not in proc.stderr


def assert_usage_error(proc: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert proc.returncode == 2, proc
    assert fragment in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


# -- help and version --------------------------------------------------------------------------


def test_version() -> None:
    proc = scnet("--version", process=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"scnet {__version__}"
    module = subprocess.run(
        [sys.executable, "-m", "scnet_magic", "--version"], capture_output=True, text=True
    )
    assert module.returncode == 0 and module.stdout == proc.stdout


# What answering --version or --help must not load: the HTTP stack, the guard's server, IPython.
HEAVY = ("requests", "urllib3", "tornado", "IPython", "ipywidgets")


@pytest.mark.parametrize("words", [["--version"], ["--help"], ["start", "--help"]])
def test_version_and_help_load_no_http_stack(words: list[str]) -> None:
    probe = (
        "import sys\n"
        "from scnet_magic.cli import main\n"
        f"code = main({words!r})\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("verb", "options"),
    [
        (None, ["start", "url", "notebooks", "sandbox", "--token-stdin"]),
        ("start", ["--id", "--port", "--command", "--wait", "--json", "--token-stdin"]),
        ("url", ["--id", "--json", "--token-stdin", "--base-url"]),
        ("notebooks", ["--status", "--name", "--json"]),
        ("sandbox", ["--execute", "--port"]),
    ],
)
def test_help(verb: str | None, options: list[str]) -> None:
    proc = scnet(*([verb] if verb else []), "--help")
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"usage: scnet {verb or ''}".rstrip())
    for option in options:
        assert option in proc.stdout


# -- start -------------------------------------------------------------------------------------


def test_start_prints_the_result_as_text_or_json(sandbox_env: Sandbox) -> None:
    url = f"https://c-{ID}.ksai.scnet.cn:58043"
    text = scnet(
        "start", "--id", ID, "--port", "1223", "--command", "python app.py > a.log", process=True
    )
    assert text.returncode == 0, text.stderr  # pending is not a failure
    assert text.stdout.startswith("Started, not answering yet: port 1223")
    assert f"URL: {url}" in text.stdout

    as_json = scnet("start", "--id", ID, "--port", "1223", "--json")
    assert as_json.returncode == 0
    data = json.loads(as_json.stdout)
    assert set(data) == START_KEYS
    assert data["status"] == "pending" and data["url"] == url and data["notebook_id"] == ID
    assert data["ready"] is False and data["ready_after"] is None

    first, second = sandbox_env.start_requests()
    assert first.body == {"id": ID, "customizePort": "1223", "command": "python app.py > a.log"}
    assert second.body == {"id": ID, "customizePort": "1223"}
    for proc in (text, as_json):
        assert_secret_kept(proc, sandbox_env.token)


def test_output_the_terminal_cannot_encode_is_escaped(sandbox_env: Sandbox) -> None:
    """The platform answers in Chinese; where stdout cannot encode it (a Latin-1 or ASCII
    locale, a Windows code page, output redirected there) the start, already sent, is still
    reported, with escapes, rather than as a traceback."""
    latin1 = {"PYTHONIOENCODING": "latin-1"}
    # In Chinese, since the text form leaves out the platform's pending message (it says what
    # the headline says).
    text = scnet("--lang", "zh", "start", "--id", ID, "--port", "1223", process=True, **latin1)
    assert text.returncode == 0, text.stderr
    assert "https://c-" in text.stdout and "\\u5730\\u5740" in text.stdout  # 地址
    as_json = scnet("start", "--id", ID, "--port", "1223", "--json", process=True, **latin1)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["error_msg"].startswith("根据")  # escapes JSON reads
    assert len(sandbox_env.start_requests()) == 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["start", "--id", ID, "--port", "0"], "Port must be from 1 to 65535"),
        (["start", "--id", ID, "--port", "http"], "Port must be a whole number"),
        (["start", "--id", ID], "The following arguments are required: --port"),
        (["start", "--port", "1223"], "No notebook id"),
        (["start", "--id", "12ab", "--port", "1223"], "Notebook id must contain only digits"),
        (["start", "--id", ID, "--port", "1", "--command", ""], "Command is empty"),
        (["start", "--id", ID, "--port", "1", "--wait", "0"], "--wait: timeout must be"),
        (["start", "--id", ID, "--port", "1", "--token", CANARY], "never taken from the command"),
        (["url", f"--token={CANARY}"], "never taken from the command line"),
        (["start", "--id", ID, "--port", "1", CANARY, "--bogus=1"], "arguments: … --bogus"),
        (["url"], "No notebook id"),
        (["notebooks", "--status", "Runing"], "Status must be one of"),
        (["notebooks", "--timeout", "-1"], "--timeout: timeout must be a positive number"),
        (["notebooks", "--base-url", "http://scnet.example.cn"], "only for loopback"),
        (["launch"], "invalid choice: 'launch'"),
        ([], "The following arguments are required: COMMAND"),
    ],
)
def test_bad_usage_exits_2_and_sends_nothing(
    sandbox_env: Sandbox, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    # In-process, to keep the suite fast: main() returns what the script exits with (the
    # subprocess test below checks that the script passes it on).
    code = cli.main(args)
    out = capsys.readouterr()
    proc = subprocess.CompletedProcess(args, code, out.out, out.err)
    assert_usage_error(proc, fragment)
    assert sandbox_env.requests == []
    assert_secret_kept(proc, CANARY)  # even a token typed on the line is not echoed


def test_bad_usage_exit_code_through_the_script(sandbox_env: Sandbox) -> None:
    proc = scnet("start", "--id", ID, "--port", "0", process=True)
    assert_usage_error(proc, "Port must be from 1 to 65535")
    assert scnet("start", "--id", ID).returncode == 2
    assert sandbox_env.requests == []


def test_api_error_exits_1_with_the_code_and_a_hint(sandbox_env: Sandbox) -> None:
    proc = scnet("start", "--id", TERMINATED, "--port", "1223")
    assert proc.returncode == 1 and proc.stdout == ""
    error, hint = proc.stderr.splitlines()
    assert error.startswith("scnet: error: SCNet API error 716866")
    # The platform's answer, and the way out: the detail says the instance is stopped.
    assert hint == "hint: The instance is Terminated. Add --boot to start the instance first."


def test_transport_error_exits_1() -> None:
    proc = scnet("notebooks", SCNET_BASE_URL=f"http://127.0.0.1:{free_port()}", SCNET_TOKEN=CANARY)
    assert proc.returncode == 1
    assert "connection refused" in proc.stderr and "Traceback" not in proc.stderr
    assert_secret_kept(proc, CANARY)


# -- the token ---------------------------------------------------------------------------------


def test_no_token_is_a_usage_error_naming_the_ways_to_give_one(sandbox: Sandbox) -> None:
    proc = scnet("notebooks", "--base-url", sandbox.base_url)
    assert_usage_error(proc, "No SCNET token is set.")
    assert "SCNET_TOKEN" in proc.stderr and "--token-stdin" in proc.stderr
    assert sandbox.requests == []


def test_token_from_stdin(sandbox: Sandbox) -> None:
    ok = scnet("notebooks", "--json", "--token-stdin", stdin=sandbox.token + "\n",
               SCNET_BASE_URL=sandbox.base_url)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["count"] == 25
    assert_secret_kept(ok, sandbox.token)

    wrong = scnet("notebooks", "--token-stdin", stdin=CANARY, SCNET_BASE_URL=sandbox.base_url)
    assert wrong.returncode == 1 and "10009" in wrong.stderr
    assert_secret_kept(wrong, CANARY)

    empty = scnet("notebooks", "--token-stdin", SCNET_BASE_URL=sandbox.base_url)
    assert_usage_error(empty, "standard input has no token")


def test_settings_from_the_config_file(sandbox: Sandbox, isolated_config: Path) -> None:
    isolated_config.write_text(
        f'token = "{sandbox.token}"\nbase_url = "{sandbox.base_url}"\nnotebook_id = "{ID}"\n'
    )
    isolated_config.chmod(0o600)
    proc = scnet("url")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"Custom service of notebook {ID}: inactive")
    assert_secret_kept(proc, sandbox.token)


# -- url and notebooks -------------------------------------------------------------------------


def test_url_as_text_and_json(sandbox_env: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    assert scnet("start", "--id", ID, "--port", "1223").returncode == 0
    url = f"https://c-{ID}.ksai.scnet.cn:58043"
    text = scnet("url", "--id", ID, process=True)
    assert text.returncode == 0
    first, instance = text.stdout.strip().splitlines()
    assert first == f"Custom service of notebook {ID}: inactive, {url}"
    assert instance == "  Instance Running; custom port 1223, no command"
    monkeypatch.setenv("SCNET_NOTEBOOK_ID", ID)  # the default id, as in the magics
    as_json = scnet("url", "--json")
    assert as_json.returncode == 0
    found = json.loads(as_json.stdout)
    # The platform's answers as they came, under "raw" in every verb; the tidy names beside.
    assert found.pop("raw")["code"] == "0" and found["instance"].pop("raw")["id"] == ID
    assert found == {
        "notebook_id": ID,
        "url": url,
        "status": "inactive",
        "active": False,
        "instance": {
            "id": ID,
            "name": "sdxl-webui",
            "status": "Running",
            "custom_port": 1223,
            "command": None,
        },
    }
    for proc in (text, as_json):
        assert_secret_kept(proc, sandbox_env.token)


def test_notebooks_reads_every_page_as_text_and_json(sandbox_env: Sandbox) -> None:
    text = scnet("notebooks", process=True)
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["Id", "Name", "Status", "Port", "Command"]
    assert len(lines) == 1 + 25 + 1 and lines[-1] == "(25 notebooks)"
    assert [r.query["page"] for r in sandbox_env.requests] == ["1", "2"]

    as_json = scnet("notebooks", "--status", "running", "--json")
    assert as_json.returncode == 0
    data = json.loads(as_json.stdout)
    assert set(data) == {"count", "notebooks"}
    assert data["count"] == len(data["notebooks"]) > 1
    assert all(r["raw"]["notebookStatus"] == "Running" for r in data["notebooks"])
    assert "imageName" in data["notebooks"][0]["raw"]  # every field of the records is kept
    for proc in (text, as_json):
        assert_secret_kept(proc, sandbox_env.token)


# -- start --wait ------------------------------------------------------------------------------


@pytest.mark.slow
def test_start_wait_exits_0_once_the_service_is_up(gateway_env: Sandbox) -> None:
    port = free_port()
    command = f"sleep 3 && python -m http.server {port} --bind 127.0.0.1"
    proc = scnet("start", "--port", str(port), "--command", command, "--wait", "30")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Service is ready after ")
    assert "Waiting up to 30 s for http://127.0.0.1:" in proc.stderr
    url = proc.stdout.split("URL: ")[1].split()[0]
    assert requests.get(url, timeout=5).status_code == 200
    assert len(gateway_env.start_requests()) == 1
    assert_secret_kept(proc, gateway_env.token)


def test_start_wait_not_ready_exits_1_and_still_prints_the_result(gateway_env: Sandbox) -> None:
    port = str(free_port())
    proc = scnet(
        "start", "--port", port, "--command", "sleep 60 > app.log", "--wait", "1", "--json"
    )
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["status"] == "pending" and data["ready"] is False and data["url"]
    error, hint = proc.stderr.splitlines()[-2:]
    assert error.startswith("scnet: error: Service not ready after 1 s: " + data["url"])
    assert "HTTP 502" in error and hint.startswith("hint: ") and "app.log" in hint
    assert len(gateway_env.start_requests()) == 1


def test_interrupting_start_wait_exits_130_without_a_traceback(gateway_env: Sandbox) -> None:
    proc = spawn("start", "--port", str(free_port()), "--wait", "120")
    try:
        assert proc.stderr is not None
        waiting = proc.stderr.readline()  # printed once the start has answered
        assert waiting.startswith("Waiting up to 120 s for "), waiting
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "scnet: stopped waiting; the service may still be starting." in stderr
    assert "Traceback" not in stderr
    assert stdout.startswith("Started, not answering yet") and "URL: http://127.0.0.1:" in stdout
    assert len(gateway_env.start_requests()) == 1


# -- sandbox -----------------------------------------------------------------------------------


def test_sandbox_verb_serves_the_api_until_interrupted() -> None:
    proc = spawn("sandbox", "--port", "0")
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(4)]
        assert all(line.startswith("export SCNET_") for line in lines[:3]), lines
        exports = dict(line[len("export ") :].strip().split("=", 1) for line in lines[:3])
        listed = scnet("notebooks", "--json", **exports)
        assert listed.returncode == 0 and json.loads(listed.stdout)["count"] == 25
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0


def test_progress_on_a_terminal_rewrites_one_line() -> None:
    screen = Terminal()
    progress = display.ProgressLine(screen, 30)  # what scnet start writes on stderr
    progress.begin("http://127.0.0.1:1/")
    progress.update(WaitProgress("http://127.0.0.1:1/", 1.2, 30, 2, Probe(502, "HTTP 502")))
    progress.end()
    written = screen.getvalue()
    assert "\n" not in written  # no stream of new lines
    assert written.count("\r\x1b[K") == 3 and written.endswith("\r\x1b[K")
    assert "check 2: HTTP 502" in written


def _booting(seconds: float, status: str = "Creating") -> InstanceProgress:
    return InstanceProgress("1896050410550136834", status, "Running", seconds, 600, 1)


def test_boot_progress_rewrites_the_starting_line_on_a_terminal() -> None:
    screen = Terminal()
    line = display.ProgressLine(screen, 30)
    line.note(display.starting_text("1896050410550136834", 1223))
    for progress in (None, _booting(0.2), _booting(1.3), _booting(2.4)):
        line.boot("1896050410550136834", progress)
    line.end()
    written = screen.getvalue()
    assert "\n" not in written and written.count("\r\x1b[K") == 6
    assert "Instance 1896050410550136834: Creating (2 s), waiting for Running…" in written


def test_boot_progress_in_a_log_is_a_line_per_status() -> None:
    log = io.StringIO()
    line = display.ProgressLine(log, 30)
    line.note(display.starting_text("1896050410550136834", 1223))  # a log gets the result only
    for progress in (None, _booting(0.2), _booting(1.3), _booting(2.4, "Running")):
        line.boot("1896050410550136834", progress)
    line.end()
    assert log.getvalue().splitlines() == [
        "Starting notebook instance 1896050410550136834…",
        "Instance 1896050410550136834: Creating (0 s), waiting for Running…",
        "Instance 1896050410550136834: Running (2 s), waiting for Running…",
    ]


@pytest.mark.parametrize("option", ["--t", "--ti", "--tim", "--po", "--comm"])
def test_abbreviated_options_are_refused_without_quoting_the_value(
    sandbox: Sandbox, option: str
) -> None:
    # An ambiguous or abbreviated option would make argparse quote its value back, and a value
    # on this command line may be a misplaced token.
    done = scnet("start", "--id", sandbox.notebook_id, "--port", "1", f"{option}={CANARY}")
    assert done.returncode == 2
    assert CANARY not in done.stdout + done.stderr
    assert sandbox.requests == []


def test_every_verb_of_the_parser_runs_its_function() -> None:
    from scnet_magic.cli import build_parser, verbs

    parser = build_parser()
    (choices,) = [a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(verbs.VERBS) == set(choices)
    assert all(run.__name__ == name for name, run in verbs.VERBS.items())


def test_sandbox_passes_a_workdir_starting_with_a_dash_as_a_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scnet_magic import sandbox
    from scnet_magic.cli import build_parser, verbs

    seen: list[list[str]] = []
    monkeypatch.setattr(sandbox, "main", lambda argv: seen.append(argv) or 0)
    assert verbs.sandbox(build_parser().parse_args(["sandbox", "--workdir=-app"])) == 0
    assert "--workdir=-app" in seen[0]
