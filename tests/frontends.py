"""The ways a user can start a service, behind one interface, so every table runs through each.

A front end takes what the user gives (notebook id, port and command, as the user would type
them) and where to send it (a :class:`Target`), and returns an :class:`Outcome`: the result, or
the one error the user got, plus everything the front end showed. Settings front ends do the
same for the base URL, the token and the timeout.

Adding a front end is adding one adapter class with a ``start`` method and listing it in
``FRONT_ENDS`` (and in ``SETTINGS_FRONT_ENDS`` for the settings it can take); anything else it
leaves behind (widget state, output streams) goes into ``Outcome.texts`` so the token audit
sees it too. The form (``StartForm``, driven headlessly) and the ``scnet`` command (a real
subprocess) are adapters like the others.
"""

from __future__ import annotations

import contextlib
import getpass
import html
import io
import json
import os
import re
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ipywidgets as widgets
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from scnet_magic import ScnetClient, ScnetError, StartResult, cli
from scnet_magic.config import ENV_VARS
from scnet_magic.errors import as_sentence
from scnet_magic.sandbox import Sandbox
from scnet_magic.startform import StartForm

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """Where a front end sends its request."""

    base_url: str
    token: str
    timeout: float | None = None


@dataclass
class Outcome:
    """What one attempt came to, as the user saw it."""

    result: StartResult | None
    error: BaseException | None
    shown: str = ""  # printed output, displayed bundles, the error text: all the user could see
    elapsed: float = 0.0
    texts: list[str] = field(default_factory=list)  # reprs and chained errors, for the audit
    # Where the front end shows things, by name: the form's "problems" and "result" areas,
    # the command's "stdout" and "stderr". Empty for the API and the magics.
    areas: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None  # the command's exit status

    @property
    def message(self) -> str:
        assert self.error is not None, f"expected an error, got {self.result!r}"
        return str(self.error)

    @property
    def shown_message(self) -> str:
        """The message as the front ends write it to show: a sentence."""
        error = self.error
        return as_sentence(error.message) if isinstance(error, ScnetError) else self.message


class FrontEnd:
    """One way in. ``user_error`` is the exception type a user-facing failure has there."""

    name: str
    user_error: type[BaseException]
    takes_a_line = False  # parses a line of options (unbalanced quotes, unknown flags apply)

    def start(
        self, target: Target, notebook_id: str | None, port: str | None, command: str | None
    ) -> Outcome:
        raise NotImplementedError

    def start_line(self, target: Target, line: str, command: str | None) -> Outcome:
        raise NotImplementedError


def _error_texts(error: BaseException) -> list[str]:
    """The error and everything chained to it, as str and repr."""
    texts: list[str] = []
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        texts += [str(item), repr(item), str(getattr(item, "hint", ""))]
        todo += [item.__cause__, item.__context__]
    return texts


def _result_texts(result: StartResult) -> list[str]:
    return [repr(result), str(result), result._repr_html_(), repr(result.to_dict())]


class ApiFrontEnd(FrontEnd):
    """``ScnetClient(...).start_service(...)``: values go in exactly as given."""

    name = "api"
    user_error = ScnetError

    def start(self, target: Target, notebook_id: object, port: object, command: object) -> Outcome:
        began = time.monotonic()
        try:
            client = ScnetClient(
                base_url=target.base_url, token=target.token, timeout=target.timeout
            )
            with client:
                result = client.start_service(notebook_id, port, command)  # type: ignore[arg-type]
        except ScnetError as exc:
            elapsed = time.monotonic() - began
            return Outcome(None, exc, exc.user_message(), elapsed, _error_texts(exc))
        elapsed = time.monotonic() - began
        return Outcome(result, None, repr(result), elapsed, _result_texts(result))


class _MagicBase(FrontEnd):
    """The extension in a real IPython shell; cells run with ``run_cell`` like a notebook."""

    user_error = UsageError
    takes_a_line = True

    def __init__(self, ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ip = ip
        self.monkeypatch = monkeypatch

    def point_at(self, target: Target) -> list[str]:
        """Cells that aim the session at the target; the token is typed at the prompt."""
        self.monkeypatch.setattr(getpass, "getpass", lambda prompt="": target.token)
        cells = [f"%config ScnetMagics.base_url = {target.base_url!r}", "%scnet_token"]
        if target.timeout is not None:
            cells.append(f"%config ScnetMagics.timeout = {target.timeout!r}")
        return cells

    def run(self, cells: list[str]) -> Outcome:
        """Run cells in order, stopping at the first failure as "Run All" does.

        The result is the value of the last cell, as a notebook shows it (``Out``).
        """
        began = time.monotonic()
        error: BaseException | None = None
        value: object = None
        with capture_output() as out:
            for cell in cells:
                outcome = self.ip.run_cell(cell)
                if not outcome.success:
                    error = outcome.error_in_exec or outcome.error_before_exec
                    break
                value = outcome.result
        elapsed = time.monotonic() - began
        shown = "\n".join(
            [out.stdout, out.stderr]
            + [text for o in out.outputs for text in map(str, o.data.values())]
        )
        if error is not None:
            return Outcome(None, error, shown, elapsed, [shown, *_error_texts(error)])
        if not isinstance(value, StartResult):  # cells that set things up, or show settings
            return Outcome(None, None, shown, elapsed, [shown])
        return Outcome(value, None, shown, elapsed, [shown, *_result_texts(value)])

    @staticmethod
    def options(notebook_id: str | None, port: str | None) -> str:
        words = []
        if notebook_id is not None:
            words.append(f"--id {shlex.quote(notebook_id)}")
        if port is not None:
            words.append(f"--port {shlex.quote(port)}")
        return " ".join(words)


class MagicFrontEnd(_MagicBase):
    """``%scnet_start --id … --port … --command "…"``."""

    name = "magic"

    def start_line(self, target: Target, line: str, command: str | None) -> Outcome:
        if command is not None:
            line += f" --command {shlex.quote(command)}"
        return self.run([*self.point_at(target), f"%scnet_start {line}"])

    def start(
        self, target: Target, notebook_id: str | None, port: str | None, command: str | None
    ) -> Outcome:
        return self.start_line(target, self.options(notebook_id, port), command)


class CellMagicFrontEnd(_MagicBase):
    """``%%scnet_start --id … --port …`` with the command as the cell body."""

    name = "cell"

    def start_line(self, target: Target, line: str, command: str | None) -> Outcome:
        cell = f"%%scnet_start {line}\n{command if command is not None else ''}"
        return self.run([*self.point_at(target), cell])

    def start(
        self, target: Target, notebook_id: str | None, port: str | None, command: str | None
    ) -> Outcome:
        return self.start_line(target, self.options(notebook_id, port), command)


# -- the form ---------------------------------------------------------------------------------

FORM_WAIT = 30.0  # a bound for the form's background request, not a speed target


def widgets_in(root: widgets.Widget) -> list[widgets.Widget]:
    """Every widget reachable from root: children, layouts, styles, accordion pages."""
    found: list[widgets.Widget] = []
    todo: list[Any] = [root]
    while todo:
        item = todo.pop()
        if isinstance(item, (list, tuple)):
            todo.extend(item)
        elif isinstance(item, widgets.Widget) and not any(item is w for w in found):
            found.append(item)
            todo.extend(getattr(item, name) for name in item.keys)
    return found


def form_texts(form: StartForm) -> list[str]:
    """Everything the form holds or shows: every widget's state (what a saved notebook keeps
    and the front end receives), its reprs and its areas."""
    states = [json.dumps(w.get_state(), default=repr) for w in widgets_in(form.widget)]
    bundle = json.dumps(form._repr_mimebundle_(), default=repr)
    return [*states, bundle, repr(form), form.problems.value, form.result_area.value]


class FormFrontEnd(FrontEnd):
    """The start form, headless: the fields set as a user fills them in (the token typed into
    its field, the base URL under "Advanced"), Start clicked, the background request waited
    for. The timeout is not a field: it comes from ``SCNET_TIMEOUT``, as for the magics. No
    token is configured, so the form lists no notebooks: the only request is the start."""

    name = "form"
    user_error = ScnetError

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch

    def start(
        self, target: Target, notebook_id: str | None, port: str | None, command: str | None
    ) -> Outcome:
        if target.timeout is not None:
            self.monkeypatch.setenv(ENV_VARS["timeout"], str(target.timeout))
        form = StartForm()
        form.notebook_id.value = notebook_id or ""
        form.port.value = port or ""
        form.command.value = command or ""
        form.base_url.value = target.base_url
        form.token.value = target.token  # typed: the form moves it out of the field at once
        return self.click_start(form)

    def click_start(self, form: StartForm) -> Outcome:
        began = time.monotonic()
        form.start_button.click()
        assert form.wait(FORM_WAIT), "the form's start request did not finish"
        elapsed = time.monotonic() - began
        areas = {
            "problems": html.unescape(form.problems.value),
            "result": html.unescape(form.result_area.value),
        }
        notes = [html.unescape(form.notebook_note.value), html.unescape(form.token_note.value)]
        shown = "\n".join([*areas.values(), *notes])
        texts = [shown, *form_texts(form)]
        if form.error is not None:
            texts += _error_texts(form.error)
        if form.result is not None:
            texts += _result_texts(form.result)
        # A failed start keeps the last result in ``form.result``; this outcome is the error.
        result = form.result if form.error is None else None
        return Outcome(result, form.error, shown, elapsed, texts, areas)


# -- the scnet command ---------------------------------------------------------------------------

SCNET = [sys.executable, "-m", "scnet_magic"]
# The line the command reports an error on: its own ("scnet: error: …") or argparse's
# ("scnet start: error: …").
ERROR_LINE = re.compile(r"^scnet(?: \w+)?: error: (.*)$", re.MULTILINE)


class CommandError(Exception):
    """What the ``scnet`` command reported: its error line (without the prefix)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_scnet(
    args: list[str], env: Mapping[str, str] = {}, stdin: str = "", *, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """``scnet ARGS`` in the test's (isolated) environment plus ``env``, ``stdin`` piped in.

    It runs in this process (``cli.main``, which returns what the script exits with; a
    Python process a call cost more than the call itself); ``process=True`` runs the real
    script, for the tests that check what only a process shows.
    """
    if process:
        return subprocess.run(
            [*SCNET, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=90,
        )
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            _stdin(io.StringIO(stdin)),
        ):
            try:
                code = cli.main(list(args))
            except Exception:
                # What the interpreter would print before exiting 1; the checks look for it.
                traceback.print_exc()
                code = 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess([*SCNET, *args], code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def _stdin(stream: io.StringIO) -> Iterator[None]:
    saved, sys.stdin = sys.stdin, stream
    try:
        yield
    finally:
        sys.stdin = saved


def command_outcome(run: subprocess.CompletedProcess[str], elapsed: float) -> Outcome:
    """The outcome of one run of the command: the result its ``--json`` printed, or the error
    line of its stderr (all of stderr when there is not exactly one, so that the one-line
    checks fail on it)."""
    areas = {"stdout": run.stdout, "stderr": run.stderr}
    shown = run.stdout + run.stderr
    texts = [shown, *(str(arg) for arg in run.args)]
    if run.returncode != 0:
        lines = ERROR_LINE.findall(run.stderr)
        error = CommandError(lines[0] if len(lines) == 1 else run.stderr, run.returncode)
        # Besides the error line: a hint line, and argparse's usage block before it; nothing
        # else (a warning, a traceback).
        others = [
            line
            for line in run.stderr.splitlines()
            if not ERROR_LINE.match(line) and not line.startswith(("hint: ", "usage: ", " "))
        ]
        assert others == [], run.stderr
        return Outcome(None, error, shown, elapsed, texts, areas, run.returncode)
    fields = json.loads(run.stdout)
    result = StartResult(
        code=fields["code"],
        msg=fields["msg"],
        exec_success=fields["exec_success"],
        error_msg=fields["error_msg"],
        output=fields["output"],
        url=fields["url"],
        notebook_id=fields["notebook_id"],
        port=fields["port"],
        raw=fields["raw"],
        ready_after=fields["ready_after"],
        nothing_ran=fields["nothing_ran"],
    )
    assert result.to_dict() == fields, (result.to_dict(), fields)
    return Outcome(result, None, shown, elapsed, texts, areas, run.returncode)


class CommandFrontEnd(FrontEnd):
    """``scnet start --id … --port … --command … --base-url … [--timeout …] --json``, run
    through ``cli.main`` as the script runs it (see ``run_scnet``); the token in
    ``SCNET_TOKEN`` or, with ``token_stdin``, piped in with ``--token-stdin`` (it is never an
    argument). The shell splits the line into words, so
    ``start_line`` splits it as a shell does."""

    name = "cli"
    user_error = CommandError
    takes_a_line = True

    def __init__(self, token_stdin: bool = False) -> None:
        self.token_stdin = token_stdin
        if token_stdin:
            self.name = "cli-stdin"

    def run(self, target: Target, words: list[str]) -> Outcome:
        args = ["start", *words, "--base-url", target.base_url, "--json"]
        if target.timeout is not None:
            args += ["--timeout", str(target.timeout)]
        env, stdin = {}, ""
        if self.token_stdin:
            args.append("--token-stdin")
            stdin = target.token + "\n"
        else:
            env[ENV_VARS["token"]] = target.token
        began = time.monotonic()
        run = run_scnet(args, env, stdin)
        return command_outcome(run, time.monotonic() - began)

    def start_line(self, target: Target, line: str, command: str | None) -> Outcome:
        words = shlex.split(line)
        if command is not None:
            words += ["--command", command]
        return self.run(target, words)

    def start(
        self, target: Target, notebook_id: str | None, port: str | None, command: str | None
    ) -> Outcome:
        words = []
        for flag, value in (("--id", notebook_id), ("--port", port), ("--command", command)):
            if value is not None:
                words += [flag, value]
        return self.run(target, words)


# -- where each front end shows an error -----------------------------------------------------


# A sentence as shown: a capital, or a code identifier (an option, a magic, the command, a
# URL, a path, a number); a stop at its end. Lines of quoted output are not sentences.
_SENTENCE_START = re.compile(r"[A-Z]|--|%|scnet\b|https?://|/|~|\d|'|\"")
_STOPS = (".", "!", "?")


def shown_error_lines(outcome: Outcome) -> list[str]:
    """The error's message and hint as the front end wrote them, one sentence or two to a
    line: the form's error lines, the command's "error:" and "hint:" lines, a magic's one."""
    if "problems" in outcome.areas:  # the form: each message and hint in a line of its own
        html_areas = outcome.areas["problems"] + outcome.areas["result"]
        return re.findall(r"<div[^>]*>([^<>]+)</div>", html_areas)
    if "stderr" in outcome.areas:
        lines = outcome.areas["stderr"].splitlines()
        found = [line.split("error: ", 1)[1] for line in lines if ": error: " in line]
        return found + [line.removeprefix("hint: ") for line in lines if line.startswith("hint: ")]
    return [str(outcome.error)] if isinstance(outcome.error, UsageError) else []


def assert_reads_as_sentences(where: str, lines: Iterable[str]) -> None:
    for line in lines:
        if "\n" in line:
            continue
        assert _SENTENCE_START.match(line), (where, line)
        assert line.endswith(_STOPS), (where, line)


def check_shown_as_refused(outcome: Outcome) -> None:
    """Bad input, refused before sending: next to the form's fields (and no result), or on
    the command's stderr with exit code 2 (and nothing on stdout)."""
    line = outcome.shown_message
    if "problems" in outcome.areas:
        assert line in outcome.areas["problems"], outcome.areas
        assert outcome.areas["result"] == "", outcome.areas
    if outcome.exit_code is not None:
        assert outcome.exit_code == 2, outcome.areas
        assert outcome.areas["stdout"] == "", outcome.areas


def check_shown_as_failed(outcome: Outcome) -> None:
    """A failure of the platform or the network: in the form's result area (the fields were
    fine), or on the command's stderr with exit code 1."""
    line = outcome.shown_message
    if "result" in outcome.areas:
        assert line in outcome.areas["result"], outcome.areas
        assert outcome.areas["problems"] == "", outcome.areas
    if outcome.exit_code is not None:
        assert outcome.exit_code == 1, outcome.areas
        assert outcome.areas["stdout"] == "", outcome.areas


# -- tables that run through every front end -----------------------------------------------


def front_end_cases(
    front_ends: Iterable[str],
    cases: Iterable[str],
    not_applicable: Mapping[tuple[str, str], str],
    only: Mapping[str, Collection[str]] = {},
    slow: Collection[str] = (),
) -> list[Any]:
    """``(front end, case)`` parameters for a table. A pair in ``not_applicable`` is skipped
    with its reason; a front end in ``only`` runs just the cases listed for it (a
    representative subset where each run is costly); the cases in ``slow`` are marked so."""
    cases = sorted(cases)
    front_ends = sorted(front_ends)
    for front_end, subset in only.items():
        assert front_end in front_ends and set(subset) <= set(cases), (front_end, subset)
    params = []
    for front_end in front_ends:
        for case in cases:
            if front_end in only and case not in only[front_end]:
                continue
            reason = not_applicable.get((front_end, case))
            marks = [pytest.mark.skip(reason=f"not applicable: {reason}")] if reason else []
            if case in slow:
                marks.append(pytest.mark.slow)
            params.append(pytest.param(front_end, case, marks=marks, id=f"{front_end}-{case}"))
    return params


def _in_the_shell(
    make: Callable[[InteractiveShell, pytest.MonkeyPatch], T],
) -> Callable[[pytest.FixtureRequest], T]:
    """A factory for the registries below: the front end in the test's IPython shell."""
    return lambda request: make(
        request.getfixturevalue("ip"), request.getfixturevalue("monkeypatch")
    )


# Each front end by name, made from the test's fixtures.
FRONT_ENDS: dict[str, Callable[[pytest.FixtureRequest], FrontEnd]] = {
    "api": lambda request: ApiFrontEnd(),
    "magic": _in_the_shell(MagicFrontEnd),
    "cell": _in_the_shell(CellMagicFrontEnd),
    "form": lambda request: FormFrontEnd(request.getfixturevalue("monkeypatch")),
    "cli": lambda request: CommandFrontEnd(),
}


# -- settings: base URL, token, timeout ------------------------------------------------------


def python_literal(value: object) -> str:
    """The value as a user would write it after ``%config ScnetMagics.x =``."""
    if isinstance(value, float) and value != value * 0:  # inf or nan: no literal for them
        return f"float({str(value)!r})"
    return repr(value)


class SettingsFrontEnd:
    """One way to give a setting; ``settings`` says which of them it can take."""

    name: str
    settings: frozenset[str]
    user_error: type[BaseException]

    def start_with(self, sandbox: Sandbox, setting: str, value: object) -> Outcome:
        """Give ``setting`` the value, everything else pointing at the sandbox, and start."""
        raise NotImplementedError


def target_with(sandbox: Sandbox, setting: str, value: object) -> Target:
    """The sandbox as the target, with ``setting`` given ``value`` instead."""
    given: dict[str, object] = {"base_url": sandbox.base_url, "token": sandbox.token}
    given[setting] = value
    return Target(**given)  # type: ignore[arg-type]


class ApiSettings(SettingsFrontEnd):
    """``ScnetClient(base_url=…, token=…, timeout=…)``."""

    name = "api"
    settings = frozenset({"base_url", "token", "timeout"})
    user_error = ScnetError

    def start_with(self, sandbox: Sandbox, setting: str, value: object) -> Outcome:
        target = target_with(sandbox, setting, value)
        return ApiFrontEnd().start(target, sandbox.notebook_id, "1223", None)


class _MagicSettings(SettingsFrontEnd):
    """Settings given to the magic; the environment points at the sandbox too, so that a value
    the session quietly dropped (falling back to the environment) would show up as a request
    the sandbox received."""

    settings = frozenset({"base_url", "token", "timeout"})
    user_error = UsageError

    def __init__(self, ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
        self.magic = MagicFrontEnd(ip, monkeypatch)
        self.monkeypatch = monkeypatch

    def environment(self, sandbox: Sandbox) -> None:
        self.monkeypatch.setenv(ENV_VARS["base_url"], sandbox.base_url)
        self.monkeypatch.setenv(ENV_VARS["token"], sandbox.token)


class SessionSettings(_MagicSettings):
    """``%config ScnetMagics.base_url = …`` / ``.timeout = …``, and ``%scnet_token`` typed at
    the hidden prompt."""

    name = "session"

    def start_with(self, sandbox: Sandbox, setting: str, value: object) -> Outcome:
        self.environment(sandbox)
        typed = value if setting == "token" else sandbox.token
        self.monkeypatch.setattr(getpass, "getpass", lambda prompt="": typed)
        cells = ["%scnet_token"]
        if setting != "token":
            cells.append(f"%config ScnetMagics.{setting} = {python_literal(value)}")
        cells.append(f"%scnet_start --id {sandbox.notebook_id} --port 1223")
        return self.magic.run(cells)


class EnvironmentSettings(_MagicSettings):
    """``SCNET_BASE_URL`` / ``SCNET_TOKEN`` / ``SCNET_TIMEOUT``, read by the magic."""

    name = "env"

    def start_with(self, sandbox: Sandbox, setting: str, value: object) -> Outcome:
        self.environment(sandbox)
        self.monkeypatch.setenv(ENV_VARS[setting], str(value))
        return self.magic.run([f"%scnet_start --id {sandbox.notebook_id} --port 1223"])


class FormSettings(SettingsFrontEnd):
    """The form's Base URL field and its token field (typed); it has no timeout field."""

    name = "form"
    settings = frozenset({"base_url", "token"})
    user_error = ScnetError

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.form = FormFrontEnd(monkeypatch)

    def start_with(self, sandbox: Sandbox, setting: str, value: object) -> Outcome:
        target = target_with(sandbox, setting, value)
        return self.form.start(target, sandbox.notebook_id, "1223", None)


class CommandArguments(SettingsFrontEnd):
    """``scnet start --base-url … --timeout … --token-stdin``."""

    name = "cli"
    settings = frozenset({"base_url", "token", "timeout"})
    user_error = CommandError

    def start_with(self, sandbox: Sandbox, setting: str, value: object) -> Outcome:
        target = target_with(sandbox, setting, value)
        return CommandFrontEnd(token_stdin=True).start(target, sandbox.notebook_id, "1223", None)


class CommandEnvironment(SettingsFrontEnd):
    """``SCNET_BASE_URL`` / ``SCNET_TOKEN`` / ``SCNET_TIMEOUT``, read by ``scnet start``."""

    name = "cli-env"
    settings = frozenset({"base_url", "token", "timeout"})
    user_error = CommandError

    def start_with(self, sandbox: Sandbox, setting: str, value: object) -> Outcome:
        env = {ENV_VARS["base_url"]: sandbox.base_url, ENV_VARS["token"]: sandbox.token}
        env[ENV_VARS[setting]] = str(value)
        args = ["start", "--id", sandbox.notebook_id, "--port", "1223", "--json"]
        began = time.monotonic()
        run = run_scnet(args, env)
        return command_outcome(run, time.monotonic() - began)


SETTINGS_FRONT_ENDS: dict[str, Callable[[pytest.FixtureRequest], SettingsFrontEnd]] = {
    "api": lambda request: ApiSettings(),
    "session": _in_the_shell(SessionSettings),
    "env": _in_the_shell(EnvironmentSettings),
    "form": lambda request: FormSettings(request.getfixturevalue("monkeypatch")),
    "cli": lambda request: CommandArguments(),
    "cli-env": lambda request: CommandEnvironment(),
}
