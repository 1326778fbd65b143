"""The ways a user can start a service, behind one interface, so every table runs through each.

A front end takes what the user gives (notebook id, port and command, as the user would type
them) and where to send it (a :class:`Target`), and returns an :class:`Outcome`: the result, or
the one error the user got, plus everything the front end showed. Settings front ends do the
same for the base URL, the token and the timeout.

Adding a front end (the form, the ``scnet`` command) is adding one adapter class with a
``start`` method and listing it in ``FRONT_ENDS`` (and in ``SETTINGS_FRONT_ENDS`` for the
settings it can take); anything else it leaves behind (widget state, files) goes into
``Outcome.shown`` so the token audit sees it too.
"""

from __future__ import annotations

import getpass
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from scnet_magic import ScnetClient, ScnetError, StartResult
from scnet_magic.config import ENV_VARS
from scnet_magic.sandbox import Sandbox

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

    @property
    def message(self) -> str:
        assert self.error is not None, f"expected an error, got {self.result!r}"
        return str(self.error)


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

    def start_with(self, sandbox: Sandbox, setting: str, value: object) -> Outcome:
        """Give ``setting`` the value, everything else pointing at the sandbox, and start."""
        raise NotImplementedError


class ApiSettings(SettingsFrontEnd):
    """``ScnetClient(base_url=…, token=…, timeout=…)``."""

    name = "api"
    settings = frozenset({"base_url", "token", "timeout"})

    def start_with(self, sandbox: Sandbox, setting: str, value: object) -> Outcome:
        given: dict[str, object] = {"base_url": sandbox.base_url, "token": sandbox.token}
        given[setting] = value
        target = Target(**given)  # type: ignore[arg-type]
        return ApiFrontEnd().start(target, sandbox.notebook_id, "1223", None)


class _MagicSettings(SettingsFrontEnd):
    """Settings given to the magic; the environment points at the sandbox too, so that a value
    the session quietly dropped (falling back to the environment) would show up as a request
    the sandbox received."""

    settings = frozenset({"base_url", "token", "timeout"})

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


SETTINGS_FRONT_ENDS: dict[str, Callable[[pytest.FixtureRequest], SettingsFrontEnd]] = {
    "api": lambda request: ApiSettings(),
    "session": _in_the_shell(SessionSettings),
    "env": _in_the_shell(EnvironmentSettings),
}
