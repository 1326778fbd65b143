"""The start form: ``%scnet_start`` with no arguments, or ``scnet_magic.form(**defaults)``.

Standard ipywidgets 8 widgets only, so it works in JupyterLab 4, Notebook 7 and VS Code. It
knows nothing of the magics: whoever shows it hands it a settings callable and the language.
The kernel stays usable: the start and the notebook list run in background threads that write
back only to widgets the front end never writes (ipykernel sends updates from any thread).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import ipywidgets as widgets

from .. import config, display, i18n, service, validation
from ..client import ScnetClient
from ..config import DEFAULT_WAIT, Settings
from ..errors import InvalidInput, ScnetError
from ..i18n import N_, _
from ..models import InstanceProgress, Notebook, StartResult
from ..validation import StartRequest
from .parts import (
    ProtectPart,
    SecretField,
    in_form_language,
    notebook_label,
    option,
    without_credentials,
)

T = TypeVar("T")

log = logging.getLogger("scnet_magic.form")

DEFAULT_NAMES = ("notebook_id", "port", "command", "base_url", "wait", "boot", "replace")
_LABEL_WIDTH = "7em"
# A note under the fields starts where the inputs do: after the label and its 8px margin.
_UNDER_FIELDS = f"0 0 0 calc({_LABEL_WIDTH} + 8px)"
# ipywidgets give each widget a 2px margin on every side: width 100% would overflow the form by
# 4px, so full-width fields stretch instead.
_FULL_WIDTH = {"width": "auto", "align_self": "stretch"}
# A field whose value was refused is outlined in the theme's error colour (the rule comes
# with the list of problems, so it is on the page exactly while they are).
_INVALID = "scnet-invalid"
# (A shadow: ipywidgets take the outline away from their inputs.)
_INVALID_STYLE = (
    f"<style>.{_INVALID} :is(input, textarea) "
    "{box-shadow: 0 0 0 2px var(--jp-error-color1, #c62828)}</style>"
)


class _Refused(Exception):
    """The form's fields describe no start: ``problems`` says why."""

    def __init__(self, problems: list[ScnetError]) -> None:
        super().__init__()
        self.problems = problems


class StartForm(service.StartObserver):
    """A form that starts a custom service, as ``%scnet_start`` does; it shows the start as
    :func:`service.start` reports it.

    ``settings`` (called at each use) and ``language`` come from whoever shows the form; by
    default the session's, else the environment's and the config file's. ``defaults`` prefill
    the fields: ``notebook_id``, ``port``, ``command``, ``base_url``, ``wait`` (True, or
    seconds), ``boot`` and ``replace``. ``result`` holds the last :class:`StartResult`;
    ``error`` what stopped the last attempt (None when it succeeded); ``wait()`` blocks until
    the requests in the background are done. A typed token is used for one request only.
    """

    def __init__(
        self,
        *,
        settings: Callable[[], Settings] | None = None,
        language: str | None = None,
        **defaults: Any,
    ) -> None:
        unknown = sorted(set(defaults) - set(DEFAULT_NAMES))
        if "token" in unknown:
            raise TypeError(
                "the form takes no token argument (it would stay in the notebook); "
                "use %scnet_token or SCNET_TOKEN, or type it into the form's token field"
            )
        if unknown:
            raise TypeError(
                f"unexpected form default(s): {', '.join(unknown)}; "
                f"known: {', '.join(DEFAULT_NAMES)}"
            )
        # Settings come from the session that showed the form (the magics' %config and
        # %scnet_token), else from the environment and the config file, at each use: once to
        # open the form (its fields, its language, its list), again at each Refresh and Start.
        self._settings_source = settings or config.current_settings
        self._token_source: str | None = None
        self.result: StartResult | None = None
        self.error: ScnetError | None = None
        self._start_thread: threading.Thread | None = None
        self._list_thread: threading.Thread | None = None
        # Cleared before the button comes back, not when the thread ends just after: a click
        # the user can make is never dropped (nor its typed token).
        self._starting = self._listing = False
        self._stop_wait = threading.Event()
        # What the notebook list said of each instance, by id (a start updates its own).
        self._records: dict[str, Notebook] = {}
        resolved = self._resolve()
        # The form speaks the language in force when it was made (the one handed in, else the
        # settings'), in its callbacks and in its background threads too.
        if language is None and isinstance(resolved, Settings):
            language = resolved.language
        with i18n.using(language) as chosen:
            self.language = chosen
            self._build(defaults, resolved if isinstance(resolved, Settings) else None)
            if isinstance(resolved, ScnetError):
                self.problems.value = display.error_html(resolved)
            self._list(resolved)

    def _build(self, defaults: dict[str, Any], settings: Settings | None) -> None:
        style = {"description_width": _LABEL_WIDTH}

        def text(name: str, fallback: object = None) -> str:
            value = defaults.get(name, fallback)
            return "" if value is None else str(value)

        self.notebook_menu = widgets.Dropdown(
            description=_("Notebook"),
            style=style,
            layout=widgets.Layout(flex="1 1 auto", width="auto"),
        )
        self.refresh_button = widgets.Button(
            description=_("Refresh"),
            tooltip=_("Reload the list of your notebook instances"),
            layout=widgets.Layout(width="auto"),
        )
        self.notebook_row = widgets.HBox(
            [self.notebook_menu, self.refresh_button], layout=widgets.Layout(align_items="center")
        )
        self.notebook_note = widgets.HTML(layout=widgets.Layout(margin=_UNDER_FIELDS))
        self.notebook_id = widgets.Text(
            value=text("notebook_id", settings.notebook_id if settings else None),
            description=_("Notebook id"),
            placeholder=_("the instance's 19-digit id"),
            style=style,
            layout=widgets.Layout(**_FULL_WIDTH),
        )
        self.port = widgets.Text(
            value=text("port"),
            description=_("Port"),
            placeholder="1–65535",
            style=style,
            layout=widgets.Layout(width="16em"),
        )
        self.command = widgets.Textarea(
            value=text("command"),
            description=_("Command"),
            placeholder="python app.py --port 8000 > app.log 2>&1\n"
            + _("(leave empty to reach a service that already runs)"),
            rows=3,
            style=style,
            layout=widgets.Layout(**_FULL_WIDTH),
        )
        # Wide enough for the longest placeholder, in Chinese too.
        self.token = SecretField(
            on_typed=self._show_token_source,
            description=_("Token"),
            style=style,
            layout=widgets.Layout(width="30em"),
        )
        self.token_note = widgets.HTML()
        self.protect = ProtectPart(style, _UNDER_FIELDS)
        self.base_url = widgets.Text(
            value=text("base_url", settings.base_url if settings else config.DEFAULT_BASE_URL),
            description=_("Base URL"),
            placeholder=_("https://your-region-address"),
            # A shorter label offsets the accordion's padding and borders: fields align.
            style={"description_width": f"calc({_LABEL_WIDTH} - 18px)"},
            layout=widgets.Layout(width="100%"),
        )
        self.advanced = widgets.Accordion(
            children=[widgets.VBox([self.base_url])], titles=(_("Advanced"),), selected_index=None
        )
        wait = defaults.get("wait")  # True: the default wait; a number: that many seconds
        self.wait_ready = option(
            _("Wait until ready"), _("After starting, wait until the external URL answers"), wait
        )
        self.wait_ready.layout.margin = "0 0 0 1em"  # in the Start row, after the button
        self.wait_seconds = widgets.BoundedIntText(
            value=int(DEFAULT_WAIT if wait is True or not wait else wait),
            min=1,
            max=86_400,
            description=_("up to (s)"),
            layout=widgets.Layout(width="11em"),
        )
        # A time to wait only means something when waiting.
        widgets.dlink(
            (self.wait_ready, "value"), (self.wait_seconds, "disabled"), lambda on: not on
        )
        self.stop_button = widgets.Button(
            description=_("Stop waiting"),
            icon="stop",
            tooltip=_("Stop waiting; the service keeps starting"),
            layout=widgets.Layout(width="auto", display="none"),
        )
        self.start_button = widgets.Button(
            description=_("Start"),
            icon="play",
            button_style="primary",
            tooltip=_("Run the command in the instance and open an external URL to the port"),
        )
        self.boot_box = option(
            _("Start the instance if it is stopped"),
            _("If the instance is not running, start it and wait until it runs first"),
            defaults.get("boot"),
        )
        # An earlier run of the app on the port would stay the service: end it first.
        self.replace_box = option(
            _("End what already listens on the port"),
            _(
                "If something on this machine already listens on the port (an earlier run of "
                "the app), end it before the start"
            ),
            defaults.get("replace"),
        )
        self.port_note = widgets.HTML()
        self.problems = widgets.HTML()
        self.result_area = widgets.HTML()
        # Top to bottom; the options for Start go in the Start row.
        row = widgets.Layout(align_items="center")
        start_row = [self.start_button, self.wait_ready, self.wait_seconds, self.stop_button]
        self.widget = widgets.VBox(
            [
                self.notebook_row,
                self.notebook_note,
                self.notebook_id,
                widgets.HBox([self.port, self.port_note], layout=row),
                self.command,
                widgets.HBox([self.token, self.token_note], layout=row),
                self.protect.widget,
                self.boot_box,
                self.replace_box,
                self.advanced,
                widgets.HBox(start_row, layout=row),
                self.problems,
                self.result_area,
            ],
            layout=widgets.Layout(max_width="56em"),
        )
        self.notebook_menu.observe(self._on_pick, "value")
        self.notebook_id.observe(self._follow_id, "value")
        self.port.observe(self._update_port_note, "value")
        self.refresh_button.on_click(lambda _button: self.refresh())
        self.start_button.on_click(lambda _button: self._on_start())
        self.stop_button.on_click(lambda _button: self._stop_wait.set())

    # -- display ---------------------------------------------------------------------------

    @in_form_language
    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = self.widget._repr_mimebundle_(**kwargs)
        # The widget's own text form lists every child's state; say what this is instead.
        bundle["text/plain"] = _("SCNet start form (a widget: run this cell in Jupyter to use it)")
        return bundle

    def __repr__(self) -> str:
        return (
            f"<StartForm notebook_id={self.notebook_id.value!r} port={self.port.value!r} "
            f"busy={self.busy}>"
        )

    def _ipython_display_(self) -> None:
        # form() shows the form and returns it; when that call ends a cell, IPython would
        # show the returned form a second time: display.show_once skips exactly that one.
        display.show_once(self)

    # -- state -----------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while a start request is in flight."""
        return self._starting

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the start request and the notebook list in flight are done; False when
        the timeout passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        threads = [t for t in (self._start_thread, self._list_thread) if t is not None]
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)

    def _resolve(self) -> Settings | ScnetError:
        """The settings (noting where the token comes from), or what stops them resolving."""
        try:
            settings = self._settings_source()
        except ScnetError as exc:
            return exc
        self._token_source = settings.token_source
        return settings

    @in_form_language
    def _show_token_source(self) -> None:
        if self.token.ready:
            note = _("a typed token is ready: the next Start uses it once")
            placeholder = _("token received (hidden)")
        elif self._token_source:
            note = _("using {source}").format(source=self._token_source)
            placeholder = _("type here to use another token once")
        else:
            note = _("no token configured: paste one here, or run %scnet_token")
            placeholder = _("your SCNet token")
        self.token_note.value = display.note_html(note)
        self.token.placeholder = placeholder

    # -- the notebook menu -----------------------------------------------------------------

    @in_form_language
    def refresh(self) -> None:
        """Read the settings again (they may have changed), and reload the notebook menu from
        the list API, in the background."""
        self._list(self._resolve())

    def _list(self, settings: Settings | ScnetError) -> None:
        self._show_token_source()
        if isinstance(settings, ScnetError):
            self._cannot_list(settings.user_message())
            return
        if settings.token is None:
            # Nothing to list or refresh: the id field is the way, and signing in lists them.
            self.notebook_row.layout.display = "none"
            self._set_note(
                _("Sign in (%scnet_login, or %scnet_token) to list your notebooks; type the id.")
            )
            return
        try:
            base_url = validation.validate_base_url(self.base_url.value)
        except InvalidInput as exc:
            self._cannot_list(exc.user_message())
            return
        if self._listing:
            return
        self._listing = True
        self.notebook_row.layout.display = None
        self.refresh_button.disabled = True
        self._set_note(_("Loading your notebooks…"))
        listed = replace(settings, base_url=base_url)
        self._list_thread = _in_background("list", self._list_in_background, listed)

    def _list_in_background(self, settings: Settings) -> None:
        try:
            with ScnetClient(settings=settings) as client:
                records = service.notebooks(client)  # each with its user's port
            self._records = {notebook.id: notebook for notebook in records if notebook.id}
            self._show_menu()
        except ScnetError as exc:
            self._cannot_list(exc.user_message())
        except Exception as exc:  # a bug must not leave the Refresh button disabled
            log.debug("listing notebooks failed", exc_info=True)
            self._cannot_list(_("unexpected {error}").format(error=type(exc).__name__))
        finally:
            self._listing = False
            self.refresh_button.disabled = False

    def _show_menu(self) -> None:
        """The menu as the records say: the instances with an id of digits, running ones
        first, the API's order otherwise; and the notes that follow from them."""
        offered = sorted(
            (n for n in self._records.values() if n.id.isascii() and n.id.isdigit()),
            key=lambda notebook: not notebook.running,
        )
        # New options select the first one: not a pick of the user's.
        self.notebook_menu.unobserve(self._on_pick, "value")
        self.notebook_menu.options = [(notebook_label(n), n.id) for n in offered]
        self.notebook_menu.observe(self._on_pick, "value")
        running = sum(notebook.running for notebook in offered)
        self._set_note(
            _("{count} notebooks, {running} running.").format(count=len(offered), running=running)
        )
        self._follow_id()

    def _on_pick(self, change: dict[str, Any]) -> None:
        if change["new"] is not None:
            self.notebook_id.value = change["new"]

    def _follow_id(self, change: object = None) -> None:
        """The menu and the port note follow the id typed (or picked)."""
        typed = self.notebook_id.value.strip()
        ids = [value for _label, value in self.notebook_menu.options]
        self.notebook_menu.value = typed if typed in ids else None
        self._update_port_note()

    def _update_port_note(self, change: object = None) -> None:
        """Say, before Start, what the list already tells: the instance does not run, or this
        start replaces its custom service on another port."""
        record = self._records.get(self.notebook_id.value.strip())
        notes: list[str] = []
        if record is not None:
            try:
                port: int | None = validation.validate_port(self.port.value)
            except ScnetError:
                port = None
            old = record.shown_port  # not a guard's port: the user's
            if port is not None and old not in (None, port):
                notes.append(
                    _("Starting on port {port} replaces the custom service on port {old}.").format(
                        port=port, old=old
                    )
                )
            if not record.running and record.status:
                notes.append(
                    _("The instance is {status}.").format(status=display.status_name(record.status))
                )
        self.port_note.value = display.note_html(" ".join(notes)) if notes else ""

    def _set_note(self, text: str) -> None:
        self.notebook_note.value = display.note_html(text)

    def _cannot_list(self, problem: str) -> None:
        text = _("Cannot list notebooks: {problem}").format(problem=problem)
        self.notebook_note.value = display.note_html(text, error=True)

    # -- Start -----------------------------------------------------------------------------

    @in_form_language
    def _on_start(self) -> None:
        if self.busy:
            return  # one request at a time: a second click sends nothing
        typed_token = self.token.take()
        try:
            request, settings, start = self._validate(typed_token)
        except _Refused as refused:
            self.error = refused.problems[0]
            shown = "".join(display.error_html(problem) for problem in refused.problems)
            self.problems.value = _INVALID_STYLE + shown
            self.result_area.value = ""  # an earlier result is not this attempt's
            return
        finally:
            self._show_token_source()  # the typed token is gone, whatever happened
        self.problems.value = ""
        self._starting = True
        self.start_button.disabled = True
        self.start_button.description = _("Starting…")
        line = display.starting_text(request.notebook_id, request.port)
        self.result_area.value = display.card("info", line)
        self._start_thread = _in_background(
            "start", self._start_in_background, request, settings, start
        )

    def _validate(
        self, typed_token: str | None
    ) -> tuple[StartRequest, Settings, functools.partial[StartResult]]:
        """The request, the settings and the options of the start the fields describe; else
        :class:`_Refused` with the problems (all of them, each field with a problem marked)."""
        problems: list[ScnetError] = []

        def field(
            widget: Any, check: Callable[[Any], T], value: Any, empty: tuple[str, str] | None = None
        ) -> T | None:
            try:
                if empty is not None and not value.strip():
                    raise InvalidInput(*empty)
                found = check(value)
            except ScnetError as exc:
                problems.append(exc)
                widget.add_class(_INVALID)
                return None
            widget.remove_class(_INVALID)
            return found

        notebook_id = field(
            self.notebook_id,
            validation.validate_notebook_id,
            self.notebook_id.value.strip(),
            (N_("notebook id is empty"), N_("Choose a notebook or type its id.")),
        )
        port = field(
            self.port,
            validation.validate_port,
            self.port.value,
            (N_("port is empty"), N_("Give the port the service listens on (1–65535).")),
        )
        # An empty field leaves the command out (reach a running service); blank text is a
        # command given explicitly, and refused.
        command_text = self.command.value.rstrip("\r\n")
        command = field(self.command, validation.validate_command, command_text or None)
        base_url = field(self.base_url, validation.validate_base_url, self.base_url.value)
        if base_url is None:
            # Credentials in the address are refused; do not keep them in the widget either.
            self.base_url.value = without_credentials(self.base_url.value)
        settings = self._resolve()
        token: str | None = None
        if isinstance(settings, ScnetError):
            problems.append(settings)
        if typed_token is not None:
            token = field(self.token, validation.validate_token, typed_token)
        elif isinstance(settings, Settings):
            token = field(self.token, Settings.require_token, settings)
        protect = field(self.protect.password, lambda _none: self.protect.take(), None)
        if problems or not isinstance(settings, Settings) or token is None:
            raise _Refused(problems)
        assert notebook_id is not None and port is not None and base_url is not None
        start = functools.partial(
            service.start,
            wait=float(self.wait_seconds.value) if self.wait_ready.value else None,
            boot=self.boot_box.value,
            protect=protect,
            record=self._records.get(notebook_id),
            replace=self.replace_box.value,
        )
        settings = replace(settings, base_url=base_url, token=token)
        return StartRequest(notebook_id, port, command), settings, start

    def _start_in_background(
        self, request: StartRequest, settings: Settings, start: functools.partial[StartResult]
    ) -> None:
        self._stop_wait.clear()
        try:
            with ScnetClient(settings=settings) as client:
                self.result = start(request, client, observer=self)
            self.result_area.value = display.start_html(self.result)
        except service.StartInterrupted as stopped:  # Stop waiting: the result had come
            assert stopped.result is not None
            note = _(service.STOPPED_WAITING)
            self.result_area.value = display.start_html(stopped.result, note=note)
        except ScnetError as exc:
            self.error = exc
            if exc.result is None:
                self.result_area.value = display.error_html(exc)
            else:  # not ready in time: keep the result, say why below it
                self.result_area.value = display.start_html(exc.result) + display.error_html(exc)
        except Exception as exc:  # a bug must not leave the form stuck in "Starting…"
            log.debug("start from the form failed", exc_info=True)
            self.error = ScnetError(
                N_("unexpected {error} while starting"),
                N_("Run the same start with %scnet_start to see the details."),
                error=type(exc).__name__,
            )
            self.result_area.value = display.error_html(self.error)
        finally:
            self.stop_button.layout.display = "none"
            self.start_button.description = _("Start")
            self._starting = False
            self.start_button.disabled = False

    # -- the start as service.start reports it --------------------------------------------

    boot_hint = N_("Tick “Start the instance if it is stopped” and start again.")
    replace_hint = N_("Tick “End what already listens on the port” and start again.")
    guard_command = "%scnet_guard"  # the notebook's way: no scnet command on its PATH

    def booting(self, progress: InstanceProgress | None) -> None:
        notebook_id = progress.notebook_id if progress else self.notebook_id.value.strip()
        line = display.instance_waiting_text(progress, notebook_id)
        self.result_area.value = display.card("info", line)

    def started(self, result: StartResult) -> None:
        record = self._records.get(result.notebook_id)
        if record is not None:  # the instance now runs this service: the menu and notes follow
            exposed = result.guard_port if result.protected else result.port
            self._records[result.notebook_id] = replace(
                record, status="Running", custom_port=exposed, command=result.command
            )
            self._show_menu()
        self.result, self.error = result, None
        self.result_area.value = display.start_html(result)

    def waiting(self, progress: service.Progress) -> None:
        if self._stop_wait.is_set():
            raise KeyboardInterrupt  # the user's Stop waiting, as Ctrl-C in a terminal
        if progress.check is None:  # the wait begins
            self.stop_button.layout.display = None
            self.start_button.description = _("Waiting…")
        shown = display.waiting_bundle(progress.result, progress.timeout, progress.check)
        self.result_area.value = shown["text/html"]


def _in_background(name: str, target: Callable[..., None], *args: Any) -> threading.Thread:
    """``target(*args)`` in a thread of its own, in this thread's context (the language)."""
    run = contextvars.copy_context().run
    thread = threading.Thread(target=run, args=(target, *args), name=f"scnet-form-{name}")
    thread.daemon = True
    thread.start()
    return thread


def form(**options: Any) -> StartForm:
    """Show a start form (:class:`StartForm` takes the same ``options``) and return it."""
    shown = StartForm(**options)
    # Remember in which cell: see _ipython_display_.
    display.show(shown, now=True)
    return shown
