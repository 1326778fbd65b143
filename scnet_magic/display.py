"""Every HTML, text and JSON rendering, shared by the results, the magics, the form and the
command line.

Escaping happens here and only here: everything that came from the server goes through
:func:`html.escape`; links open in a new tab without giving the new page a handle on the
notebook (``rel="noopener noreferrer"``). Renderings are written in the language in force
(:mod:`scnet_magic.i18n`): the caller's, or the session's default. The result types are known
here by their fields only, so this module imports none of them.
"""

from __future__ import annotations

import html
import json
import shutil
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from .i18n import N_, _, ngettext

if TYPE_CHECKING:
    from IPython.display import DisplayHandle

    from .config import Settings
    from .errors import ScnetError

    # What the renderers read of the result types, by field (read-only): this module never
    # imports scnet_magic.models (the results ask it for their renderings, not the other way
    # round).

    class StartResult(Protocol):
        @property
        def status(self) -> str: ...
        @property
        def url(self) -> str | None: ...
        @property
        def notebook_id(self) -> str: ...
        @property
        def port(self) -> int: ...
        @property
        def error_msg(self) -> str | None: ...
        @property
        def output(self) -> str | None: ...
        @property
        def ready_after(self) -> float | None: ...

        @property
        def pending(self) -> bool: ...
        @property
        def protected(self) -> bool: ...
        @property
        def guard_port(self) -> int | None: ...
        @property
        def ready(self) -> bool: ...
        def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]: ...

    class ServiceUrl(Protocol):
        @property
        def notebook_id(self) -> str: ...
        @property
        def url(self) -> str | None: ...
        @property
        def status(self) -> str | None: ...

        @property
        def active(self) -> bool: ...

    class Probe(Protocol):
        @property
        def reason(self) -> str: ...

    class WaitProgress(Protocol):
        @property
        def elapsed(self) -> float: ...
        @property
        def attempts(self) -> int: ...
        @property
        def last(self) -> Probe: ...

    class Login(Protocol):
        @property
        def user(self) -> str: ...
        @property
        def region(self) -> str: ...
        @property
        def region_id(self) -> str: ...
        @property
        def base_url(self) -> str: ...

    class TokenState(Protocol):
        @property
        def valid(self) -> bool: ...
        @property
        def detail(self) -> str: ...


_COLORS = {
    "ok": "#2e7d32",
    "ready": "#2e7d32",
    "pending": "#b26a00",
    "error": "#c62828",
    "info": "#546e7a",
    "starting": "#546e7a",
}
_HEADLINES = {
    "ok": N_("Service is up"),
    "ready": N_("Service is ready"),
    "pending": N_("Started, not answering yet"),
    "error": N_("Not started"),
}
_PENDING_NOTE = N_(
    "The command ran, but nothing answers on the port yet; the address works as soon as the "
    "service listens."
)
# Labels used inside f-strings (where the catalog's extractor does not look).
_EXTERNAL_URL = N_("External URL:")
_PLATFORM_MESSAGE = N_("Platform message:")
_COMMAND_OUTPUT = N_("Command output")
_URL = N_("URL:")
_OUTPUT = N_("Output:")
_SERVICE_OF = N_("Custom service of notebook {notebook_id}:")
_NO_ADDRESS = N_("No external address yet: start a service first.")
_OUTPUT_LIMIT = 20_000  # characters of command output shown inline; the rest stays in .output


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _label(message: str, *, html: bool = True) -> str:
    """A translated "Label:" followed by a space, except after a full-width colon (Chinese)."""
    text = _(message)
    text = text if text.endswith("：") else text + " "
    return _esc(text) if html else text


LINK_COLOR = "#1565c0"
LINK_STYLE = f"color:{LINK_COLOR};text-decoration:underline;font-family:monospace"


def link_html(url: str) -> str:
    """A clickable link that opens in a new tab and shows the URL itself as its text."""
    # Styled inline: inside a widget (the form's result area) no notebook stylesheet makes a
    # link look like one. No <code> inside: JupyterLab styles code near-black on grey, which
    # hid the link colour in the magic's output while the form's link stayed blue.
    return (
        f'<a href="{_esc(url)}" target="_blank" rel="noopener noreferrer" '
        f'style="{LINK_STYLE}">{_esc(url)}</a>'
    )


def _box(kind: str, inner: str) -> str:
    color = _COLORS[kind]
    return (
        f'<div class="scnet-result scnet-{kind}" style="border-left:4px solid {color};'
        f'padding:4px 10px;margin:2px 0;line-height:1.5">{inner}</div>'
    )


def _clip(text: str) -> str:
    if len(text) <= _OUTPUT_LIMIT:
        return text
    more = _("{count} more characters").format(count=len(text) - _OUTPUT_LIMIT)
    return text[:_OUTPUT_LIMIT] + f"\n… ({more})"


def _headline(result: StartResult) -> str:
    title = _(_HEADLINES[result.status])
    if result.ready_after is not None:
        title += _(" after {seconds} s").format(seconds=f"{result.ready_after:.1f}")
    return _("{title}: port {port} of notebook {notebook_id}").format(
        title=title, port=result.port, notebook_id=result.notebook_id
    )


# What the platform says for a pending start ("no service detected on the port you gave ...
# the external address is: URL"): the headline, the pending note and the URL say it already.
_NOTHING_LISTENS = "未检测到可用的服务"


def _platform_message_says_more(result: StartResult) -> bool:
    """Whether to show the platform's errorMsg (it stays in ``result.error_msg`` anyway)."""
    if not result.error_msg or result.ready:
        return False  # once the URL answers, "nothing listens yet" is out of date
    restates = result.pending and _NOTHING_LISTENS in result.error_msg
    return not (restates and (result.url is None or result.url in result.error_msg))


def start_html(result: StartResult) -> str:
    color = _COLORS[result.status]
    parts = [f'<div style="font-weight:600;color:{color}">{_esc(_headline(result))}</div>']
    if result.url:
        parts.append(f"<div>{_label(_EXTERNAL_URL)}{link_html(result.url)}</div>")
    if result.protected:
        parts.append(f'<div class="scnet-protected">{_esc(protected_line(result))}</div>')
    if result.pending:
        parts.append(f"<div>{_esc(_(_PENDING_NOTE))}</div>")
    if _platform_message_says_more(result):
        parts.append(f"<div>{_label(_PLATFORM_MESSAGE)}{_esc(result.error_msg)}</div>")
    if result.output:
        parts.append(
            f"<details><summary>{_esc(_(_COMMAND_OUTPUT))}</summary>"
            f'<pre style="max-height:20em;overflow:auto">{_esc(_clip(result.output))}</pre>'
            "</details>"
        )
    return _box(result.status, "".join(parts))


def start_text(result: StartResult) -> str:
    lines = [_headline(result)]
    if result.url:
        lines.append(f"  {_label(_URL, html=False)}{result.url}")
    if result.protected:
        lines.append(f"  {protected_line(result)}")
    if result.pending:
        lines.append(f"  {_(_PENDING_NOTE)}")
    if _platform_message_says_more(result):
        lines.append(f"  {_label(_PLATFORM_MESSAGE, html=False)}{result.error_msg}")
    if result.output:
        lines.append(f"  {_(_OUTPUT)}")
        lines.extend(f"    {line}" for line in _clip(result.output).splitlines())
    return "\n".join(lines)


def protected_line(result: StartResult) -> str:
    """The one line a protected start adds: the URL asks for a password (``--protect``)."""
    return "\N{LOCK} " + _("asks for a password (guard on port {guard_port})").format(
        guard_port=result.guard_port
    )


def to_json(payload: Any) -> str:
    """Stable JSON text: the same bytes whatever the language or platform."""
    return json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True)


def start_bundle(result: StartResult) -> dict[str, Any]:
    # No application/json here: JupyterLab ranks its JSON viewer above HTML and would show a
    # tree instead of the link. The JSON form is StartResult.to_dict() / to_json().
    return {"text/plain": start_text(result), "text/html": start_html(result)}


class Shown(Protocol):
    """A result the magics display and return (StartResult, ServiceUrl, NotebookList)."""

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]: ...


def prints_only(shell: Any) -> bool:
    """True where displays are printed as text and cannot be updated in place: terminal
    IPython, whose display publisher is IPython's plain one (a kernel and a capturing cell
    replace it)."""
    from IPython.core.displaypub import DisplayPublisher

    return shell is not None and type(shell.display_pub) is DisplayPublisher


# Results a magic returned in a terminal, not shown yet: see show().
_deferred: dict[int, Shown] = {}


def show(result: Shown, handle: DisplayHandle | None = None, *, now: bool = False) -> None:
    """Display a result from a magic (in place of ``handle``'s output when given) and remember
    in which cell it was shown.

    In a terminal the magic's value, when it is the cell's last line, is printed after an
    ``Out[n]:`` prompt that IPython writes before asking the value to show itself: showing it
    here as well would leave that prompt empty. So there it is shown once, by the prompt, or
    at the end of the cell when it was assigned (``now`` shows it at once: a failure follows).
    """
    from IPython import get_ipython
    from IPython.display import display

    shell = get_ipython()
    if handle is None and not now and prints_only(shell):
        _deferred[id(result)] = result
        callbacks = shell.events.callbacks["post_run_cell"]
        if _show_deferred not in callbacks:
            shell.events.register("post_run_cell", _show_deferred)
        return
    result.__dict__["_scnet_shown_in"] = shell.execution_count if shell is not None else None
    if handle is None:
        display(result._repr_mimebundle_(), raw=True)
    else:
        handle.update(result._repr_mimebundle_(), raw=True)


def _show_deferred(*_args: Any) -> None:
    from IPython import get_ipython
    from IPython.display import display

    pending = list(_deferred.values())
    _deferred.clear()
    shell = get_ipython()
    if shell is not None:
        shell.events.unregister("post_run_cell", _show_deferred)
    for result in pending:
        display(result._repr_mimebundle_(), raw=True)


def show_once(result: Shown) -> None:
    """Display a result unless the magic that returned it already showed it in this cell."""
    from IPython import get_ipython
    from IPython.display import display

    if _deferred.pop(id(result), None) is not None:
        display(result._repr_mimebundle_(), raw=True)
        return
    shell = get_ipython()
    shown_in = result.__dict__.pop("_scnet_shown_in", None)
    if shell is not None and shown_in is not None and shown_in == shell.execution_count:
        return
    display(result._repr_mimebundle_(), raw=True)


def starting_text(notebook_id: str, port: int) -> str:
    """What shows while the start request is in flight."""
    return _("Starting the service on port {port} of notebook {notebook_id}…").format(
        port=port, notebook_id=notebook_id
    )


def open_starting(notebook_id: str, port: int) -> DisplayHandle:
    """Show that a start is in flight; the result replaces it through the returned handle."""
    from IPython.display import display

    line = starting_text(notebook_id, port)
    html = _box("starting", f"<div>{_esc(line)}</div>")
    handle: DisplayHandle = display(
        {"text/plain": line, "text/html": html}, raw=True, display_id=True
    )
    return handle


def close_starting(handle: DisplayHandle) -> None:
    """Empty the "Starting…" display once the answer came (the answer is shown after it)."""
    handle.update({"text/plain": "", "text/html": ""}, raw=True)


class ProgressLine:
    """One status line on ``stream``, rewritten in place on a terminal (``\r``); elsewhere one
    line when something begins and nothing for each check, so a log gets no flood."""

    def __init__(self, stream: TextIO, timeout: float) -> None:
        self.stream = stream
        self.timeout = timeout
        self.in_place = stream.isatty()
        self.url = ""
        self.shown = False

    def note(self, line: str) -> None:
        """A line of its own (the start in flight): rewritten on a terminal, else printed."""
        self._write(line, always=True)

    def begin(self, url: str) -> None:
        self.url = url
        self._write(waiting_text(url, self.timeout, None), always=True)

    def update(self, check: WaitProgress) -> None:
        self._write(waiting_text(self.url, self.timeout, check), always=False)

    def end(self) -> None:
        """Clear the line on a terminal, so what follows starts on a clean line."""
        if self.in_place and self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        self.shown = False

    def _write(self, line: str, *, always: bool) -> None:
        if self.in_place:
            # A line wider than the terminal wraps, and "\r" would then rewrite only its end.
            width = shutil.get_terminal_size().columns - 1
            self.stream.write(f"\r\x1b[K{line[:width]}")
            self.stream.flush()
            self.shown = True
        elif always:
            print(line, file=self.stream, flush=True)


def waiting_text(url: str, timeout: float, progress: WaitProgress | None) -> str:
    """One line saying how long the wait for the external URL has run, and the last check."""
    if progress is None:
        return _("Waiting up to {timeout} s for {url} to answer…").format(
            timeout=f"{timeout:g}", url=url
        )
    return _(
        "Waiting for {url} to answer: {elapsed} s of {timeout} s, check {attempt}: {reason}"
    ).format(
        url=url,
        elapsed=f"{progress.elapsed:.0f}",
        timeout=f"{timeout:g}",
        attempt=progress.attempts,
        reason=progress.last.reason,
    )


def waiting_bundle(
    result: StartResult, timeout: float, progress: WaitProgress | None
) -> dict[str, Any]:
    """The start result with a progress line under it, for a display updated in place."""
    line = waiting_text(result.url or _("the service"), timeout, progress)
    return {
        "text/plain": f"{start_text(result)}\n  {line}",
        "text/html": start_html(result) + info_html(line),
    }


def open_waiting(result: StartResult, timeout: float) -> DisplayHandle:
    """Show the start result with an empty progress line; update it with the returned handle."""
    from IPython.display import display

    handle: DisplayHandle = display(
        waiting_bundle(result, timeout, None), raw=True, display_id=True
    )
    return handle


def error_html(error: ScnetError) -> str:
    """One short line plus the hint, for the form's result area."""
    inner = f'<div style="font-weight:600;color:{_COLORS["error"]}">{_esc(error.message)}</div>'
    hint = error.hint
    if hint:
        inner += f"<div>{_esc(hint)}</div>"
    return _box("error", inner)


def info_html(text: str) -> str:
    return _box("info", f"<div>{_esc(text)}</div>")


def service_url_text(service: ServiceUrl) -> str:
    state = status_name(service.status) or _("unknown")
    where = service.url or _("no address yet")
    return _("Custom service of notebook {notebook_id}: {state}, {url}").format(
        notebook_id=service.notebook_id, state=state, url=where
    )


def service_url_html(service: ServiceUrl) -> str:
    kind = "ok" if service.active else "pending" if service.url else "info"
    state = _esc(status_name(service.status) or _("unknown"))
    title = _label(_SERVICE_OF).format(notebook_id=_esc(service.notebook_id))
    inner = f"<div>{title}<b>{state}</b></div>"
    if service.url:
        inner += f"<div>{_label(_EXTERNAL_URL)}{link_html(service.url)}</div>"
    else:
        inner += f"<div>{_esc(_(_NO_ADDRESS))}</div>"
    return _box(kind, inner)


def service_url_bundle(service: ServiceUrl) -> dict[str, Any]:
    # HTML and text only, as for a start result: JupyterLab would prefer a JSON tree.
    return {"text/plain": service_url_text(service), "text/html": service_url_html(service)}


_NOTEBOOK_COLUMNS = (
    ("id", N_("Id")),
    ("notebookName", N_("Name")),
    ("notebookStatus", N_("Status")),
)


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: CJK characters (names, Chinese titles) take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


_STATUS_NAMES = {
    "Running": N_("Running"),
    "Creating": N_("Creating"),
    "Restarting": N_("Restarting"),
    "Terminated": N_("Terminated"),
    "Failed": N_("Failed"),
    "Shutting": N_("Shutting down"),
    "active": N_("active"),
    "inactive": N_("inactive"),
}
_STATUS_COLORS = {
    "Running": _COLORS["ok"],
    "active": _COLORS["ok"],
    "Creating": _COLORS["pending"],
    "Restarting": _COLORS["pending"],
    "Shutting": _COLORS["pending"],
    "Failed": _COLORS["error"],
}


def status_name(status: object) -> str:
    """A notebook's or a service's status in the current language (an unknown one as it came)."""
    text = str(status or "")
    return _(_STATUS_NAMES[text]) if text in _STATUS_NAMES else text


def running_first(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Running instances first, as the form's menu lists them; the API's order otherwise."""
    return sorted(records, key=lambda record: record.get("notebookStatus") != "Running")


def _notebook_count(count: int) -> str:
    return ngettext("{count} notebook", "{count} notebooks", count).format(count=count)


def notebooks_text(records: Sequence[dict[str, Any]]) -> str:
    rows = [
        [str(r.get("id", "")), str(r.get("notebookName", "")), status_name(r.get("notebookStatus"))]
        for r in running_first(records)
    ]
    header = [_(title) for _key, title in _NOTEBOOK_COLUMNS]
    widths = [
        max([_width(header[i])] + [_width(row[i]) for row in rows]) for i in range(len(header))
    ]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            cell + " " * (width - _width(cell)) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    count = "(" + _notebook_count(len(rows)) + ")"
    return "\n".join([fmt(header)] + [fmt(row) for row in rows] + [count])


def notebooks_html(records: Sequence[dict[str, Any]]) -> str:
    # Text columns read from the left (notebook front ends right-align table cells).
    cell = 'style="text-align:left"'
    head = "".join(f"<th {cell}>{_esc(_(title))}</th>" for _key, title in _NOTEBOOK_COLUMNS)

    def status(record: dict[str, Any]) -> str:
        raw = str(record.get("notebookStatus", ""))
        color = _STATUS_COLORS.get(raw, _COLORS["info"])
        return f'<span style="color:{color};font-weight:600">{_esc(status_name(raw))}</span>'

    body = "".join(
        "<tr>"
        # Ids are shown as text (user-select: all) so a click selects the whole 19 digits.
        f'<td {cell}><code style="user-select:all">{_esc(r.get("id", ""))}</code></td>'
        f"<td {cell}>{_esc(r.get('notebookName', ''))}</td>"
        f"<td {cell}>{status(r)}</td>"
        "</tr>"
        for r in running_first(records)
    )
    count = _notebook_count(len(records))
    return (
        f'<table class="scnet-notebooks"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table><div>{_esc(count)}</div>"
    )


def notebooks_bundle(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"text/plain": notebooks_text(records), "text/html": notebooks_html(records)}


# -- signing in ----------------------------------------------------------------------------


def login_text(login: Login) -> str:
    """Who is signed in, where, and the address the session now uses."""
    return _("Signed in as {user}, region {region} ({region_id}).\nAddress: {url}").format(
        user=login.user, region=login.region, region_id=login.region_id, url=login.base_url
    )


def login_status_text(
    settings: Settings,
    current: Login | None,
    state: TokenState | None,
    saved: dict[str, Any],
    again: str,
) -> str:
    """Account, region, addresses and token state, as lines; never the token.

    ``saved`` is the config file's table: its account and region describe the token only if
    that token is the one in use.
    """
    if settings.token is None:
        return _("Not signed in: run {command}.").format(command=again)
    if saved.get("token") != settings.token:
        saved = {}
    lines = []
    user = current.user if current else saved.get("user")
    region = f"{current.region} ({current.region_id})" if current else saved.get("region")
    if user and region:
        lines += [
            _("Account: {user}").format(user=user),
            _("Region: {region}").format(region=region),
        ]
    else:
        lines.append(_("Token from: {source}").format(source=settings.token_source))
    # The three hosts a session talks to (scnet-api.md, section 5): the region's AI address
    # first, as the one the notebook calls use.
    lines += [
        _("Address: {url}").format(url=settings.base_url),
        _("Platform address (renewal, token check): {url}").format(url=settings.ac_url),
        _("Login address (sign-in): {url}").format(url=settings.login_url),
    ]
    if state is not None:
        lines.append(
            _("Token: valid.")
            if state.valid
            else _("Token: not valid ({detail}); sign in again with {command}.").format(
                detail=state.detail, command=again
            )
        )
    return "\n".join(lines)


def lines_html(text: str) -> str:
    """Plain lines as HTML lines, escaped."""
    return "<br>".join(_esc(line) for line in text.splitlines())
