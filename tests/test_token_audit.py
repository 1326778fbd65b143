"""The canary audit: run the product with a canary token and look for it everywhere.

Everywhere means what the user sees (outputs, error lines, tracebacks, reprs), what is kept
(log records and formatted log output at DEBUG for the package and for urllib3, the IPython
history database, executed and saved notebooks) and what a front end leaves behind. Every
front end in ``frontends.FRONT_ENDS`` runs the success path and every error path; a new front
end (the form with its widget state, the command line with its stdout and stderr) is audited
by adding its adapter there. The password of ``--protect`` has the same audit in
``test_password_audit.py``.
"""

from __future__ import annotations

import logging
import os
import re
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
from nbclient import NotebookClient
from sandbox_faults import FAULTS
from sandbox_faults import FaultySandbox as Sandbox

from scnet_magic import ScnetClient, ScnetError
from scnet_magic.account import renew_token, sign_in, token_state
from scnet_magic.cli import main as cli_main
from scnet_magic.client import MAX_PAGES
from scnet_magic.config import resolve

from conftest import CANARY, SECRET_CANARY, free_port
from frontends import (
    FRONT_ENDS,
    CommandFrontEnd,
    FormFrontEnd,
    FrontEnd,
    MagicFrontEnd,
    Outcome,
    Target,
    form_texts,
    front_end_cases,
    run_scnet,
)

ID = Sandbox.notebook_id
TERMINATED = "1896050410550136834"
TIMEOUT = 0.5  # the slow faults only need to pass the timeout; keep them short here
# The whole canary, and its parts that no other token shares.
SECRETS = [CANARY, *CANARY.split(".")[1:]]


def assert_clean(where: str, *blobs: str | bytes) -> None:
    """The canary is in none of the blobs."""
    for blob in blobs:
        data = blob if isinstance(blob, bytes) else blob.encode("utf-8", "surrogatepass")
        for secret in SECRETS:
            at = data.find(secret.encode())
            assert at < 0, (
                f"token in {where}: …{data[max(0, at - 120) : at].decode(errors='replace')}"
            )


@pytest.fixture(autouse=True)
def logs_audited(debug_logs: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every test here logs at DEBUG (package and urllib3); records and formatted output are
    audited after it."""
    yield debug_logs
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s %(args)r")
    # The test's own records: at teardown, .records and .text hold the teardown's only.
    for record in debug_logs.get_records("call"):
        assert_clean(
            f"log record of {record.name}",
            record.getMessage(),
            repr(record.args),
            formatter.format(record),  # with the exception and its traceback, if any
            record.exc_text or "",
            record.stack_info or "",
        )
    assert_clean("formatted log output", debug_logs.text)


@pytest.fixture(scope="module")
def canary_sandbox() -> Iterator[Sandbox]:
    """A sandbox that accepts the canary as its token."""
    with Sandbox(token=CANARY) as sandbox:
        sandbox.fault_delay = 2.0
        yield sandbox


@pytest.fixture
def sandbox(canary_sandbox: Sandbox) -> Iterator[Sandbox]:
    canary_sandbox.clear_log()
    yield canary_sandbox
    canary_sandbox.fault = None


@pytest.fixture(params=sorted(FRONT_ENDS))
def front_end(request: pytest.FixtureRequest) -> FrontEnd:
    return FRONT_ENDS[request.param](request)


def audit(where: str, outcome: Outcome) -> None:
    assert_clean(where, outcome.shown, *outcome.texts)


# The command (a subprocess per run) meets one fault of each kind; the messages come from the
# client the other front ends share, and they meet every fault.
COMMAND_FAULTS = ["html502", "truncated", "401-json", "500-json", "slow-headers", "reset"]


@pytest.mark.slow
def test_success_and_every_fault(front_end: FrontEnd, sandbox: Sandbox) -> None:
    target = Target(sandbox.base_url, CANARY, TIMEOUT)
    ok = front_end.start(target, ID, "1223", "python app.py")
    assert ok.result is not None and ok.result.pending, ok.shown
    audit(f"{front_end.name}: a started service", ok)
    faults = COMMAND_FAULTS if isinstance(front_end, CommandFrontEnd) else sorted(FAULTS)
    for fault in faults:
        sandbox.fault = fault
        outcome = front_end.start(target, ID, "1223", "python app.py")
        audit(f"{front_end.name}: fault {fault}", outcome)
    assert len(sandbox.start_requests()) == 1 + len(faults)


def test_error_paths_without_the_server_on_our_side(front_end: FrontEnd, sandbox: Sandbox) -> None:
    target = Target(sandbox.base_url, CANARY, TIMEOUT)
    with Sandbox() as other:  # another token: the platform refuses the canary (10009)
        refused = front_end.start(Target(other.base_url, CANARY, TIMEOUT), ID, "1223", "x")
    assert refused.error is not None and "10009" in refused.message
    nobody = Target(f"http://127.0.0.1:{free_port()}", CANARY, TIMEOUT)
    outcomes = {
        "the platform refuses the token": refused,
        "an API error": front_end.start(target, TERMINATED, "1223", "python app.py"),
        "bad input": front_end.start(target, ID, "0", "python app.py"),
        "a blank command": front_end.start(target, ID, "1223", "   "),
        "connection refused": front_end.start(nobody, ID, "1223", "python app.py"),
    }
    for where, outcome in outcomes.items():
        assert outcome.error is not None, where
        audit(f"{front_end.name}: {where}", outcome)


BAD_TOKENS = {
    "a line break": CANARY + "\n" + CANARY,
    "a space": CANARY + " x",
    "non-ASCII": CANARY + "é",
    "a NUL": "\x00" + CANARY,
}


@pytest.mark.parametrize(
    ("front_end", "bad"),
    front_end_cases(
        FRONT_ENDS,
        BAD_TOKENS,
        # The command through --token-stdin takes a NUL: test_command_every_verb_and_error_path.
        {("cli", "a NUL"): "an environment variable (SCNET_TOKEN) cannot hold a NUL"},
    ),
    indirect=["front_end"],
)
def test_bad_tokens_are_not_quoted_back(front_end: FrontEnd, sandbox: Sandbox, bad: str) -> None:
    target = Target(sandbox.base_url, BAD_TOKENS[bad])
    outcome = front_end.start(target, ID, "1223", "python app.py")
    assert outcome.error is not None and "token" in outcome.message.lower()
    audit(f"{front_end.name}: a token with {bad}", outcome)
    assert sandbox.requests == []


@pytest.mark.parametrize("token_via", ["SCNET_TOKEN", "--token-stdin"])
@pytest.mark.slow
def test_command_every_verb_and_error_path(
    sandbox: Sandbox, token_via: str, tmp_path: Path
) -> None:
    """``scnet`` with the canary given either way: every verb, text and JSON, and its errors;
    its stdout and stderr hold no token."""
    given: dict[str, str] = {}
    stdin = ""
    workdir = tmp_path / "instance"
    workdir.mkdir()
    if token_via == "SCNET_TOKEN":
        given["SCNET_TOKEN"] = CANARY
    else:
        stdin = CANARY + "\n"

    def scnet(*args: str, base_url: str = sandbox.base_url, token: str = "") -> str:
        extra = ["--token-stdin"] if token_via == "--token-stdin" else []
        run = run_scnet([*args, "--base-url", base_url, *extra], given, token or stdin)
        where = f"scnet {' '.join(args)} ({token_via})"
        assert_clean(where, run.stdout, run.stderr)
        assert "Traceback" not in run.stderr, run.stderr
        return run.stdout + run.stderr

    start = ["start", "--id", ID, "--port", "1223"]
    shown = [
        scnet(*start, "--command", "python app.py"),
        scnet(*start, "--json"),
        scnet("url", "--id", ID),
        scnet("url", "--id", ID, "--json"),
        scnet("notebooks"),
        scnet("notebooks", "--status", "Running", "--json"),
    ]
    assert "ksai.scnet.cn" in shown[0] and '"notebook_id"' in shown[1]
    assert "sdxl-webui" in shown[4]
    with Sandbox() as other:  # the platform refuses the canary
        assert "10009" in scnet(*start, base_url=other.base_url)
        assert "10009" in scnet("notebooks", base_url=other.base_url)
    nobody = f"http://127.0.0.1:{free_port()}"
    errors = {
        "an API error": scnet("start", "--id", TERMINATED, "--port", "1223"),
        "bad input": scnet("start", "--id", ID, "--port", "0"),
        "a bad base URL": scnet(*start, base_url="ftp://127.0.0.1"),
        "connection refused": scnet(*start, base_url=nobody),
        "a stray word": scnet(*start, "python", "app.py"),
    }
    with Sandbox(token=CANARY, execute=True, workdir=workdir, ready_timeout=0.3) as gateway:
        waited = ["--port", str(free_port()), "--command", "sleep 30", "--wait", "1"]
        errors["not ready in time"] = scnet("start", "--id", ID, *waited, base_url=gateway.base_url)
    sandbox.fault = "html502"
    errors["a bad answer"] = scnet(*start)
    sandbox.fault = "slow-headers"
    errors["a timeout"] = scnet(*start, "--timeout", str(TIMEOUT))
    sandbox.fault = None
    if token_via == "--token-stdin":  # a bad token on standard input is not quoted back
        for name, bad in BAD_TOKENS.items():
            if name != "a line break":  # one line is read: a line break ends the token
                errors[f"a token with {name}"] = scnet(*start, token=bad + "\n")
    for where, text in errors.items():
        assert "error:" in text, (where, text)


def test_form_with_the_token_configured(
    sandbox: Sandbox, ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The form in a session whose token was typed at %scnet_token: listed notebooks, a
    start, a bad answer, a refusal of the token; every widget's state audited after each."""
    magic = MagicFrontEnd(ip, monkeypatch)
    magic.run(magic.point_at(Target(sandbox.base_url, CANARY, TIMEOUT)))
    shown = magic.run(["f = %scnet_start", "f"])
    assert shown.error is None, shown.shown
    form = ip.user_ns["f"]
    assert form.wait(30) and len(form.notebook_menu.options) == 25
    audit("the form as shown", shown)
    assert_clean("the form's widgets", *form_texts(form))
    form.notebook_id.value, form.port.value = ID, "1223"
    click = FormFrontEnd(monkeypatch).click_start
    started = click(form)
    assert started.result is not None, started.shown
    audit("the form: a started service", started)
    sandbox.fault = "401-plain"
    audit("the form: a bad answer", click(form))
    sandbox.fault = None
    with Sandbox() as other:  # the platform refuses the canary, for the list and the start
        form.base_url.value = other.base_url
        form.refresh_button.click()
        assert form.wait(30) and "10009" in form.notebook_note.value
        refused = click(form)
    assert refused.error is not None and "10009" in refused.message
    audit("the form: the token refused", refused)
    assert "%scnet_token" in form.token_note.value


def test_reprs_of_everything_that_holds_the_token(
    sandbox: Sandbox, ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = ScnetClient(base_url=sandbox.base_url, token=CANARY)
    settings = resolve(token=CANARY, base_url=sandbox.base_url)
    magics = ip.magics_manager.registry["ScnetMagics"]
    magic = MagicFrontEnd(ip, monkeypatch)
    magic.run(magic.point_at(Target(sandbox.base_url, CANARY)))  # the token now in the session
    shown = magic.run(["%config ScnetMagics", "%config", "%who", "%whos"]).shown
    assert_clean("reprs", repr(client), str(client), repr(settings), repr(magics), shown)
    assert "ScnetMagics" in shown


@pytest.mark.slow
def test_full_tracebacks_with_variables(
    ip: InteractiveShell, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``short_errors = False`` with ``%xmode Verbose``: every frame's variables are shown."""
    magic = MagicFrontEnd(ip, monkeypatch)
    mode = ip.InteractiveTB.mode
    start = f"%scnet_start --id {ID} --port 1223"
    try:
        setup = ["%config ScnetMagics.short_errors = False", "%xmode Verbose"]
        magic.run([*setup, *magic.point_at(Target(sandbox.base_url, CANARY, TIMEOUT))])
        outcomes: dict[str, Outcome] = {}
        for fault in ("html502", "reset", "slow-headers"):
            sandbox.fault = fault
            outcomes[fault] = magic.run([start])
        sandbox.fault = None
        refused = f"%config ScnetMagics.base_url = 'http://127.0.0.1:{free_port()}'"
        outcomes["connection refused"] = magic.run([refused, start])
        bad_url = "%config ScnetMagics.base_url = 'ftp://x'"
        outcomes["a refused setting"] = magic.run([bad_url, start])
    finally:
        ip.run_line_magic("xmode", mode)
    for where, outcome in outcomes.items():
        assert outcome.error is not None and "Traceback" in outcome.shown, where
        audit(f"verbose traceback: {where}", outcome)


# -- what is kept: the history database and saved notebooks ---------------------------------

HISTORY_SESSION = r"""
import getpass
import sys

from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from scnet_magic.sandbox import Sandbox

typed = sys.stdin.readline().rstrip("\n")  # the token, as typed at the hidden prompt
getpass.getpass = lambda prompt="": typed

config = Config()
config.HistoryManager.enabled = True
config.HistoryManager.db_log_output = True  # outputs too, not only inputs
ip = InteractiveShell.instance(config=config)
with Sandbox(token=typed) as sandbox, Sandbox(token=typed) as faulty, Sandbox() as other:
    faulty.fault = "html502"
    start = f"%scnet_start --id {sandbox.notebook_id} --port"
    cells = [
        "%load_ext scnet_magic",
        f"%config ScnetMagics.base_url = {sandbox.base_url!r}",
        "%scnet_token",
        f"r = {start} 1223 --command 'python app.py'",
        "r",
        "r.to_dict()",
        f"%%scnet_start --id {sandbox.notebook_id} --port 1224\npython app.py --port 1224",
        f"{start} 0",
        f"%config ScnetMagics.base_url = {faulty.base_url!r}",
        f"{start} 1223",
        f"%config ScnetMagics.base_url = {other.base_url!r}",
        f"{start} 1223",
        "import getpass\nfrom scnet_magic import ScnetClient",
        f"client = ScnetClient(base_url={sandbox.base_url!r}, token=getpass.getpass())\nclient",
        "'history-marker-7d1e'",
        "%scnet_token --clear",
    ]
    for cell in cells:
        ip.run_cell(cell, store_history=True)
print("history file:", ip.history_manager.hist_file)
ip.atexit_operations()
"""


def test_ipython_history_database(tmp_path: Path) -> None:
    """A real IPython session with history on, in a profile of its own; then the file's bytes."""
    ipython_dir = tmp_path / "ipython"
    env = {**os.environ, "IPYTHONDIR": str(ipython_dir)}
    run = subprocess.run(
        [sys.executable, "-c", HISTORY_SESSION],
        input=CANARY + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert_clean("the IPython session's output", run.stdout, run.stderr)
    files = [p for p in ipython_dir.rglob("*") if p.is_file()]
    database = ipython_dir / "profile_default" / "history.sqlite"
    assert database in files, files
    for path in files:
        assert_clean(f"{path.relative_to(tmp_path)}", path.read_bytes())
    # The database holds the session: inputs and outputs, so a token there would be found.
    data = database.read_bytes()
    for expected in (b"history-marker-7d1e", b"scnet_token", b"ksai.scnet.cn", b"to_dict"):
        assert expected in data


NOTEBOOK_CELLS = [
    "%load_ext scnet_magic",
    # The package's and urllib3's DEBUG logs go into the cell outputs, and so into the file.
    "import logging, sys\n"
    "handler = logging.StreamHandler(sys.stdout)\n"
    "handler.setFormatter(logging.Formatter('%(name)s %(levelname)s %(message)s'))\n"
    "for name in ('scnet_magic', 'urllib3'):\n"
    "    logging.getLogger(name).setLevel(logging.DEBUG)\n"
    "    logging.getLogger(name).addHandler(handler)",
    "r = %scnet_start --id {id} --port 1223 --command 'python app.py'\nr",
    "%%scnet_start --id {id} --port 1224\npython app.py --port 1224",
    "%scnet_start --id {id} --port 0",
    "%scnet_start --id {terminated} --port 1223",
    "%config ScnetMagics.base_url = '{faulty}'\n%scnet_start --id {id} --port 1223",
    "%config ScnetMagics.short_errors = False\n%xmode Verbose",
    "%scnet_start --id {id} --port 1223",
    "%config ScnetMagics.base_url = '{nobody}'\n%scnet_start --id {id} --port 1223",
    "%xmode Context\n%config ScnetMagics.short_errors = True\n%config ScnetMagics.base_url = None",
    "from scnet_magic import ScnetClient\n"
    "client = ScnetClient()\n"
    "client, client.start_service('{id}', 1225).to_dict()",
    "%config ScnetMagics",
]


def _executed_and_saved(cells: list[str], path: Path) -> bytes:
    """The cells run in a real kernel (errors kept as outputs), saved to ``path``: its bytes."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(cell) for cell in cells]
    NotebookClient(
        notebook,
        timeout=60,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    nbformat.write(notebook, path)
    return path.read_bytes()


@pytest.mark.slow
def test_executed_and_saved_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A notebook run by a real kernel with SCNET_TOKEN set to the canary, saved, then read."""
    with Sandbox(token=CANARY) as sandbox, Sandbox(token=CANARY) as faulty:
        faulty.fault = "html502"
        monkeypatch.setenv("SCNET_TOKEN", CANARY)
        monkeypatch.setenv("SCNET_BASE_URL", sandbox.base_url)
        monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
        values = {
            "id": ID,
            "terminated": TERMINATED,
            "faulty": faulty.base_url,
            "nobody": f"http://127.0.0.1:{free_port()}",
        }
        cells = [cell.format(**values) if "{" in cell else cell for cell in NOTEBOOK_CELLS]
        data = _executed_and_saved(cells, tmp_path / "audit.ipynb")
    assert_clean("the saved notebook", data)
    for kept in (tmp_path / "ipython").rglob("*.sqlite"):
        assert_clean(f"the kernel's {kept.name}", kept.read_bytes())
    # The notebook holds what the audit is about: results, errors, tracebacks and DEBUG logs.
    expected = [b"ksai.scnet.cn", b"UsageError", b"HTTP 502", b"Traceback", b"refused"]
    expected += [b"urllib3.connectionpool DEBUG", b"scnet_magic.transport DEBUG"]
    for text in expected:
        assert text in data, text


# -- signing in across the three hosts ------------------------------------------------------


def test_sign_in_paths_across_the_three_hosts(
    login_env: Sandbox,
    ip: InteractiveShell,
    monkeypatch: pytest.MonkeyPatch,
    debug_logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The secret key and every token stay out of what sign-in shows, raises and logs, on the
    paths the platform's layout adds: the status with its three addresses, the renewal array,
    a platform URL at the wrong host, an AI address without notebook APIs, the platform token
    refused."""
    texts: list[str] = []

    def failure(call: object) -> None:
        try:
            call()  # type: ignore[operator]
        except ScnetError as exc:
            cause: BaseException | None = exc
            while cause is not None:
                texts.extend([str(cause), repr(cause), getattr(cause, "hint", "")])
                cause = cause.__cause__ or cause.__context__
        else:
            raise AssertionError("expected a failure")

    signed = sign_in(region="昆山")
    renewed = renew_token(signed.token)  # the documented array answer
    texts += [repr(signed), signed.describe(), repr(token_state(renewed))]
    with capture_output() as out:
        ip.run_line_magic("scnet_login", "--region 西安")
        ip.run_line_magic("scnet_login", "--status")
        ip.run_line_magic("scnet_login", "--renew")
    texts += [out.stdout, out.stderr, repr(out.outputs)]
    assert cli_main(["login", "--region", "昆山", "--save"]) == 0
    assert cli_main(["login", "--status", "--json"]) == 0
    assert cli_main(["login", "--status"]) == 0
    platform = login_env.issue_token("0")
    failure(lambda: token_state(platform))  # 10001 at the platform host
    failure(lambda: ScnetClient(base_url=login_env.base_url, token=platform).list_notebooks())
    monkeypatch.setenv("SCNET_AC_URL", login_env.login_url)
    failure(lambda: sign_in(region="昆山"))
    monkeypatch.setenv("SCNET_AC_URL", login_env.ac_url)
    login_env.answers["/ac/openapi/v2/center"] = {
        "code": "0",
        "msg": "success",
        "data": {"aiUrls": [{"url": login_env.login_url}]},
    }
    failure(lambda: sign_in(region="昆山"))
    with capture_output() as refused:
        ip.run_cell("%scnet_login --region 昆山")
    texts += [refused.stdout, refused.stderr]
    texts += [repr(login_env.requests)]
    texts += [record.getMessage() for record in debug_logs.records]
    captured = capsys.readouterr()
    texts += [captured.out, captured.err]
    assert "serves no notebook API" in " ".join(texts)
    issued = [signed.token, renewed, platform, *login_env._issued]
    for text in texts:
        assert SECRET_CANARY not in text
        assert not any(token in text for token in issued), text[:200]


# -- the instance around the service: boot, stop, detail -------------------------------------


@pytest.mark.slow
def test_instance_paths(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Booting, stopping and the detail, through Python, the magics and ``scnet``, with their
    successes and errors (a boot that fails, an unknown id, a stop of a stopped instance, a
    wait that runs out): nothing shown, returned or logged holds the token."""
    from scnet_magic import InstanceError, ScnetError, service
    from scnet_magic.validation import start_request

    workdir = tmp_path / "instance"
    workdir.mkdir()
    with Sandbox(token=CANARY, execute=True, workdir=workdir, ready_timeout=0.3) as sb:
        sb.boot_seconds, sb.stop_seconds = 0.3, 0.2
        texts: list[str] = []
        with ScnetClient(base_url=sb.base_url, token=CANARY, ac_url=sb.ac_url) as client:

            class Booting(service.StartObserver):
                def booting(self, progress: object) -> None:
                    texts.append(progress)

            started = service.start(
                start_request(TERMINATED, free_port()), client, boot=True, observer=Booting()
            )
            detail = client.notebook(TERMINATED)
            texts += [repr(started), repr(detail), detail._repr_html_(), repr(client)]
            texts += [repr(client.stop_notebook(TERMINATED)), repr(client.list_notebooks())]
            client.wait_for_notebook(TERMINATED, "Terminated", timeout=10)
            texts.append(repr(client.stop_notebook(TERMINATED)))  # already stopped
            sb.failing.add(TERMINATED)
            for call in (
                lambda: service.start(start_request(TERMINATED, 1223), client),
                lambda: service.start(start_request(TERMINATED, 1223), client, boot=True),
                lambda: client.notebook("1234567890123456789"),
                lambda: client.stop_notebook("1234567890123456789"),
                lambda: client.boot_notebook("1234567890123456789"),
                lambda: client.wait_for_notebook(ID, "Terminated", timeout=0.3),
            ):
                with pytest.raises(ScnetError) as caught:
                    call()
                texts += [str(caught.value), caught.value.user_message(), repr(caught.value)]
            assert isinstance(caught.value, InstanceError)
        assert_clean("the instance calls from Python", *map(str, texts))

        magic = MagicFrontEnd(ip, monkeypatch)
        monkeypatch.setenv("SCNET_AC_URL", sb.ac_url)
        setup = magic.point_at(Target(sb.base_url, CANARY))
        port = free_port()
        command = f"{sys.executable} -m http.server {port} --bind 127.0.0.1"
        for cells in (
            [f'%scnet_start --id {ID} --boot --wait 20 --port {port} --command "{command}"'],
            [f"%scnet_url --id {ID}", "%scnet_notebooks"],
            [f"%scnet_stop --id {ID} --yes", f"%scnet_stop --id {ID} --yes"],
            [f"%scnet_start --id {TERMINATED} --boot --port 1223"],  # it fails to boot
            ["%scnet_stop --id 1234567890123456789 --yes"],
        ):
            audit(f"magics: {cells}", magic.run([*setup, *cells]))

        env = {"SCNET_TOKEN": CANARY, "SCNET_AC_URL": sb.ac_url, "SCNET_BASE_URL": sb.base_url}
        for words, stdin in (
            (["start", "--id", ID, "--boot", "--port", "1223"], ""),
            (["url", "--id", ID], ""),
            (["stop", "--id", ID], "wrong name\n"),
            (["stop", "--id", ID, "--yes", "--json"], ""),
            (["start", "--id", ID, "--port", "1223"], ""),  # stopped: the --boot hint
            (["stop", "--id", "1234567890123456789", "--yes"], ""),
        ):
            run = run_scnet(words, env, stdin)
            assert_clean(f"scnet {' '.join(words)}", run.stdout, run.stderr)
            assert "Traceback" not in run.stderr, run.stderr


# -- a server that echoes what it was sent, and one that answers nonsense ---------------------

ECHO_KINDS = sorted(kind for kind in KINDS if kind.startswith("echo"))
# The command (a subprocess per run) meets the echoes of each place: fields, escapes, headers.
COMMAND_ECHO_KINDS = ["echo-request", "echo-every-field-escaped", "echo-redirect", "echo-reason"]
NONSENSE_KINDS = sorted(k for k in KINDS if k.startswith(("escapes", "nested", "endless")))
COMMAND_NONSENSE_KINDS = ["escapes-every-field", "escapes-reason", "nested-arrays"]
# What a terminal obeys: C0 controls but tab and newline, DEL, C1 controls, bidi overrides.
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.slow
def test_a_server_that_echoes_the_token_in_every_field_and_header(front_end: FrontEnd) -> None:
    """The server sends back what it received (the token in messages, error pages, the reason
    phrase, a redirect's Location, URL fields, JSON escapes of it): no front end shows it."""
    kinds = COMMAND_ECHO_KINDS if isinstance(front_end, CommandFrontEnd) else ECHO_KINDS
    for kind in kinds:
        with hostile_server(KINDS[kind]) as server:
            target = Target(server.url, CANARY, TIMEOUT * 4)
            outcome = front_end.start(target, ID, "1223", "python app.py")
        assert CANARY in server.received[0].echo, kind  # the token was there to echo
        audit(f"{front_end.name}: a server answering {kind}", outcome)


@pytest.mark.slow
def test_a_server_that_answers_escapes_nested_json_and_an_endless_list(
    front_end: FrontEnd,
) -> None:
    """Terminal escapes reach no front end; nested JSON (and an answer of another endpoint)
    ends in the front end's one-line error, never a traceback."""
    kinds = COMMAND_NONSENSE_KINDS if isinstance(front_end, CommandFrontEnd) else NONSENSE_KINDS
    for kind in kinds:
        with hostile_server(KINDS[kind]) as server:
            target = Target(server.url, CANARY, TIMEOUT * 4)
            outcome = front_end.start(target, ID, "1223", "python app.py")
        where = f"{front_end.name}: a server answering {kind}"
        audit(where, outcome)
        for text in [outcome.shown, *outcome.texts]:
            assert CONTROLS.search(text) is None, (where, text[:300])
        if kind.startswith("nested"):
            assert isinstance(outcome.error, front_end.user_error), (where, repr(outcome.error))
            assert "nested more than 64 levels" in outcome.message, (where, outcome.message)
            assert "\n" not in outcome.message and "Traceback" not in outcome.shown, where


def test_an_endless_notebook_list_through_the_magic_and_the_command(
    ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page full and a total never reached: the list stops and says what it read."""
    with hostile_server(KINDS["endless-list"]) as server:
        magic = MagicFrontEnd(ip, monkeypatch)
        shown = magic.run([*magic.point_at(Target(server.url, CANARY)), "%scnet_notebooks"])
        read_by_magic = len(server.received)
        run = run_scnet(["notebooks", "--base-url", server.url], {"SCNET_TOKEN": CANARY})
    assert isinstance(shown.error, UsageError) and "did not end after" in shown.message
    assert f"{MAX_PAGES} pages" in shown.message and read_by_magic == MAX_PAGES
    assert run.returncode == 1 and "did not end after" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and "--status" in run.stderr
    audit("an endless list", shown)
    assert_clean("scnet notebooks of an endless list", run.stdout, run.stderr)


def test_a_renewal_that_gives_the_same_token_back_keeps_it(login_env: Sandbox) -> None:
    """The answer holds the very token sent (hidden as every echo of it is): it stays."""
    token = login_env.issue_token("11276")
    for data in (token, {"token": token}, [{"clusterId": "11276", "token": token}]):
        login_env.answers["/ac/openapi/v2/tokens/next"] = {"code": "0", "msg": "ok", "data": data}
        assert renew_token(token, ac_url=login_env.ac_url, timeout=5) == token


ECHO_NOTEBOOK_CELLS = [
    "%load_ext scnet_magic",
    "import logging, sys\n"
    "handler = logging.StreamHandler(sys.stdout)\n"
    "handler.setFormatter(logging.Formatter('%(name)s %(levelname)s %(message)s'))\n"
    "for name in ('scnet_magic', 'urllib3'):\n"
    "    logging.getLogger(name).setLevel(logging.DEBUG)\n"
    "    logging.getLogger(name).addHandler(handler)",
    "%scnet_start --id {id} --port 1223",
    "%scnet_url --id {id}",
    "%scnet_notebooks",
    "%config ScnetMagics.base_url = '{fields}'\nr = %scnet_start --id {id} --port 1223\nr",
    "%config ScnetMagics.base_url = None",
    "%config ScnetMagics.short_errors = False\n%xmode Verbose",
    "%scnet_start --id {id} --port 1223",
    "%scnet_url --id {id}",
    "from scnet_magic import ScnetClient\nScnetClient().list_notebooks()",
]


@pytest.mark.slow
def test_a_saved_notebook_after_a_server_that_echoes_the_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real kernel, its DEBUG logs in the cells, verbose tracebacks with every frame's
    variables: the saved notebook holds no echo of the token."""
    with (
        hostile_server(KINDS["echo-request"]) as server,
        hostile_server(KINDS["echo-every-field-escaped"]) as fields,
    ):
        monkeypatch.setenv("SCNET_TOKEN", CANARY)
        monkeypatch.setenv("SCNET_BASE_URL", server.url)
        monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
        cells = [cell.format(id=ID, fields=fields.url) for cell in ECHO_NOTEBOOK_CELLS]
        data = _executed_and_saved(cells, tmp_path / "echo.ipynb")
    assert all(CANARY in received.echo for received in server.received)
    assert_clean("the saved notebook", data)
    for expected in (b"<token hidden>", b"Traceback", b"HTTP 500", b"scnet_magic.transport DEBUG"):
        assert expected in data, expected
