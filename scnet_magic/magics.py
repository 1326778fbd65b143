"""The IPython magics: ``%scnet_start`` / ``%%scnet_start``, ``%scnet_token``, ``%scnet_sandbox``.

Front end only: parse the line, resolve settings, hand over to :class:`ScnetClient`, display
the result. Failures reach the user as one-line ``UsageError`` messages (no traceback, and
"Run All" still stops); ``%config ScnetMagics.short_errors = False`` shows the traceback.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, Float, Int, TraitError, Unicode, Union, validate
from traitlets.config import Config, Configurable

from . import config, display, models
from .client import ScnetClient
from .config import Settings
from .errors import InvalidInput, ScnetError
from .models import StartResult

T = TypeVar("T")


@magics_class
class ScnetMagics(Magics, Configurable):
    """Start custom services in SCNet notebook instances."""

    base_url = Unicode(
        None,
        allow_none=True,
        help="Base URL of the SCNet API (your region's address). Default: SCNET_BASE_URL, "
        "the config file, or https://scnet-demo.accloud.cn.",
    ).tag(config=True)
    notebook_id = Union(
        [Unicode(), Int()],
        default_value=None,
        allow_none=True,
        help="Notebook instance id used when %scnet_start has no --id.",
    ).tag(config=True)
    timeout = Float(
        None, allow_none=True, help="Seconds to wait for each answer (default 60)."
    ).tag(config=True)
    short_errors = Bool(
        True,
        help="Show failures as one line without a traceback; False shows the full traceback.",
    ).tag(config=True)

    @validate("base_url")
    def _check_base_url(self, proposal: Any) -> str | None:
        return _trait_value(models.validate_base_url, proposal["value"])

    @validate("notebook_id")
    def _check_notebook_id(self, proposal: Any) -> str | None:
        return _trait_value(models.validate_notebook_id, proposal["value"])

    @validate("timeout")
    def _check_timeout(self, proposal: Any) -> float | None:
        return _trait_value(models.validate_timeout, proposal["value"])

    def __init__(self, shell: InteractiveShell) -> None:
        self._refused: dict[str, str] = {}  # setting -> why %config refused its last value
        # Magics.__init__ adds this object to shell.configurables, so %config lists it.
        super().__init__(shell=shell)
        self._token: str | None = None  # from %scnet_token or %scnet_sandbox; memory only
        self._client: ScnetClient | None = None
        self._client_key: tuple[str, str, float] | None = None
        self._sandbox: Any = None
        self._before_sandbox: tuple[Any, Any, str | None] | None = None

    # -- settings and errors ---------------------------------------------------------------

    def update_config(self, cfg: Config) -> None:
        # %config only logs a value the traits refuse and keeps the old one, so the next start
        # would quietly use a fallback: another base URL (with the token) or another notebook.
        # Remember the refusal and refuse to start until a valid value is set.
        # (%config hands every class's settings to every configurable: look at ours only.)
        ours = type(self).__name__
        names = list(cfg[ours]) if ours in cfg else []
        try:
            super().update_config(cfg)
        except TraitError as exc:
            self._refused.update(dict.fromkeys(names, str(exc)))
            raise
        for name in names:
            self._refused.pop(name, None)

    def settings(self) -> Settings:
        """The settings in force now: session values first, then environment, then file."""
        if self._refused:
            name, problem = next(iter(self._refused.items()))
            raise InvalidInput(
                f"{problem} (refused by %config ScnetMagics.{name}, which kept its old value)",
                "Set it again with a valid value, or to None for the default.",
            )
        return config.resolve(
            session={
                "token": self._token,
                "base_url": self.base_url,
                "notebook_id": self.notebook_id,
                "timeout": self.timeout,
            }
        )

    def client(self, settings: Settings | None = None) -> ScnetClient:
        """A client for the current settings, reused while they stay the same (keep-alive)."""
        settings = settings or self.settings()
        key = (settings.base_url, settings.require_token(), settings.timeout)
        if self._client is None or key != self._client_key:
            self.close_client()
            self._client = ScnetClient(base_url=key[0], token=key[1], timeout=key[2])
            self._client_key = key
        return self._client

    def close_client(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = self._client_key = None

    def close(self) -> None:
        """Release the client and stop a sandbox started from this session."""
        self.close_client()
        self._stop_sandbox()

    @contextmanager
    def user_errors(self) -> Iterator[None]:
        """Turn a ScnetError into a one-line UsageError (unless short_errors is off)."""
        try:
            yield
        except ScnetError as exc:
            if not self.short_errors:
                raise
            raise UsageError(exc.user_message()) from None

    # -- %scnet_start ----------------------------------------------------------------------

    @magic_arguments()
    @argument(
        "--id",
        dest="notebook_id",
        metavar="ID",
        help="Notebook instance id (19 digits). Default: ScnetMagics.notebook_id or "
        "SCNET_NOTEBOOK_ID.",
    )
    @argument("--port", metavar="PORT", help="Port the service listens on inside the instance.")
    @argument(
        "--command",
        metavar="CMD",
        help="Shell command that starts the service (quote it). In the cell form, the cell "
        "body is the command. Leave it out to reach a service that is already running.",
    )
    @line_cell_magic
    def scnet_start(self, line: str = "", cell: str | None = None) -> Any:
        """Start a custom service in an SCNet notebook instance and show its external URL.

        Examples::

            %scnet_start --id 1896050410550136833 --port 1223 --command "python app.py"
            r = %scnet_start --port 7860 --command "python webui.py"
            %%scnet_start --id 1896050410550136833 --port 1223
            cd /root/app && python app.py --port 1223 > /root/app.log 2>&1

        With no arguments, shows a form. The result is displayed and returned (a
        ``StartResult``: ``.ok``, ``.pending``, ``.url``, ...). Set the token with
        ``%scnet_token`` or ``SCNET_TOKEN``; it is never accepted on the magic line.
        """
        if cell is None and not line.strip():
            from .form import form

            return form(magics=self)
        with self.user_errors():
            args = _parse(self.scnet_start, line)
            command = args.command
            if cell is not None:
                if command is not None:
                    raise InvalidInput(
                        "give the command either with --command or in the cell, not both"
                    )
                command = cell.rstrip("\r\n")
            result = self.start(args.notebook_id, args.port, command)
        display.show(result)
        return result

    def start(self, notebook_id: str | None, port: str | None, command: str | None) -> StartResult:
        """Validate, resolve settings and send one start request."""
        if port is None:
            raise InvalidInput("--port is required", "Give the port the service listens on.")
        settings = self.settings()
        notebook_id = notebook_id if notebook_id is not None else settings.notebook_id
        if notebook_id is None:
            raise InvalidInput(
                "no notebook id",
                "Give --id, or set %config ScnetMagics.notebook_id or SCNET_NOTEBOOK_ID.",
            )
        # Validate everything before the token is even looked at, so bad input is reported
        # as such and nothing is sent.
        models.start_body(notebook_id, port, command)
        return self.client(settings).start_service(notebook_id, port, command)

    # -- %scnet_token ----------------------------------------------------------------------

    @line_magic
    def scnet_token(self, line: str = "") -> None:
        """Ask for the SCNET token without echoing it; keep it in memory for this session.

        ``%scnet_token --clear`` forgets it. The token is never accepted on the line itself:
        the line is saved in the input history.
        """
        words = line.split()
        if any(word != "--clear" for word in words):
            # Do not echo the words: they may well be the token.
            raise UsageError(
                "%scnet_token takes no value on the line (it would be saved in the history); "
                "run %scnet_token alone and paste the token at the prompt."
            )
        if words:
            self._token = None
            self.close_client()
            print("SCNET token cleared for this session.")
            return
        with self.user_errors():
            self._token = models.validate_token(getpass.getpass("SCNET token (hidden): "))
        self.close_client()
        print("SCNET token set for this session (kept in memory only).")

    # -- %scnet_sandbox --------------------------------------------------------------------

    @magic_arguments()
    @argument(
        "--execute",
        action="store_true",
        help="Run start commands for real on this machine (off: answer like the platform "
        "without running anything).",
    )
    @argument("--stop", action="store_true", help="Stop the sandbox and restore the settings.")
    @line_magic
    def scnet_sandbox(self, line: str = "") -> Any:
        """Start a local SCNet-compatible sandbox and point this session at it.

        No account or network needed: the sandbox speaks the same API on 127.0.0.1 with a
        random token, which this session uses without showing it.
        """
        args = _parse(self.scnet_sandbox, line)
        if args.stop:
            stopped = self._stop_sandbox()
            print("Sandbox stopped; settings restored." if stopped else "No sandbox is running.")
            return None
        from .sandbox import Sandbox

        self._stop_sandbox()
        # Commands run in the notebook's folder, as they would in the instance's home.
        sandbox = Sandbox(execute=args.execute, workdir=os.getcwd()).start()
        self._before_sandbox = (self.base_url, self.notebook_id, self._token)
        self._sandbox = sandbox
        self.base_url = sandbox.base_url
        self.notebook_id = sandbox.notebook_id
        self._token = sandbox.token
        self.close_client()
        mode = "on: commands run on this machine" if args.execute else "off"
        print(
            f"Sandbox running at {sandbox.base_url} (execution {mode}).\n"
            f"This session now uses it, with notebook {sandbox.notebook_id} as the default. "
            "Stop it with %scnet_sandbox --stop."
        )
        return sandbox

    def _stop_sandbox(self) -> bool:
        if self._sandbox is None:
            return False
        self._sandbox.stop()
        self._sandbox = None
        if self._before_sandbox is not None:
            self.base_url, self.notebook_id, self._token = self._before_sandbox
            self._before_sandbox = None
        self.close_client()
        return True


def _trait_value(check: Callable[[object], T], value: object) -> T | None:
    if value is None:
        return None
    try:
        return check(value)
    except InvalidInput as exc:
        raise TraitError(exc.message) from None


def _parse(magic: Any, line: str) -> argparse.Namespace:
    # Split like a POSIX shell, so that --command "a b" gives a b without the quotes
    # (IPython's parse_argstring keeps them).
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"cannot read the magic line: {exc} (check the quotes)") from None
    parser = magic.parser
    args, extra = parser.parse_known_args(words)
    if extra:
        # IPython's help formatter lays the usage out as a reST block ("::", indented lines).
        usage = " ".join(parser.format_usage().replace("::", " ").split())
        raise UsageError(_unexpected(extra, f"usage: {usage}"))
    return args  # type: ignore[no-any-return]


def _unexpected(words: list[str], usage: str) -> str:
    """What is wrong with words the magic does not take, without quoting any value.

    argparse would list them all, and a stray word on the line may well be a token.
    """
    options = [word.split("=", 1)[0] for word in words if word.startswith("-")]
    if options:
        message = f"unknown option {options[0]}; {usage}"
    else:
        count = len(words)
        message = f"{count} unexpected word{'s' if count > 1 else ''} on the line; {usage}"
    if any(option.startswith("--tok") for option in options):
        message += " The token is never given on the line: run %scnet_token."
    return message


# One ScnetMagics per shell, so unload can find and close the one load created.
_LOADED: dict[int, ScnetMagics] = {}


def load(shell: InteractiveShell) -> ScnetMagics:
    if id(shell) in _LOADED:
        return _LOADED[id(shell)]
    magics = ScnetMagics(shell)
    shell.register_magics(magics)
    _LOADED[id(shell)] = magics
    return magics


def unload(shell: InteractiveShell) -> None:
    magics = _LOADED.pop(id(shell), None)
    if magics is None:
        return
    magics.close()
    manager = shell.magics_manager
    for kind, names in magics.magics.items():
        for name in names:
            if getattr(manager.magics[kind].get(name), "__self__", None) is magics:
                del manager.magics[kind][name]
    manager.registry.pop(type(magics).__name__, None)
    configurables: list[Any] = shell.configurables
    configurables[:] = [c for c in configurables if c is not magics]
