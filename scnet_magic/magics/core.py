"""The IPython magics: :class:`ScnetMagics`, the options ``%config ScnetMagics.*`` sets and
``%scnet_start`` / ``%%scnet_start``, ``%scnet_url``, ``%scnet_notebooks``, ``%scnet_stop``
(after a confirmation: the instance around the service, every process in it); the other families
share its session, and :func:`load` registers them all. Front end only: parse the line, resolve
the settings once, hand over to :mod:`scnet_magic.service`, display the result. The client,
``requests`` and the sandbox are imported on first use, so ``%load_ext`` stays cheap."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import line_cell_magic, line_magic, magics_class
from IPython.display import display as show_widget
from traitlets import Bool, Float, Int, TraitError, Unicode, Union, observe, validate
from traitlets.config import Config, Configurable

from .. import arguments, config, display, i18n, validation
from ..config import DEFAULT_WAIT
from ..errors import InvalidInput, ScnetError
from ..i18n import N_, _
from .account import AccountMagics
from .base import SessionMagics, prompt_shows_value
from .doctor import DoctorMagics
from .guard import GuardMagics, ask_hidden, refuse_password_on_line
from .line import notebook_id_argument, option, parse, readable_arguments, split
from .sandbox import SandboxMagics
from .session import Session, Widgets

if TYPE_CHECKING:
    from ..models import NotebookList, ServiceUrl, StopResult


# What each setting %config may set is checked with.
_CHECKS = {
    "base_url": validation.validate_base_url,
    "notebook_id": validation.validate_notebook_id,
    "language": validation.validate_language,
    "timeout": validation.validate_timeout,
}


@magics_class
class ScnetMagics(SessionMagics, Configurable):
    """Start custom services in SCNet notebook instances; the options of every magic."""

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

    @validate("base_url", "notebook_id", "language", "timeout")
    def _check(self, proposal: Any) -> Any:
        if proposal["value"] is None:
            return None
        try:
            return _CHECKS[proposal["trait"].name](proposal["value"])
        except InvalidInput as exc:
            raise TraitError(exc.message) from None

    @observe("language")
    def _language_changed(self, change: Any) -> None:
        # Results IPython shows later (``r`` alone in a cell, ``form.result``) speak the
        # session's language too: this one, or (None) what it falls back to.
        i18n.set_language(self.session.language())

    def __init__(self, shell: InteractiveShell, widgets: Widgets) -> None:
        self.refused: dict[str, str] = {}  # setting -> why %config refused its last value
        # Magics.__init__ adds this object to shell.configurables, so %config lists it.
        super().__init__(shell, Session(self, shell=shell, widgets=widgets))

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
            # The language alone is safe to keep: it changes how things are said, not what is
            # sent where. The refusal is said at once, and the old language stays in force.
            refused = [name for name in names if name != "language"]
            self.refused.update(dict.fromkeys(refused, str(exc)))
            raise
        for name in names:
            self.refused.pop(name, None)

    @readable_arguments(
        summary=N_(
            "Start a custom service in an SCNet notebook instance and show its external URL."
        )
    )
    @notebook_id_argument
    @option(arguments.PORT)
    @option(arguments.COMMAND)
    @option(arguments.WAIT, const=DEFAULT_WAIT)
    @option(arguments.PROTECT)
    @option(arguments.BOOT)
    @option(arguments.REPLACE)
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
        with self.user_errors():
            words = split(line)  # once: shlex reads a character at a time
            if cell is None and not words:  # nothing, or only a comment: the form
                show_form = self.session.widgets.form
                if show_form is None:
                    raise ScnetError(
                        N_("the form needs the extension loaded with %load_ext scnet_magic")
                    )
                return show_form(settings=self.session.settings, language=self.language)
            options = self.scnet_start.parser._option_string_actions
            refuse_password_on_line(words, self.shell, options)
            args = parse(self.scnet_start, words)
            command = args.command
            if cell is not None:
                if command is not None:
                    raise InvalidInput(
                        N_("give the command either with --command or in the cell, not both")
                    )
                command = cell.rstrip("\r\n")
            from .. import service
            from .starting import StartDisplay, StartLine

            settings = self.session.settings()
            request = service.prepare(settings, args.notebook_id, args.port, command)
            client = self.session.client(settings)
            # Asked for once the start can go ahead.
            protect: str | Callable[[], str] | None = None
            if args.protect:
                protect = service.password_for(ask_hidden)
            now = not prompt_shows_value(self.shell, "scnet_start", line)
            shown: StartDisplay | StartLine
            if display.prints_only(self.shell):
                shown = StartLine(request, args.wait, now)
                protect = shown.line.prompting(protect)
            else:
                shown = StartDisplay(request, args.wait, args.boot, now)
            try:
                result = service.start(
                    request,
                    client,
                    wait=args.wait,
                    boot=args.boot,
                    protect=protect,
                    observer=shown,
                    replace=args.replace,
                )
            except service.StartInterrupted as stopped:
                if stopped.result is None:
                    shown.done_starting()
                    raise UsageError(service.interrupted_text(stopped, "%scnet_url")) from None
                # Interrupting the wait returns the result as it was.
                shown.final(stopped.result, note=_(service.STOPPED_WAITING))
                return stopped.result
            except ScnetError as exc:
                if exc.result is None:
                    shown.done_starting()
                else:
                    shown.final(exc.result, now=True)  # it did start: keep the result and URL
                raise
            shown.final(result)
        return result

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
            settings = self.session.settings()
            from .. import service

            notebook_id = service.notebook_id_for(settings, args.notebook_id)
            found = service.service_url(self.session.client(settings), notebook_id)
            self.show(found, "scnet_url", line)
        return found

    @readable_arguments(summary=N_("Show every notebook instance (all pages) as a table."))
    @option(arguments.STATUS)
    @option(arguments.NAME)
    @line_magic
    def scnet_notebooks(self, line: str = "") -> NotebookList:
        """Show every notebook instance (all pages) as a table of id, name and status.

        Returns a ``NotebookList`` of ``Notebook`` records (each as it came in ``.raw``).
        """
        with self.user_errors():
            args = parse(self.scnet_notebooks, line)
            settings = self.session.settings()
            from .. import service

            records = service.notebooks(
                self.session.client(settings), status=args.status, name=args.name
            )
            self.show(records, "scnet_notebooks", line)
        return records

    @readable_arguments(summary=N_("Stop a notebook instance: every process in it ends."))
    @notebook_id_argument
    @option(arguments.DISCARD_ENV)
    @option(arguments.YES)
    @line_magic
    def scnet_stop(self, line: str = "") -> StopResult | None:
        """Stop a notebook instance: every process in it ends (its services, terminals and
        kernels, this one too if this notebook runs there), and it stops costing card-hours.

        Examples::

            %scnet_stop                  # the default notebook; asks first
            %scnet_stop --id 1896050410550136833 --yes
            %scnet_stop --discard-env --yes

        Asks for confirmation unless ``--yes``: a button in a notebook, the instance's name typed
        in a terminal. Keeps the environment unless ``--discard-env``. Stopping an instance that is
        already stopped is not an error. Returns a ``StopResult`` (None when it waits for the
        button, or was not confirmed).
        """
        with self.user_errors():
            args = parse(self.scnet_stop, line)
            settings = self.session.settings()
            from .. import service

            notebook_id = service.notebook_id_for(settings, args.notebook_id)
            client = self.session.client(settings)
            stop = partial(client.stop_notebook, notebook_id, save_env=not args.discard_env)
            if not args.yes:
                record = client.notebook(notebook_id)
                warning = display.stop_warning(record.name, notebook_id)
                confirm = self.session.widgets.confirm
                if self.session.widgets_shown() and confirm is not None:
                    language = settings.language

                    def confirmed() -> str:
                        with i18n.using(language):
                            try:
                                return display.stop_html(stop())
                            except ScnetError as exc:
                                return display.error_html(exc)

                    show_widget(confirm(warning, _("Stop the instance"), confirmed))
                    return None
                expected = record.name or notebook_id
                print(warning)
                try:
                    typed = input(
                        _("Type the instance's name ({name}) to stop it: ").format(name=expected)
                    )
                except (EOFError, StdinNotImplementedError):
                    typed = ""
                if typed.strip() != expected:
                    print(_("Not stopped."))
                    return None
            result = stop()
            self.show(result, "scnet_stop", line)
        return result


# Each shell's magics, so that unload can find and close what load made.
_LOADED: dict[int, list[SessionMagics]] = {}


def load(shell: InteractiveShell, widgets: Widgets) -> None:
    """Register every family of magics on ``shell``, sharing one session; ``widgets`` shows
    the form, the region picker and confirmations (the package root hands them in)."""
    if id(shell) in _LOADED:
        return
    magics = ScnetMagics(shell, widgets)
    others = (AccountMagics, SandboxMagics, GuardMagics, DoctorMagics)
    families: list[SessionMagics] = [magics, *(family(shell, magics.session) for family in others)]
    for family in families:
        shell.register_magics(family)
    _LOADED[id(shell)] = families
    # A form shown from plain Python in this session uses the session's settings (results
    # IPython shows later speak the session's language from its first magic on).
    config.use_session(magics.session.settings)


def unload(shell: InteractiveShell) -> None:
    families = _LOADED.pop(id(shell), None)
    if families is None:
        return
    families[0].session.close()
    config.use_session(None)
    i18n.set_language(None)
    manager = shell.magics_manager
    for family in families:
        for kind, names in family.magics.items():
            for name in names:
                if getattr(manager.magics[kind].get(name), "__self__", None) is family:
                    del manager.magics[kind][name]
        manager.registry.pop(type(family).__name__, None)
    configurables: list[Any] = shell.configurables
    configurables[:] = [c for c in configurables if all(c is not f for f in families)]
