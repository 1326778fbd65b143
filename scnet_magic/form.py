"""The start form: ``%scnet_start`` with no arguments, or ``scnet_magic.form(**defaults)``.

Standard ipywidgets 8 widgets only (no front-end code of our own), so it works in JupyterLab 4,
Notebook 7 and VS Code. This is the only module that imports ipywidgets.

Two rules shape the code:

- The kernel stays usable. The start request and the notebook list run in background threads;
  a click only validates, hands the request over and returns. The threads write back only to
  widgets the front end never writes (the result area, the problems area, the button's state,
  the notebook list), and ipykernel sends widget updates from any thread.
- A typed token never stays in widget state. The moment it reaches the kernel it is moved out
  of the password field into a private attribute and the field is emptied; Start uses it for
  one request and forgets it. Saved widget state, ``get_state()`` and every output therefore
  hold no token.
"""

from __future__ import annotations

import contextvars
import html
import logging
import sys
import threading
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import ipywidgets as widgets
from traitlets import Unicode

from . import config, display, i18n, models
from .client import ScnetClient
from .config import Settings
from .errors import InvalidInput, ScnetError
from .i18n import N_, _, in_language
from .models import StartResult
from .readiness import DEFAULT_TIMEOUT as DEFAULT_WAIT
from .readiness import WaitProgress

if TYPE_CHECKING:
    from .magics import ScnetMagics

__all__ = ["StartForm", "form"]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_NAMES = ("notebook_id", "port", "command", "base_url", "wait")
_LABEL_WIDTH = "7em"
_TEXT_PLAIN = N_("SCNet start form (a widget: run this cell in Jupyter to use it)")


class _TokenField(widgets.Password):  # type: ignore[misc]
    """A password field whose value the kernel never echoes back to the front ends."""

    value = Unicode(help="String value").tag(sync=True, echo_update=False)


@dataclass(frozen=True)
class _Request:
    """One validated start request, ready to send."""

    notebook_id: str
    port: int
    command: str | None
    base_url: str
    timeout: float
    wait: float | None  # seconds to wait for the external URL to answer; None: do not wait
    token: str = field(repr=False)


class _StopWaiting(Exception):
    """Raised from the progress callback when Stop waiting is clicked."""


def _session_magics() -> ScnetMagics | None:
    """The extension's magics in the running IPython, if ``%load_ext scnet_magic`` was run."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return None
    from .magics import ScnetMagics

    found = shell.magics_manager.registry.get("ScnetMagics")
    return found if isinstance(found, ScnetMagics) else None


def _check(problems: list[ScnetError], validate: Callable[[object], T], value: object) -> T | None:
    """The validated value, or None with the problem appended."""
    try:
        return validate(value)
    except ScnetError as exc:
        problems.append(exc)
        return None


def _without_credentials(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
        if parts.username is None and parts.password is None:
            return url
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    except ValueError:
        return url


def _notebook_label(record: dict[str, Any]) -> str:
    name = str(record.get("notebookName") or _("(no name)"))
    status = str(record.get("notebookStatus") or _("unknown"))
    return f"{name} · {status} · {record['id']}"


def _notebook_options(records: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(label, id) pairs for the notebook menu: Running instances first, then the rest."""
    usable = [
        {**r, "id": str(r["id"])}
        for r in records
        if isinstance(r.get("id"), (str, int))
        and not isinstance(r.get("id"), bool)
        and str(r["id"]).isascii()
        and str(r["id"]).isdigit()
    ]
    usable.sort(key=lambda r: r.get("notebookStatus") != "Running")  # stable: API order kept
    return [(_notebook_label(r), r["id"]) for r in usable]


class StartForm:
    """A form that starts a custom service, as ``%scnet_start`` does.

    Fields: notebook (a menu of your instances when a token is configured, and the id itself,
    which can be typed), port, command, token (used once) and, under "Advanced", the base URL.
    ``result`` holds the last :class:`StartResult`; ``error`` what stopped the last attempt
    (the first problem with the fields, or the request's error; None when it succeeded);
    ``wait()`` blocks until the requests running in the background are done.
    """

    def __init__(self, *, magics: ScnetMagics | None = None, **defaults: Any) -> None:
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
        self._magics = magics if magics is not None else _session_magics()
        # The form speaks the language in force when it was made, in its callbacks and in its
        # background threads too (they run in a copy of the caller's context).
        chosen = self._magics.language if self._magics is not None else None
        with i18n.using(chosen) as language:
            self.language = language
            self._setup(defaults)

    def _setup(self, defaults: dict[str, Any]) -> None:
        self.result: StartResult | None = None
        self.error: ScnetError | None = None
        self._lock = threading.Lock()
        self._starting = False
        self._listing = False
        self._start_thread: threading.Thread | None = None
        self._list_thread: threading.Thread | None = None
        self._menu_updating = False
        self._stop_wait = threading.Event()
        self._shown_in: int | None = None
        self.__typed_token: str | None = None
        self._token_source: str | None = None

        settings: Settings | None = None
        problem: ScnetError | None = None
        try:
            settings = self._settings()
        except ScnetError as exc:
            problem = exc
        else:
            self._token_source = settings.token_source
        self._build(defaults, settings)
        if problem is not None:
            self.problems.value = display.error_html(problem)
        self.refresh()

    # -- widgets ---------------------------------------------------------------------------

    def _build(self, defaults: dict[str, Any], settings: Settings | None) -> None:
        style = {"description_width": _LABEL_WIDTH}

        def text(name: str, fallback: object = None) -> str:
            value = defaults.get(name, fallback)
            return "" if value is None else str(value)

        self.notebook_menu = widgets.Dropdown(
            description=_("Notebook"),
            options=[],
            value=None,
            style=style,
            layout=widgets.Layout(flex="1 1 auto", width="auto"),
        )
        self.refresh_button = widgets.Button(
            description=_("Refresh"),
            tooltip=_("Reload the list of your notebook instances"),
            layout=widgets.Layout(width="auto"),
        )
        self.notebook_note = widgets.HTML()
        self.notebook_id = widgets.Text(
            value=text("notebook_id", settings.notebook_id if settings else None),
            description=_("Notebook id"),
            placeholder=_("the instance's 19-digit id"),
            style=style,
            layout=widgets.Layout(width="100%"),
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
            layout=widgets.Layout(width="100%"),
        )
        # continuous_update=False: the front end sends the token once (on Enter or when the
        # field loses focus, which a click on Start does), not a keystroke at a time.
        self.token = _TokenField(
            description=_("Token"),
            continuous_update=False,
            style=style,
            layout=widgets.Layout(width="24em"),
        )
        self.token_note = widgets.HTML()
        self.base_url = widgets.Text(
            value=text("base_url", settings.base_url if settings else config.DEFAULT_BASE_URL),
            description=_("Base URL"),
            placeholder=_("https://your-region-address"),
            style=style,
            layout=widgets.Layout(width="100%"),
        )
        self.advanced = widgets.Accordion(
            children=[widgets.VBox([self.base_url])], titles=(_("Advanced"),), selected_index=None
        )
        wait = defaults.get("wait")
        # wait=True: the default wait; a number: that many seconds.
        self.wait_ready = widgets.Checkbox(
            value=bool(wait),
            description=_("Wait until ready"),
            tooltip=_("After starting, wait until the external URL answers"),
            indent=False,
            layout=widgets.Layout(width="auto", margin="0 0 0 1em"),
        )
        self.wait_seconds = widgets.BoundedIntText(
            value=int(DEFAULT_WAIT if wait is True or not wait else wait),
            min=1,
            max=86_400,
            description=_("up to (s)"),
            layout=widgets.Layout(width="11em"),
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
        self.problems = widgets.HTML()
        self.result_area = widgets.HTML()
        self.widget = widgets.VBox(self._rows(), layout=widgets.Layout(max_width="56em"))

        self.notebook_menu.observe(self._on_pick, "value")
        self.notebook_id.observe(self._on_id_typed, "value")
        self.token.observe(self._take_token, "value")
        self.refresh_button.on_click(lambda _button: self.refresh())
        self.start_button.on_click(lambda _button: self._on_start())
        self.stop_button.on_click(lambda _button: self._stop_wait.set())
        self._show_token_source()

    def _rows(self) -> list[Any]:
        """The form's rows, top to bottom; options for Start go in the Start row."""
        row = widgets.Layout(align_items="center")
        return [
            widgets.HBox([self.notebook_menu, self.refresh_button], layout=row),
            self.notebook_note,
            self.notebook_id,
            self.port,
            self.command,
            widgets.HBox([self.token, self.token_note], layout=row),
            self.advanced,
            widgets.HBox(
                [self.start_button, self.wait_ready, self.wait_seconds, self.stop_button],
                layout=row,
            ),
            self.problems,
            self.result_area,
        ]

    # -- display ---------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = self.widget._repr_mimebundle_(**kwargs)
        # The widget's own text form lists every child's state; say what this is instead.
        with i18n.using(self.language):
            bundle["text/plain"] = _(_TEXT_PLAIN)
        return bundle

    def show(self) -> None:
        """Display the form, and remember in which cell (see ``_ipython_display_``)."""
        from IPython import get_ipython
        from IPython.display import display as ipy_display

        shell = get_ipython()
        self._shown_in = shell.execution_count if shell is not None else None
        ipy_display(self._repr_mimebundle_(), raw=True)

    def _ipython_display_(self) -> None:
        # form() shows the form and returns it; when that call ends a cell, IPython would
        # show the returned form a second time. Skip exactly that second showing.
        from IPython import get_ipython
        from IPython.display import display as ipy_display

        shell = get_ipython()
        shown_in, self._shown_in = self._shown_in, None
        if shell is not None and shown_in is not None and shown_in == shell.execution_count:
            return
        ipy_display(self._repr_mimebundle_(), raw=True)

    def __repr__(self) -> str:
        return (
            f"<StartForm notebook_id={self.notebook_id.value!r} port={self.port.value!r} "
            f"busy={self.busy}>"
        )

    # -- state -----------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while a start request is in flight."""
        with self._lock:
            return self._starting

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the start request and the notebook list in flight are done.

        True when nothing is left running (False: the timeout passed first).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        threads = [t for t in (self._start_thread, self._list_thread) if t is not None]
        for thread in threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)

    def _settings(self) -> Settings:
        settings = self._magics.settings() if self._magics is not None else config.resolve()
        self._token_source = settings.token_source
        return settings

    # -- the token -------------------------------------------------------------------------

    @in_language
    def _take_token(self, change: dict[str, Any]) -> None:
        typed = change["new"]
        if not typed:
            return
        self.__typed_token = typed
        self.token.value = ""
        self._show_token_source()

    def _show_token_source(self) -> None:
        if self.__typed_token is not None:
            note = _("a typed token is ready: the next Start uses it once")
            placeholder = _("token received (hidden)")
        elif self._token_source:
            note = _("using {source}").format(source=self._token_source)
            placeholder = _("type here to use another token once")
        else:
            note = _("no token configured: paste one here, or run %scnet_token")
            placeholder = _("your SCNet token")
        self.token_note.value = f"<small>{html.escape(note)}</small>"
        self.token.placeholder = placeholder

    # -- the notebook menu -----------------------------------------------------------------

    @in_language
    def refresh(self) -> None:
        """Reload the notebook menu from the list API, in the background."""
        try:
            settings = self._settings()
        except ScnetError as exc:
            self._set_note(_cannot_list().format(problem=exc.user_message()))
            return
        self._show_token_source()
        if settings.token is None:
            self.notebook_menu.layout.display = "none"
            self._set_note(
                _(
                    "Set a token (%scnet_token or SCNET_TOKEN) and Refresh to choose "
                    "from your notebooks, or type the id."
                )
            )
            return
        try:
            base_url = models.validate_base_url(self.base_url.value)
        except InvalidInput as exc:
            self._set_note(_cannot_list().format(problem=exc.user_message()))
            return
        with self._lock:
            if self._listing:
                return
            self._listing = True
        self.notebook_menu.layout.display = None
        self.refresh_button.disabled = True
        self._set_note(_("Loading your notebooks…"))
        token, timeout = settings.token, settings.timeout
        thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._list_in_background, base_url, token, timeout),
            name="scnet-form-list",
            daemon=True,
        )
        self._list_thread = thread
        thread.start()

    def _list_in_background(self, base_url: str, token: str, timeout: float) -> None:
        try:
            with ScnetClient(base_url=base_url, token=token, timeout=timeout) as client:
                records = client.list_notebooks()
            self._fill_menu(records)
        except ScnetError as exc:
            self._set_note(_cannot_list().format(problem=exc.user_message()))
        except Exception as exc:  # a bug must not leave the Refresh button disabled
            log.debug("listing notebooks failed", exc_info=True)
            unexpected = _("unexpected {error}").format(error=type(exc).__name__)
            self._set_note(_cannot_list().format(problem=unexpected))
        finally:
            with self._lock:
                self._listing = False
            self.refresh_button.disabled = False

    def _fill_menu(self, records: Sequence[dict[str, Any]]) -> None:
        options = _notebook_options(records)
        running = sum(1 for r in records if r.get("notebookStatus") == "Running")
        self._menu_updating = True
        try:
            self.notebook_menu.index = None
            self.notebook_menu.options = options
        finally:
            self._menu_updating = False
        self._select_typed_id()
        self._set_note(
            _("{count} notebooks, {running} running.").format(count=len(options), running=running)
        )

    def _on_pick(self, change: dict[str, Any]) -> None:
        if change["new"] is not None and not self._menu_updating:
            self.notebook_id.value = change["new"]

    def _on_id_typed(self, change: dict[str, Any]) -> None:
        self._select_typed_id()

    def _select_typed_id(self) -> None:
        typed = self.notebook_id.value.strip()
        ids = [value for _label, value in self.notebook_menu.options]
        self.notebook_menu.value = typed if typed in ids else None

    def _set_note(self, text: str) -> None:
        self.notebook_note.value = f"<small>{html.escape(text)}</small>"

    # -- Start -----------------------------------------------------------------------------

    @in_language
    def _on_start(self) -> None:
        typed_token, self.__typed_token = self.__typed_token, None
        try:
            with self._lock:
                if self._starting:
                    return  # one request at a time: a second click sends nothing
                request, problems = self._validate(typed_token)
                if request is None:
                    self.error = problems[0]
                    self.problems.value = "".join(display.error_html(p) for p in problems)
                    return
                self._starting = True
        finally:
            self._show_token_source()  # the typed token is gone, whatever happened
        self.problems.value = ""
        self.start_button.disabled = True
        self.start_button.description = _("Starting…")
        self.result_area.value = display.info_html(
            _("Starting: port {port} of notebook {notebook_id}…").format(
                port=request.port, notebook_id=request.notebook_id
            )
        )
        thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self._start_in_background, request),
            name="scnet-form-start",
            daemon=True,
        )
        self._start_thread = thread
        thread.start()

    def _validate(self, typed_token: str | None) -> tuple[_Request | None, list[ScnetError]]:
        """The request the fields describe, or the problems with them (all of them)."""
        problems: list[ScnetError] = []
        notebook_text = self.notebook_id.value.strip()
        if not notebook_text:
            problems.append(
                InvalidInput(_("notebook id is empty"), _("Choose a notebook or type its id."))
            )
            notebook_id = None
        else:
            notebook_id = _check(problems, models.validate_notebook_id, notebook_text)
        if not self.port.value.strip():
            problems.append(
                InvalidInput(
                    _("port is empty"), _("Give the port the service listens on (1–65535).")
                )
            )
            port = None
        else:
            port = _check(problems, models.validate_port, self.port.value)
        # An empty field leaves the command out (reach a running service); blank text is a
        # command given explicitly, and refused.
        command_text = self.command.value.rstrip("\r\n")
        command = _check(problems, models.validate_command, command_text or None)
        base_url = _check(problems, models.validate_base_url, self.base_url.value)
        if base_url is None:
            # Credentials in the address are refused; do not keep them in the widget either.
            self.base_url.value = _without_credentials(self.base_url.value)
        try:
            settings: Settings | None = self._settings()
        except ScnetError as exc:
            problems.append(exc)
            settings = None
        token: str | None = None
        if typed_token is not None:
            token = _check(problems, models.validate_token, typed_token)
        elif settings is not None:
            try:
                token = settings.require_token()
            except ScnetError as exc:
                problems.append(exc)
        if problems or settings is None or token is None:
            return None, problems
        assert notebook_id is not None and port is not None and base_url is not None
        wait = float(self.wait_seconds.value) if self.wait_ready.value else None
        return (
            _Request(notebook_id, port, command, base_url, settings.timeout, wait, token),
            problems,
        )

    def _start_in_background(self, request: _Request) -> None:
        try:
            with ScnetClient(
                base_url=request.base_url, token=request.token, timeout=request.timeout
            ) as client:
                started = time.monotonic()
                result = client.start_service(request.notebook_id, request.port, request.command)
                self.result, self.error = result, None
                self.result_area.value = display.start_html(result)
                if request.wait is not None and result.url and result.code == "0":
                    self._wait_in_background(client, result, request, started)
        except ScnetError as exc:
            self.error = exc
            self.result_area.value = display.error_html(exc)
        except Exception as exc:  # a bug must not leave the form stuck in "Starting…"
            log.debug("start from the form failed", exc_info=True)
            self.error = ScnetError(
                _("unexpected {error} while starting").format(error=type(exc).__name__),
                _("Run the same start with %scnet_start to see the details."),
            )
            self.result_area.value = display.error_html(self.error)
        finally:
            with self._lock:
                self._starting = False
            self.stop_button.layout.display = "none"
            self.start_button.description = _("Start")
            self.start_button.disabled = False

    def _wait_in_background(
        self, client: ScnetClient, result: StartResult, request: _Request, started: float
    ) -> None:
        """Poll the external URL, showing progress in place; the start is never re-sent."""
        assert request.wait is not None
        timeout = request.wait

        def show_progress(progress: WaitProgress) -> None:
            if self._stop_wait.is_set():
                raise _StopWaiting
            line = display.waiting_text(progress.url, timeout, progress)
            self.result_area.value = display.start_html(result) + display.info_html(line)

        self._stop_wait.clear()
        self.stop_button.layout.display = None
        self.start_button.description = _("Waiting…")
        self.result_area.value = display.start_html(result) + display.info_html(
            display.waiting_text(result.url or "", timeout, None)
        )
        try:
            ready = client.wait_until_ready(
                result,
                timeout,
                command=request.command,
                since=started,
                on_progress=show_progress,
            )
        except _StopWaiting:
            self.result_area.value = display.start_html(result) + display.info_html(
                _("Stopped waiting; the service may still be starting.")
            )
            return
        except ScnetError as exc:  # not ready in time: keep the result, say why below it
            self.error = exc
            self.result_area.value = display.start_html(result) + display.error_html(exc)
            return
        self.result = result.marked_ready(ready.elapsed)
        self.result_area.value = display.start_html(self.result)


def _cannot_list() -> str:
    return _("Cannot list notebooks: {problem}")


def form(*, magics: ScnetMagics | None = None, **defaults: Any) -> StartForm:
    """Show a start form and return it.

    Settings come from ``magics`` (the ``%scnet_start`` that asked for the form), else from
    the extension loaded in this IPython session, else from the environment and the config
    file. ``defaults`` prefill fields: ``notebook_id``, ``port``, ``command``, ``base_url``, and
    ``wait`` (True, or a number of seconds: tick "Wait until ready").
    """
    shown = StartForm(magics=magics, **defaults)
    shown.show()
    return shown


class _CallableModule(types.ModuleType):
    """Makes ``scnet_magic.form(...)`` keep working once this module is imported.

    Importing ``scnet_magic.form`` makes Python set the package's ``form`` attribute to this
    module, in place of the ``form()`` function the package defines; calling the module
    calls :func:`form`.
    """

    def __call__(self, *, magics: ScnetMagics | None = None, **defaults: Any) -> StartForm:
        return form(magics=magics, **defaults)


sys.modules[__name__].__class__ = _CallableModule
