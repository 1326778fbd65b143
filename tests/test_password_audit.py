"""The canary audit for the password of ``--protect``, as ``test_token_audit`` does for the
token: a canary password goes through every front end, the success path and the error paths,
and is looked for everywhere it could end up: outputs, errors and verbose tracebacks, log
records, widget state, the command's stdout and stderr, the guard's process arguments and
environment and its files, the IPython history database, and an executed, saved notebook."""

from __future__ import annotations

import getpass
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from hostile_server import KINDS, hostile_server
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from nbclient import execute
from protect_helpers import PASSWORD, plain_server, serve_command, write_page
from sandbox_faults import FaultySandbox as Sandbox

from scnet_magic import display, service
from scnet_magic.errors import ScnetError
from scnet_magic.guard import list_guards
from scnet_magic.startform import StartForm

from conftest import free_port
from frontends import form_texts, run_scnet

# An audit through every front end, seconds a test: not in the inner loop.
pytestmark = pytest.mark.slow

ID = Sandbox.notebook_id
# The whole password, and a part of it that nothing else contains.
SECRETS = [PASSWORD, "PW-CANARY-9c41"]


def assert_clean(where: str, *blobs: str | bytes) -> None:
    for blob in blobs:
        data = blob if isinstance(blob, bytes) else blob.encode("utf-8", "surrogatepass")
        for secret in SECRETS:
            at = data.find(secret.encode())
            assert at < 0, f"password in {where}: …{data[max(0, at - 120) : at]!r}"


def assert_guards_clean() -> None:
    """Every running guard: its arguments, its environment; every file of the guard folder."""
    for record in list_guards():
        proc = Path(f"/proc/{record.pid}")
        assert_clean(f"guard {record.port}'s arguments", (proc / "cmdline").read_bytes())
        assert_clean(f"guard {record.port}'s environment", (proc / "environ").read_bytes())
    folder = Path(os.environ["SCNET_GUARD_DIR"])
    for path in folder.iterdir():
        assert_clean(f"guard file {path.name}", path.read_bytes())


@pytest.fixture
def instance(exec_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    assert exec_sandbox.workdir is not None
    write_page(exec_sandbox.workdir)
    monkeypatch.setenv("SCNET_BASE_URL", exec_sandbox.base_url)
    monkeypatch.setenv("SCNET_TOKEN", exec_sandbox.token)
    return exec_sandbox


@pytest.fixture(autouse=True)
def logs_audited(debug_logs: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s %(args)r")
    # The test's own records: at teardown, .records and .text hold the teardown's only.
    for record in debug_logs.get_records("call"):
        assert_clean(f"log record of {record.name}", formatter.format(record))
    assert_clean("formatted log output", debug_logs.text)


def shown_by(outputs: object) -> str:
    return "".join(str(getattr(o, "data", o)) for o in outputs)  # type: ignore[attr-defined]


def test_magics_python_and_form(
    ip: InteractiveShell, instance: Sandbox, guard_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": PASSWORD)
    port = free_port()
    start = f"--id {ID} --port {port}"
    command = f'--command "{serve_command(port)}"'
    with capture_output() as shown:
        ip.run_cell(f"r = %scnet_start {start} {command} --protect --wait 30")
        ip.run_cell("r")
        ip.run_cell("print(r, repr(r), r.to_dict(), r.to_json())")
        ip.run_cell("%scnet_guard --list")
    result = ip.user_ns["r"]
    assert result.protected and result.ready
    assert_clean("the magic's outputs", shown.stdout, shown.stderr, shown_by(shown.outputs))
    assert_guards_clean()

    # Error paths: another password for the guarded port; a guard the URL does not reach,
    # with full tracebacks that show every frame's variables.
    errors: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": PASSWORD + "-other")
    with pytest.raises(UsageError) as refused:
        ip.run_line_magic("scnet_start", f"{start} --protect")
    errors.append(str(refused.value))
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": PASSWORD)
    mode = ip.InteractiveTB.mode
    with plain_server(guard_dir.parent, free_port()) as other:
        instance.elsewhere = other
        other_port = free_port()
        try:
            with capture_output() as verbose:
                ip.run_cell("%config ScnetMagics.short_errors = False\n%xmode Verbose")
                ip.run_cell(f"%scnet_start --id {ID} --port {other_port} --protect --wait 20")
        finally:
            ip.run_line_magic("xmode", mode)
            ip.run_line_magic("config", "ScnetMagics.short_errors = True")
    errors.append(verbose.stdout + verbose.stderr + shown_by(verbose.outputs))
    assert "does not reach this machine's guard" in errors[-1] and "Traceback" in errors[-1]
    with pytest.raises(ScnetError) as python_error:
        service.start_service(ID, other_port, None, protect=PASSWORD, wait=20)
    errors += [str(python_error.value), python_error.value.hint, repr(python_error.value)]
    instance.elsewhere = None
    assert_clean("errors", *errors)

    # The form: the password typed into its field, then Start.
    form = StartForm()
    form.notebook_id.value, form.port.value = ID, str(port)
    form.protect.checkbox.value = True
    form.protect.password.value = PASSWORD
    assert form.protect.password.value == ""
    assert_clean("the form's widgets once the password is typed", *form_texts(form))
    form.start_button.click()
    assert form.wait(60) and form.result is not None and form.result.protected, form.error
    assert_clean("the form after Start", *form_texts(form), repr(form.result))
    assert display.LOCK_ICON in form.result_area.value
    assert_guards_clean()


@pytest.mark.parametrize("given", ["SCNET_GUARD_PASSWORD", "--password-stdin"])
def test_command(instance: Sandbox, guard_dir: Path, given: str) -> None:
    port = free_port()
    env, stdin, extra = {"SCNET_GUARD_PASSWORD": PASSWORD}, "", []
    if given == "--password-stdin":
        env, stdin, extra = {}, PASSWORD + "\n", ["--password-stdin"]
    words = ["start", "--id", ID, "--port", str(port), "--command", serve_command(port)]
    runs = [
        run_scnet([*words, "--protect", *extra, "--wait", "30"], env, stdin),
        # The guard reused; the earlier run of the command still holds the port: replaced.
        run_scnet([*words, "--protect", *extra, "--replace", "--json"], env, stdin),
        run_scnet(["guard", "--list"], env),
        run_scnet(["start", "--id", ID, "--port", str(port), "--protect", *extra], {}, "\n"),
    ]
    assert [run.returncode for run in runs] == [0, 0, 0, 2], [run.stderr for run in runs]
    for run in runs:
        assert_clean(f"scnet {' '.join(run.args[3:])}", run.stdout, run.stderr)
    other = free_port()
    guard = run_scnet(["guard", "--port", str(other), *extra], env, stdin)
    assert guard.returncode == 0, guard.stderr
    assert len(list_guards()) == 2
    assert_guards_clean()


HISTORY_SESSION = r"""
import getpass
import os
import sys
import tempfile

from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from scnet_magic.guard import list_guards, stop_guard
from scnet_magic.sandbox import Sandbox

typed = sys.stdin.readline().rstrip("\n")  # the password, as typed at the hidden prompt
getpass.getpass = lambda prompt="": typed
port = int(sys.argv[1])

config = Config()
config.HistoryManager.enabled = True
config.HistoryManager.db_log_output = True  # outputs too, not only inputs
ip = InteractiveShell.instance(config=config)
with Sandbox(execute=True, workdir=tempfile.mkdtemp(), ready_timeout=8) as sandbox:
    os.environ.update(SCNET_BASE_URL=sandbox.base_url, SCNET_TOKEN=sandbox.token)
    serve = f"{sys.executable} -m http.server {port} --bind 127.0.0.1"
    cells = [
        "%load_ext scnet_magic",
        f"r = %scnet_start --id {sandbox.notebook_id} --port {port} "
        f"--command '{serve}' --protect --wait 30",
        "r",
        "r.to_dict()",
        f"%%scnet_start --id {sandbox.notebook_id} --port {port} --protect\n{serve}",
        f"%scnet_start --id {sandbox.notebook_id} --port {port} --protect --wait 1",
        "%scnet_guard --list",
        "'history-marker-3b8f'",
    ]
    for cell in cells:
        ip.run_cell(cell, store_history=True)
    for record in list_guards():
        stop_guard(record.port)
print("history file:", ip.history_manager.hist_file)
ip.atexit_operations()
"""


def ipython_session(ipython_dir: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``script`` run by Python in a profile of its own, the password on its standard input."""
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        input=PASSWORD + "\n",
        env={**os.environ, "IPYTHONDIR": str(ipython_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ipython_history_database(tmp_path: Path, guard_dir: Path) -> None:
    ipython_dir = tmp_path / "ipython"
    run = ipython_session(ipython_dir, HISTORY_SESSION, str(free_port()))
    assert run.returncode == 0, run.stderr
    assert_clean("the IPython session's output", run.stdout, run.stderr)
    database = ipython_dir / "profile_default" / "history.sqlite"
    for path in [p for p in ipython_dir.rglob("*") if p.is_file()]:
        assert_clean(f"{path.relative_to(tmp_path)}", path.read_bytes())
    data = database.read_bytes()
    for expected in (b"history-marker-3b8f", b"--protect", b"guard_port"):
        assert expected in data, expected


PASSWORD_ON_THE_LINE = r"""
import sys

from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

typed = sys.stdin.readline().rstrip("\n")  # the password someone wrote after --protect
config = Config()
config.HistoryManager.enabled = True
config.HistoryManager.db_log_output = True
ip = InteractiveShell.instance(config=config)
for cell in [
    "%load_ext scnet_magic",
    "'before-marker-51ac'",
    f"%scnet_start --id 1896050410550136833 --port 1223 --protect {typed}",
    f"%scnet_start --port 1223 --protect={typed}  # once more",
    f"%%scnet_start --port 1223 --protect {typed}\npython app.py",
    "'after-marker-51ac'",
]:
    ip.run_cell(cell, store_history=True)
history = ip.history_manager
print("In and _ih:", ip.user_ns["In"], ip.user_ns["_ih"], history.input_hist_raw)
print("_i variables:", {k: v for k, v in ip.user_ns.items() if k.startswith("_i")})
print("_i, _ii, _iii:", history._i, history._ii, history._iii, history._i00)
print("history file:", history.hist_file)
ip.atexit_operations()
"""


def test_a_password_written_after_protect_is_taken_out_of_the_history(tmp_path: Path) -> None:
    """``%scnet_start --protect PW`` is refused, and the line leaves ``In``, ``_ih``, the
    ``_i`` variables and the history database, as a token's line does; the message says the
    password has been seen."""
    ipython_dir = tmp_path / "ipython"
    run = ipython_session(ipython_dir, PASSWORD_ON_THE_LINE)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("removed from this session's input history") == 3, run.stderr
    assert "choose another password" in run.stderr
    assert_clean("the session's input history and output", run.stdout, run.stderr)
    database = ipython_dir / "profile_default" / "history.sqlite"
    data = database.read_bytes()
    assert_clean("history.sqlite", data)
    # Only the lines that held it went: the others are still there.
    assert b"before-marker-51ac" in data and b"after-marker-51ac" in data
    assert b"load_ext scnet_magic" in data


NOTEBOOK_CELLS = [
    "%load_ext scnet_magic",
    "import logging, sys\n"
    "handler = logging.StreamHandler(sys.stdout)\n"
    "for name in ('scnet_magic', 'urllib3'):\n"
    "    logging.getLogger(name).setLevel(logging.DEBUG)\n"
    "    logging.getLogger(name).addHandler(handler)",
    "%scnet_sandbox --execute",
    "r = %scnet_start --port {port} --command '{serve}' --protect --wait 30\nr",
    "r.to_dict()",
    "%scnet_guard --list",
    "%scnet_start --port {port} --protect=nope",
    "%scnet_guard --stop {{r.guard_port}}",
    "%scnet_sandbox --stop",
]


def test_executed_and_saved_notebook(
    tmp_path: Path, guard_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook run by a real kernel with SCNET_GUARD_PASSWORD set to the canary, saved."""
    monkeypatch.setenv("SCNET_GUARD_PASSWORD", PASSWORD)
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    port = free_port()
    values = {"port": port, "serve": serve_command(port)}
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(cell.format(**values)) for cell in NOTEBOOK_CELLS]
    execute(notebook, cwd=str(tmp_path), kernel_name="python3", allow_errors=True, timeout=90)
    path = tmp_path / "audit.ipynb"
    nbformat.write(notebook, path)
    data = path.read_bytes()
    assert_clean("the saved notebook", data)
    for expected in (b"guard_port", b"--protect takes no value", b"stopped the guard"):
        assert expected in data, expected
    assert list_guards() == []


@pytest.mark.parametrize("kind", ["echo-request", "echo-every-field", "escapes-every-field"])
def test_a_server_that_echoes_what_it_received(
    ip: InteractiveShell, guard_dir: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """A protected start at a platform that sends back every header and the body it received,
    in every field and header of its answer, through the magic (short errors and full
    tracebacks) and the command: the password never reached it, and nothing shows it."""
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": PASSWORD)
    with hostile_server(KINDS[kind]) as server:
        monkeypatch.setenv("SCNET_BASE_URL", server.url)
        monkeypatch.setenv("SCNET_TOKEN", "eyJhbGciOiJIUzI1NiJ9.e30.hostile-audit")
        texts: list[str] = []
        mode = ip.InteractiveTB.mode
        try:
            for setup in ("", "%config ScnetMagics.short_errors = False\n%xmode Verbose\n"):
                port = free_port()
                with capture_output() as shown:
                    ip.run_cell(f"{setup}%scnet_start --id {ID} --port {port} --protect")
                texts += [shown.stdout, shown.stderr, shown_by(shown.outputs)]
        finally:
            ip.run_line_magic("xmode", mode)
            ip.run_line_magic("config", "ScnetMagics.short_errors = True")
        run = run_scnet(
            ["start", "--id", ID, "--port", str(free_port()), "--protect"],
            {"SCNET_GUARD_PASSWORD": PASSWORD},
        )
        texts += [run.stdout, run.stderr]
        received = [f"{r.headers} {r.body!r}" for r in server.received]
    assert len(received) >= 3 and "Traceback" not in run.stderr, run.stderr
    assert_clean(f"what the platform received ({kind})", *received)
    assert_clean(f"what a server answering {kind} made the front ends show", *texts)
    assert_guards_clean()
