"""The IPython magics: ``%scnet_start`` / ``%%scnet_start``, ``%scnet_url``, ``%scnet_notebooks``,
``%scnet_stop``, ``%scnet_login``, ``%scnet_token``, ``%scnet_sandbox``, ``%scnet_guard`` (in
:mod:`.guard`).

Front end only: parse the line, resolve the settings once, hand over to :mod:`scnet_magic.service`
(or the client and account calls), display the result. Failures reach the user as one-line
``UsageError`` messages (no traceback, and "Run All" still stops);
``%config ScnetMagics.short_errors = False`` shows the traceback. The client, ``requests`` and
the sandbox are imported on first use, so ``%load_ext`` stays cheap; the form and the region
picker (widgets) are handed in by the package when it loads the extension.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument
from traitlets import Bool, Float, Int, TraitError, Unicode, Union, observe, validate
from traitlets.config import Config, Configurable

from .. import config, i18n, validation
from ..config import DEFAULT_WAIT, Settings
from ..errors import ConfigError, InvalidInput, ScnetError, sentences
from ..i18n import N_, _
from . import instance
from .guard import protect_password, refuse_password_on_line, scnet_guard
from .line import (
    forget_input,
    notebook_id_argument,
    parse,
    readable_arguments,
    seconds,
    split,
    trait_value,
)
from .session import SessionMixin

if TYPE_CHECKING:
    from ..client import ScnetClient
    from ..models import Account, Login, NotebookList, ServiceUrl


class ShortError(UsageError):
    """A failure that is not the user's wrong usage (the platform refused, the service did not
    answer): one line under the error's own label ("ApiError: …") instead of "UsageError",
    still without a traceback, and still stopping "Run All"."""

    def __init__(self, message: str, label: str) -> None:
        super().__init__(message)
        self.label = label

    def _render_traceback_(self) -> list[str]:
        # IPython prints what this returns in place of a traceback (terminal and kernel).
        return [f"{self.label}: {self}"]


# Shows the start form: (settings callable, language, field defaults) -> the form.
FormFactory = Callable[..., Any]
# Shows a region dropdown for an account with several: (account, on_login) -> the widget.
RegionPicker = Callable[["Account", Callable[["Login"], str]], Any]


@magics_class
class ScnetMagics(SessionMixin, Magics, Configurable):
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
    language = Unicode(
        None,
        allow_none=True,
        help='Language of results, errors and the form: "en" or "zh" (also zh_CN, zh-CN). '
        "Default: SCNET_LANG, the config file's language, then the locale (LANG).",
    ).tag(config=True)
    short_errors = Bool(
        True,
        help="Show failures as one line without a traceback; False shows the full traceback.",
    ).tag(config=True)

    @validate("base_url")
    def _check_base_url(self, proposal: Any) -> str | None:
        return trait_value(validation.validate_base_url, proposal["value"])

    @validate("notebook_id")
    def _check_notebook_id(self, proposal: Any) -> str | None:
        return trait_value(validation.validate_notebook_id, proposal["value"])

    @validate("language")
    def _check_language(self, proposal: Any) -> str | None:
        return trait_value(validation.validate_language, proposal["value"])

    @observe("language")
    def _language_changed(self, change: Any) -> None:
        # Results IPython shows later (``r`` alone in a cell, ``form.result``) speak the
        # session's language too: this one, or (None) what it falls back to.
        i18n.follow(self.session_language)

    @validate("timeout")
    def _check_timeout(self, proposal: Any) -> float | None:
        return trait_value(validation.validate_timeout, proposal["value"])

    def __init__(self, shell: InteractiveShell) -> None:
        self._refused: dict[str, str] = {}  # setting -> why %config refused its last value
        # Magics.__init__ adds this object to shell.configurables, so %config lists it.
        super().__init__(shell=shell)
        self._token: str | None = None  # from %scnet_token, %scnet_login or %scnet_sandbox
        self._token_origin = "%scnet_token"  # which of those, for "using …" messages
        self._login: Login | None = None  # the last %scnet_login; memory only
        self._client: ScnetClient | None = None
        self._client_key: tuple[str, str, float, str] | None = None
        # Where this session signs in, renews and checks tokens (%scnet_sandbox points them at
        # its own hosts); None: the environment, the config file, the defaults.
        self._login_url: str | None = None
        self._ac_url: str | None = None
        self._sandbox: Any = None
        # What %scnet_sandbox replaced, restored by --stop.
        self._before_sandbox: tuple[Any, ...] | None = None
        # Widgets live in their own front end; the package hands in how to show them.
        self.show_form: FormFactory | None = None
        self.pick_region: RegionPicker | None = None
        self.confirm: instance.Confirm | None = None

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
                _(
                    "{problem} (refused by %config ScnetMagics.{name}, which kept its old value)"
                ).format(problem=problem, name=name),
                _("Set it again with a valid value, or to None for the default."),
            )
        return config.resolve(
            session={
                "token": self._token,
                "base_url": self.base_url,
                "notebook_id": self.notebook_id,
                "timeout": self.timeout,
                "language": self.language,
                "login_url": self._login_url,
                "ac_url": self._ac_url,
            },
            session_token_label=self._token_origin,
        )

    def session_language(self) -> str:
        """The session's language: ``%config ScnetMagics.language``, else ``SCNET_LANG``, the
        config file's, the locale. A config file that cannot be read gives the environment's
        (the settings, if the call needs them, say what is wrong with it)."""
        try:
            return config.resolve_language(self.language)
        except ScnetError:
            return i18n.environment_language()

    def client(self, settings: Settings | None = None) -> ScnetClient:
        """A client for the current settings, reused while they stay the same (keep-alive)."""
        from ..client import ScnetClient

        settings = settings or self.settings()
        key = (settings.base_url, settings.require_token(), settings.timeout, settings.ac_url)
        if self._client is None or key != self._client_key:
            self.close_client()
            self._client = ScnetClient.from_settings(settings)
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
        """Turn a ScnetError into a one-line UsageError (unless short_errors is off), and write
        every message of the block in the session's language, which results shown later keep.
        The config file is read once in the block: for the language, then for the settings."""
        try:
            with config.reading_once():
                language = self.session_language()
                i18n.set_language(language)
                with i18n.using(language):
                    yield
        except ScnetError as exc:
            if not self.short_errors:
                raise
            if isinstance(exc, (InvalidInput, ConfigError)):
                raise UsageError(exc.user_message()) from None
            raise ShortError(exc.user_message(), exc.label()) from None

    # -- %scnet_start ----------------------------------------------------------------------

    @readable_arguments(
        summary=N_(
            "Start a custom service in an SCNet notebook instance and show its external URL."
        )
    )
    @notebook_id_argument
    @argument("--port", metavar="PORT", help=N_("Port the service listens on inside the instance."))
    @argument(
        "--command",
        metavar="CMD",
        help=N_(
            "Shell command that starts the service (quote it). In the cell form, the cell "
            "body is the command. Leave it out to reach a service that is already running."
        ),
    )
    @argument(
        "--wait",
        nargs="?",
        const=DEFAULT_WAIT,
        type=seconds,
        metavar="SECONDS",
        # The default is written out (DEFAULT_WAIT) so that the text is one catalog entry.
        help=N_(
            "After starting, wait until the external URL answers (a gateway error such as "
            "502 does not count), up to SECONDS (300 when left out). Interrupt the kernel "
            "to stop waiting; the start request is never sent again."
        ),
    )
    @argument(
        "--protect",
        action="store_true",
        help=N_(
            "Put a password in front of the external URL: a guard on this machine asks for "
            "it and passes visitors who know it to PORT. The password is asked for without echo "
            "(or taken from SCNET_GUARD_PASSWORD), never given on the line. Needs a kernel "
            "running inside the instance."
        ),
    )
    @argument(
        "--boot",
        action="store_true",
        help=N_(
            "If the instance is not running, start it first and wait until it runs (its "
            "status is shown as it goes), then start the service."
        ),
    )
    @line_cell_magic
    def scnet_start(self, line: str = "", cell: str | None = None) -> Any:
        """Start a custom service in an SCNet notebook instance and show its external URL.

        Examples::

            %scnet_start --id 1896050410550136833 --port 1223 --command "python app.py"
            r = %scnet_start --port 7860 --command "python webui.py"
            %%scnet_start --id 1896050410550136833 --port 1223
            cd /root/app && python app.py --port 1223 > /root/app.log 2>&1
            %scnet_start --port 7860 --command "python webui.py > webui.log 2>&1" --wait 600

        With no arguments, shows a form. The result is displayed and returned (a
        ``StartResult``: ``.ok``, ``.pending``, ``.url``, ...). Set the token with
        ``%scnet_token`` or ``SCNET_TOKEN``; it is never accepted on the magic line.

        IPython expands ``$name`` and ``{expression}`` in the line (``--port $port`` works);
        the cell body is sent exactly as written, so use the cell form for a command that
        must keep its ``$`` and braces.

        With ``--wait``, the result says when the external URL answered (``.ready``,
        ``.ready_after``); not answering in time is an error naming the URL.
        """
        words = split(line)  # once: shlex reads a character at a time
        if cell is None and not words:  # nothing, or only a comment
            with self.user_errors():
                return self.form()
        with self.user_errors():
            refuse_password_on_line(words)
            args = parse(self.scnet_start, words)
            command = args.command
            if cell is not None:
                if command is not None:
                    raise InvalidInput(
                        _("give the command either with --command or in the cell, not both")
                    )
                command = cell.rstrip("\r\n")
            from .. import service

            settings = self.settings()
            request = service.prepare(settings, args.notebook_id, args.port, command)
            client = self.client(settings)
            password = protect_password(args.protect)
            from .starting import run_start

            return run_start(self, client, request, args.wait, password, boot=args.boot)

    def form(self, **defaults: Any) -> Any:
        """Show the start form, with this session's settings and language."""
        if self.show_form is None:
            raise ScnetError(_("the form needs the extension loaded with %load_ext scnet_magic"))
        return self.show_form(settings=self.settings, language=self.language, **defaults)

    scnet_guard = line_magic(scnet_guard)  # --list / --stop PORT: see magics/guard.py

    # -- %scnet_url and %scnet_notebooks ---------------------------------------------------

    @readable_arguments(
        summary=N_("Show the status and external URL of a notebook instance's custom service.")
    )
    @notebook_id_argument
    @line_magic
    def scnet_url(self, line: str = "") -> ServiceUrl:
        """Show the status and external URL of a notebook instance's custom service, and the
        instance around it: its status, custom port and command (an instance has one).

        Returns a ``ServiceUrl`` (``.url``, ``.status``, ``.active``, ``.instance``).
        """
        with self.user_errors():
            args = parse(self.scnet_url, line)
            settings = self.settings()
            from .. import display, service

            notebook_id = service.notebook_id_for(settings, args.notebook_id)
            found = service.service_url(self.client(settings), notebook_id)
            display.show(found)
        return found

    @readable_arguments(summary=N_("Show every notebook instance (all pages) as a table."))
    @argument(
        "--status",
        metavar="S",
        help=N_(
            "Only instances in this state: Creating, Restarting, Running, Terminated, Failed "
            "or Shutting."
        ),
    )
    @argument("--name", metavar="TEXT", help=N_("Only instances whose name contains TEXT."))
    @line_magic
    def scnet_notebooks(self, line: str = "") -> NotebookList:
        """Show every notebook instance (all pages) as a table of id, name and status.

        Returns the records as a ``NotebookList`` (a list of dicts with all their fields).
        """
        with self.user_errors():
            args = parse(self.scnet_notebooks, line)
            settings = self.settings()
            records = self.client(settings).list_notebooks(status=args.status, name=args.name)
            from .. import display

            display.show(records)
        return records

    scnet_stop = line_magic(instance.scnet_stop)

    # -- %scnet_token ----------------------------------------------------------------------

    @line_magic
    def scnet_token(self, line: str = "") -> None:
        """Ask for the SCNET token without echoing it; keep it in memory for this session.

        ``%scnet_token --clear`` forgets it. The token is never accepted on the line itself:
        the line is saved in the input history.
        """
        with self.user_errors():
            try:
                words = split(line)
            except UsageError:
                words = line.split()  # unbalanced quotes: still never echo the words
            values = [word for word in words if word != "--clear"]
            if values:
                # Do not echo the words: they may well be the token. The line is already in
                # the input history: take it out of there too.
                forget_input(self.shell, values)
                raise UsageError(
                    sentences(
                        _(
                            "%scnet_token takes no value on the line; the line was removed from "
                            "this session's input history"
                        ),
                        _(
                            "If it was a token, it has been seen: replace it with a new one. "
                            "Run %scnet_token alone and paste the token at the prompt."
                        ),
                    )
                )
        with self.user_errors():
            if words:
                self._token = None
                self.close_client()
                print(_("SCNET token cleared for this session."))
                return
            try:
                typed = getpass.getpass(_("SCNET token (hidden): "))
            except KeyboardInterrupt:
                print(_("Cancelled; the token is unchanged."))
                return
            self._token = validation.validate_token(typed)
            self._token_origin = "%scnet_token"
            self.close_client()
            print(_("SCNET token set for this session (kept in memory only)."))

    # -- %scnet_login ----------------------------------------------------------------------

    @readable_arguments(
        summary=N_(
            "Sign in with an access key pair; this session then uses the region's token and "
            "address."
        )
    )
    @argument(
        "--region",
        metavar="NAME_OR_ID",
        help=N_(
            "Region to use: its name, a unique part of it (昆山), or its id. Default: the only "
            "region, or a dropdown when the account has several."
        ),
    )
    @argument(
        "--user",
        metavar="NAME",
        help=N_("Account name. Default: SCNET_USER, user in the config file, or a prompt."),
    )
    @argument(
        "--save",
        action="store_true",
        help=N_(
            "Also write the token and address (never a key) to the user config file, "
            "readable by you only."
        ),
    )
    @argument("--renew", action="store_true", help=N_("Renew the current token instead."))
    @argument(
        "--status",
        action="store_true",
        help=N_("Show the account, region and address, and whether the token is still valid."),
    )
    @line_magic
    def scnet_login(self, line: str = "") -> None:
        """Sign in with an access key pair; this session then uses the region's token and address.

        Examples::

            %scnet_login                      # asks for what is not set; one region, or a list
            %scnet_login --region 昆山 --save
            %scnet_login --status
            %scnet_login --renew

        The account name, access key and secret key come from SCNET_USER, SCNET_ACCESS_KEY and
        SCNET_SECRET_KEY, the config file (user, access_key, secret_key), or hidden prompts; the
        keys are never accepted on the line (it is saved in the history) and the secret key is
        kept nowhere. Sign-in goes to https://api.scnet.cn (SCNET_LOGIN_URL), region
        discovery, renewal and the token check to https://www.scnet.cn (SCNET_AC_URL).
        """
        with self.user_errors():
            args = parse(self.scnet_login, line)
            if args.status and (args.renew or args.save or args.region or args.user):
                raise UsageError(_("%scnet_login --status takes no other option"))
            if args.renew and (args.region or args.user):
                raise UsageError(
                    _(
                        "%scnet_login --renew keeps the region: give --region or --user "
                        "only when signing in"
                    )
                )
            if args.status:
                print(self.login_status())
            elif args.renew:
                print(self.renew(save=args.save))
            else:
                try:
                    self.sign_in(args.region, args.user, save=args.save)
                except KeyboardInterrupt:
                    # Ctrl-C at a prompt: the user changed their mind, not a failure.
                    print(_("Cancelled; nothing was changed."))

    # -- %scnet_sandbox --------------------------------------------------------------------

    @readable_arguments(
        summary=N_("Start a local SCNet-compatible sandbox and point this session at it.")
    )
    @argument(
        "--execute",
        action="store_true",
        help=N_(
            "Run start commands for real on this machine (off: answer like the platform "
            "without running anything)."
        ),
    )
    @argument("--stop", action="store_true", help=N_("Stop the sandbox and restore the settings."))
    @line_magic
    def scnet_sandbox(self, line: str = "") -> Any:
        """Start a local SCNet-compatible sandbox and point this session at it.

        No account or network needed: the sandbox speaks the same API on 127.0.0.1 with a
        random token, which this session uses without showing it.
        """
        with self.user_errors():
            return self._sandbox_magic(line)

    def _sandbox_magic(self, line: str) -> Any:
        args = parse(self.scnet_sandbox, line)
        if args.stop:
            stopped = self._stop_sandbox()
            print(
                _("Sandbox stopped; settings restored.") if stopped else _("No sandbox is running.")
            )
            return None
        return self.use_sandbox(args.execute)


# One ScnetMagics per shell, so unload can find and close the one load created.
_LOADED: dict[int, ScnetMagics] = {}


def load(shell: InteractiveShell) -> ScnetMagics:
    if id(shell) in _LOADED:
        return _LOADED[id(shell)]
    magics = ScnetMagics(shell)
    shell.register_magics(magics)
    _LOADED[id(shell)] = magics
    # A form shown from plain Python in this session uses the session's settings, and results
    # IPython shows later speak the session's language.
    config.use_session(magics.settings)
    i18n.follow(magics.session_language)
    return magics


def unload(shell: InteractiveShell) -> None:
    magics = _LOADED.pop(id(shell), None)
    if magics is None:
        return
    magics.close()
    config.use_session(None)
    i18n.set_language(None)
    manager = shell.magics_manager
    for kind, names in magics.magics.items():
        for name in names:
            if getattr(manager.magics[kind].get(name), "__self__", None) is magics:
                del manager.magics[kind][name]
    manager.registry.pop(type(magics).__name__, None)
    configurables: list[Any] = shell.configurables
    configurables[:] = [c for c in configurables if c is not magics]
