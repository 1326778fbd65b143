"""Every HTML, text and JSON rendering, and the showing of results in IPython.

Escaping happens here and only here: everything that came from the server goes through
:func:`html.escape`; links open in a new tab without a handle on the notebook
(``rel="noopener noreferrer"``). Results are rendered from their ``to_dict()`` (the ``…Fields``
types below), so this module names no result type: the results import it, never the reverse.
"""

from __future__ import annotations

import functools
import html
import json
import shutil
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TextIO, TypedDict, TypeVar

from . import arguments
from .errors import as_sentence, one_line
from .i18n import N_, Message, _, ngettext
from .server_text import strip_controls

if TYPE_CHECKING:
    from IPython.display import DisplayHandle

    from .config import Settings
    from .errors import ScnetError


# -- the shapes rendered: what the results' to_dict() return -------------------------------
class StartFields(TypedDict):
    status: str  # "ok", "ready", "pending" or "error"
    ok: bool
    pending: bool
    url: str | None
    notebook_id: str
    port: int
    code: str
    msg: str
    exec_success: bool
    error_msg: str | None
    output: str | None
    ready: bool
    ready_after: float | None
    protected: bool
    guard_port: int | None
    replaced_port: int | None
    nothing_ran: bool
    raw: dict[str, Any]


class _NotebookFields(TypedDict):
    id: str
    name: str
    status: str
    custom_port: int | None
    command: str | None
    raw: dict[str, Any]


class NotebookFields(_NotebookFields, total=False):
    user_port: int  # a guard of this machine listens on custom_port, in front of this port


class NotebookListFields(TypedDict):
    count: int
    notebooks: list[NotebookFields]


class _ServiceUrlFields(TypedDict):
    notebook_id: str
    url: str | None
    status: str | None
    active: bool
    raw: Any


class ServiceUrlFields(_ServiceUrlFields, total=False):
    instance: NotebookFields  # when the instance's record is known


class StopFields(TypedDict):
    notebook_id: str
    save_env: bool
    already_stopped: bool
    msg: str
    raw: dict[str, Any]


class LoginFields(TypedDict):
    user: str
    region: str
    region_id: str
    base_url: str
    login_url: str
    ac_url: str


class TokenFields(TypedDict):
    valid: bool
    detail: str


class InstanceProgressFields(TypedDict):
    notebook_id: str
    status: str  # the status seen
    wanted: str  # the status waited for
    elapsed: float


class WaitFields(TypedDict):
    elapsed: float
    attempts: int
    reason: str  # the last check's


_F_co = TypeVar("_F_co", covariant=True)


class Fields(Protocol[_F_co]):
    """What renders: anything that gives its fields as a mapping (a result's ``to_dict()``)."""

    def to_dict(self) -> _F_co: ...


# -- shared: colours, escaping, links, boxes, JSON -----------------------------------------
# A theme's colour (the fallback where the page has no theme: not Jupyter), a quarter of the
# way to the theme's text colour: legible (4.5:1) on the light and dark themes' backgrounds
# alike, tables' striped rows included.
_MIX = "color-mix(in srgb, var({}, {}) 75%, var(--jp-content-font-color0, #000))"
COLORS = {
    "ok": _MIX.format("--jp-success-color1", "#2e7d32"),
    "ready": _MIX.format("--jp-success-color1", "#2e7d32"),
    "pending": _MIX.format("--jp-warn-color0", "#b26a00"),
    "error": _MIX.format("--jp-error-color1", "#c62828"),
    "info": _MIX.format("--jp-content-font-color2", "#546e7a"),
    "starting": _MIX.format("--jp-content-font-color2", "#546e7a"),
}
LINK_COLOR = "var(--jp-content-link-color, #1565c0)"
LINK_STYLE = f"color:{LINK_COLOR};text-decoration:underline;font-family:monospace"
# A padlock drawn in the text's colour: an emoji would need an emoji font, which many
# machines lack (it shows as a box there).
LOCK_ICON = (
    '<svg class="scnet-lock" width="0.9em" height="0.9em" viewBox="0 0 16 16" aria-hidden="true" '
    'style="vertical-align:-0.1em;fill:currentColor">'
    '<path d="M4 7V5a4 4 0 0 1 8 0v2h1v8H3V7zm2 0h4V5a2 2 0 0 0-4 0z"/></svg>'
)
_OUTPUT_LIMIT = 20_000  # characters of command output shown inline; the rest stays in .output

_P = ParamSpec("_P")


def terminal_safe(render: Callable[_P, str]) -> Callable[_P, str]:
    """A text renderer whose text holds no escape sequence or control character (newlines and
    tabs kept): what it shows may have come from a server, and a terminal would obey it."""

    @functools.wraps(render)
    def rendered(*args: _P.args, **kwargs: _P.kwargs) -> str:
        return strip_controls(render(*args, **kwargs))

    return rendered


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def label(message: str, *, html: bool = True) -> str:
    """A translated "Label:" followed by a space, except after a full-width colon (Chinese)."""
    text = _(message)
    text = text if text.endswith("：") else text + " "
    return esc(text) if html else text


def link_html(url: str) -> str:
    """A clickable link that opens in a new tab and shows the URL itself as its text."""
    # Styled inline: inside a widget (the form's result area) no notebook stylesheet makes a
    # link look like one. No <code> inside: JupyterLab styles code near-black on grey, which
    # hid the link colour in the magic's output while the form's link stayed blue.
    return (
        f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer" '
        f'style="{LINK_STYLE}">{esc(url)}</a>'
    )


def box(kind: str, inner: str) -> str:
    # The font size of the page's text: the same in the magic's output and in a widget.
    return (
        f'<div class="scnet-result scnet-{kind}" style="border-left:4px solid {COLORS[kind]};'
        "padding:4px 10px;margin:2px 0;line-height:1.5;"
        f'font-size:var(--jp-content-font-size1, 14px)">{inner}</div>'
    )


def card(kind: str, text: str) -> str:
    """Plain lines, each escaped, as a card like the results (``kind``: its colour)."""
    return box(kind, "".join(f"<div>{esc(line)}</div>" for line in text.splitlines()))


def card_bundle(kind: str, text: str) -> dict[str, Any]:
    """A few lines as a display: a card in a notebook, the lines as they are in a terminal."""
    return {"text/plain": text, "text/html": card(kind, text)}


def note_html(text: str, error: bool = False) -> str:
    """A small one-line note beside a form's field; an error (a list that failed) in red."""
    style = f' class="scnet-error" style="color:{COLORS["error"]}"' if error else ""
    return f"<small{style}>{esc(text)}</small>"


def error_html(error: ScnetError) -> str:
    """One short line plus the hint, for the form's result area."""
    message = as_sentence(error.message)
    inner = f'<div style="font-weight:600;color:{COLORS["error"]}">{esc(message)}</div>'
    if error.hint:
        inner += f"<div>{esc(as_sentence(error.hint))}</div>"
    return box("error", inner)


def clip(text: str) -> str:
    if len(text) <= _OUTPUT_LIMIT:
        return text
    more = _("{count} more characters").format(count=len(text) - _OUTPUT_LIMIT)
    return text[:_OUTPUT_LIMIT] + f"\n… ({more})"


def to_json(payload: Any) -> str:
    """Stable JSON text: the same bytes whatever the language or platform."""
    return json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True)


def show_lines(text: str, kind: str = "info") -> None:
    """What a magic says in a few lines, as a card like the results."""
    from IPython.display import display

    display(card_bundle(kind, text), raw=True)


# -- statuses ------------------------------------------------------------------------------
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
_STATUS_KINDS = {
    "Running": "ok",
    "active": "ok",
    "Creating": "pending",
    "Restarting": "pending",
    "Shutting": "pending",
    "Failed": "error",
}


def status_message(status: object) -> Message | str:
    """A notebook's or a service's status as a message, written in the language of whatever
    shows it (an unknown one as it came): for the values of errors."""
    text = str(status or "")
    return Message(_STATUS_NAMES[text]) if text in _STATUS_NAMES else text


def status_name(status: object) -> str:
    """A notebook's or a service's status in the current language (an unknown one as it came)."""
    return str(status_message(status))


# -- a start -------------------------------------------------------------------------------
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
_NOTHING_RAN_NOTE = N_(
    "The sandbox runs nothing without --execute: no command ran, and this URL is an example "
    "that leads nowhere. Start the sandbox with --execute to run commands on this machine."
)
# Labels used inside f-strings (where the catalog's extractor does not look).
_EXTERNAL_URL = N_("External URL:")
_PLATFORM_MESSAGE = N_("Platform message:")
_COMMAND_OUTPUT = N_("Command output")
_URL = N_("URL:")
_OUTPUT = N_("Output:")
_SERVICE_OF = N_("Custom service of notebook {notebook_id}:")
_NO_ADDRESS = N_("No external address yet: start a service first.")
_REPLACES = N_("This replaced the custom service on port {port}: an instance has one custom port.")
# What the platform says for a pending start ("no service detected on the port you gave ...
# the external address is: URL"): the headline, the pending note and the URL say it already.
_NOTHING_LISTENS = "未检测到可用的服务"


def _headline(result: StartFields) -> str:
    title = _(_HEADLINES[result["status"]])
    if result["ready_after"] is not None:
        title += _(" after {seconds} s").format(seconds=f"{result['ready_after']:.1f}")
    return _("{title}: port {port} of notebook {notebook_id}").format(
        title=title, port=result["port"], notebook_id=result["notebook_id"]
    )


def _notes(result: StartFields) -> list[str]:
    """The lines under the headline and the URL, in both forms."""
    notes = []
    if result["pending"]:
        notes.append(_(_NOTHING_RAN_NOTE if result["nothing_ran"] else _PENDING_NOTE))
    if result["replaced_port"] is not None:
        notes.append(_(_REPLACES).format(port=result["replaced_port"]))
    said = result["error_msg"]
    # The platform's errorMsg (kept in the result anyway), unless out of date once the URL
    # answers, or saying only what the headline, the note and the URL say.
    restates = result["pending"] and _NOTHING_LISTENS in (said or "")
    if said and not result["ready"] and not (restates and (result["url"] or "") in said):
        notes.append(label(_PLATFORM_MESSAGE, html=False) + said)
    return notes


def start_html(result: Fields[StartFields], *, note: str = "") -> str:
    fields = result.to_dict()
    color = COLORS[fields["status"]]
    parts = [f'<div style="font-weight:600;color:{color}">{esc(_headline(fields))}</div>']
    if fields["url"]:
        parts.append(f"<div>{label(_EXTERNAL_URL)}{link_html(fields['url'])}</div>")
    if fields["protected"]:
        line = esc(protected_line(result, icon=False))
        parts.append(f'<div class="scnet-protected">{LOCK_ICON} {line}</div>')
    parts += [f"<div>{esc(line)}</div>" for line in _notes(fields)]
    if fields["output"]:
        # Open while nothing answers: the reason a command failed at once is in its output.
        opened = " open" if fields["pending"] else ""
        parts.append(
            f"<details{opened}><summary>{esc(_(_COMMAND_OUTPUT))}</summary>"
            f'<pre style="max-height:20em;overflow:auto">{esc(clip(fields["output"]))}</pre>'
            "</details>"
        )
    if note:  # the last word: after the output
        parts.append(f"<div><i>{esc(note)}</i></div>")
    return box(fields["status"], "".join(parts))


@terminal_safe
def start_text(result: Fields[StartFields], *, note: str = "") -> str:
    fields = result.to_dict()
    lines = [_headline(fields)]
    if fields["url"]:
        lines.append(f"  {label(_URL, html=False)}{fields['url']}")
    if fields["protected"]:
        lines.append(f"  {protected_line(result)}")
    lines += [f"  {line}" for line in _notes(fields)]
    if fields["output"]:
        lines.append(f"  {_(_OUTPUT)}")
        lines.extend(f"    {line}" for line in clip(fields["output"]).splitlines())
    if note:
        lines.append(f"  {note}")
    return "\n".join(lines)


def protected_line(result: Fields[StartFields], *, icon: bool = True) -> str:
    """The one line a protected start adds: the URL asks for a password (``--protect``)."""
    fields = result.to_dict()
    text = _(
        "asks for a password first: a guard passes visitors to port {port} (the guard's own "
        "port: {guard_port})"
    ).format(port=fields["port"], guard_port=fields["guard_port"])
    return "\N{LOCK} " + text if icon else text


def starting_text(notebook_id: str, port: int) -> str:
    return _("Starting the service on port {port} of notebook {notebook_id}…").format(
        port=port, notebook_id=notebook_id
    )


@terminal_safe
def waiting_text(url: str, timeout: float, progress: Fields[WaitFields] | None) -> str:
    """One line saying how long the wait for the external URL has run, and the last check."""
    if progress is None:
        return _("Waiting up to {timeout} s for {url} to answer…").format(
            timeout=f"{timeout:g}", url=url
        )
    check = progress.to_dict()
    return _(
        "Waiting for {url} to answer: {elapsed} s of {timeout} s, check {attempt}: {reason}"
    ).format(
        url=url,
        elapsed=f"{check['elapsed']:.0f}",
        timeout=f"{timeout:g}",
        attempt=check["attempts"],
        reason=check["reason"],
    )


def waiting_bundle(
    result: Fields[StartFields], timeout: float, progress: Fields[WaitFields] | None
) -> dict[str, Any]:
    """The start result with a progress line under it, for a display updated in place."""
    line = waiting_text(result.to_dict()["url"] or _("the service"), timeout, progress)
    return {
        "text/plain": f"{start_text(result)}\n  {line}",
        "text/html": start_html(result) + card("info", line),
    }


def start_bundle(result: Fields[StartFields], note: str = "") -> dict[str, Any]:
    """The start result as one display, with a last line of its own (a wait stopped)."""
    return {"text/plain": start_text(result, note=note), "text/html": start_html(result, note=note)}


# -- the custom service's address and the instance around it -------------------------------
def _port(notebook: NotebookFields) -> str:
    """The custom port as the user knows it: theirs, not that of a guard in front of it."""
    port = notebook["custom_port"]
    if "user_port" not in notebook:
        return "" if port is None else str(port)
    return _("{port} (password; the guard's port: {guard_port})").format(
        port=notebook["user_port"], guard_port=port
    )


def instance_line(notebook: NotebookFields) -> str:
    """The instance's status and its one custom service (port and command), as one line."""
    port, command = _port(notebook), notebook["command"]
    if not port:
        service = _("no custom service configured")
    elif command:
        service = _("custom port {port}, command: {command}").format(
            port=port, command=one_line(command, 119)
        )
    else:
        service = _("custom port {port}, no command").format(port=port)
    return _("Instance {status}; {service}").format(
        status=status_name(notebook["status"]) or _("unknown"), service=service
    )


@terminal_safe
def service_url_text(service: Fields[ServiceUrlFields]) -> str:
    fields = service.to_dict()
    text = _("Custom service of notebook {notebook_id}: {state}, {url}").format(
        notebook_id=fields["notebook_id"],
        state=status_name(fields["status"]) or _("unknown"),
        url=fields["url"] or _("no address yet"),
    )
    if "instance" in fields:
        text += "\n  " + instance_line(fields["instance"])
    return text


def service_url_html(service: Fields[ServiceUrlFields]) -> str:
    fields = service.to_dict()
    url = fields["url"]
    kind = "ok" if fields["active"] else "pending" if url else "info"
    state = esc(status_name(fields["status"]) or _("unknown"))
    title = label(_SERVICE_OF).format(notebook_id=esc(fields["notebook_id"]))
    address = f"{label(_EXTERNAL_URL)}{link_html(url)}" if url else esc(_(_NO_ADDRESS))
    inner = f"<div>{title}<b>{state}</b></div><div>{address}</div>"
    if "instance" in fields:
        inner += f"<div>{esc(instance_line(fields['instance']))}</div>"
    return box(kind, inner)


def _notebook_title(notebook: NotebookFields) -> str:
    return _("Notebook {name} ({notebook_id})").format(
        name=notebook["name"] or _("(no name)"), notebook_id=notebook["id"]
    )


@terminal_safe
def notebook_text(notebook: Fields[NotebookFields]) -> str:
    fields = notebook.to_dict()
    return f"{_notebook_title(fields)}\n  {instance_line(fields)}"


def notebook_html(notebook: Fields[NotebookFields]) -> str:
    fields = notebook.to_dict()
    status = fields["status"]
    kind = "ok" if status == "Running" else "error" if status == "Failed" else "info"
    inner = f'<div style="font-weight:600">{esc(_notebook_title(fields))}</div>'
    return box(kind, inner + f"<div>{esc(instance_line(fields))}</div>")


@terminal_safe
def instance_waiting_text(
    progress: Fields[InstanceProgressFields] | None, notebook_id: str = ""
) -> str:
    """One line: the instance's status while it boots (or stops), with the seconds elapsed."""
    if progress is None:
        return _("Starting notebook instance {notebook_id}…").format(notebook_id=notebook_id)
    fields = progress.to_dict()
    return _("Instance {notebook_id}: {status} ({elapsed} s), waiting for {wanted}…").format(
        notebook_id=fields["notebook_id"],
        status=status_name(fields["status"]) or _("unknown"),
        elapsed=f"{fields['elapsed']:.0f}",
        wanted=status_name(fields["wanted"]),
    )


@terminal_safe
def instance_running_text(name: str, notebook_id: str) -> str:
    """The line a boot ends with, naming the instance as the stop prompt does."""
    return _("Notebook instance {name} ({notebook_id}) is running.").format(
        name=name or _("(no name)"), notebook_id=notebook_id
    )


@terminal_safe
def stop_text(result: Fields[StopFields]) -> str:
    fields = result.to_dict()
    name = fields["notebook_id"]
    if fields["already_stopped"]:
        return _("Notebook instance {name} was already stopped: nothing to do.").format(name=name)
    kept = (
        _("its environment is kept for the next start")
        if fields["save_env"]
        else _("its environment is discarded")
    )
    return _("Notebook instance {name} is stopping; {kept}.").format(name=name, kept=kept)


def stop_html(result: Fields[StopFields]) -> str:
    return card("info" if result.to_dict()["already_stopped"] else "ok", stop_text(result))


def stop_warning(name: str, notebook_id: str, *, kernel: bool = True) -> str:
    """What stopping ends, said before it is done (``kernel``: asked from a notebook's kernel;
    otherwise from a shell)."""
    if kernel:
        text = N_(
            "Stopping notebook instance {name} ({notebook_id}) ends every process in it: its "
            "services, terminals and kernels, this kernel too if this notebook runs there."
        )
    else:
        text = N_(
            "Stopping notebook instance {name} ({notebook_id}) ends every process in it: its "
            "services, terminals and kernels, this shell too if it runs there."
        )
    return _(text).format(name=name or _("(no name)"), notebook_id=notebook_id)


# -- the notebooks table -------------------------------------------------------------------
_NOTEBOOK_COLUMNS = (N_("Id"), N_("Name"), N_("Status"), N_("Port"), N_("Command"))
_COMMAND_COLUMN = 40  # characters of a command shown in the table; the record keeps all of it


def _rows(notebooks: Fields[NotebookListFields]) -> list[NotebookFields]:
    """Running instances first, as the form's menu lists them; the API's order otherwise."""
    return sorted(notebooks.to_dict()["notebooks"], key=lambda n: n["status"] != "Running")


def _cells(notebook: NotebookFields) -> list[str]:
    command = one_line(notebook["command"] or "", _COMMAND_COLUMN - 1)
    status = status_name(notebook["status"])
    return [notebook["id"], notebook["name"], status, _port(notebook), command]


def _notebook_count(count: int) -> str:
    return ngettext("{count} notebook", "{count} notebooks", count).format(count=count)


@terminal_safe
def notebooks_text(notebooks: Fields[NotebookListFields]) -> str:
    cells = [_cells(notebook) for notebook in _rows(notebooks)]
    rows = [[_(title) for title in _NOTEBOOK_COLUMNS], *cells]
    widths = [max(map(arguments.columns, column)) for column in zip(*rows, strict=True)]
    lines = [
        "  ".join(
            cell + " " * (width - arguments.columns(cell))
            for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    ]
    return "\n".join([*lines, f"({_notebook_count(len(cells))})"])


def notebooks_html(notebooks: Fields[NotebookListFields]) -> str:
    # Text columns read from the left (notebook front ends right-align table cells).
    cell = 'style="text-align:left"'
    head = "".join(f"<th {cell}>{esc(_(title))}</th>" for title in _NOTEBOOK_COLUMNS)
    rows = _rows(notebooks)
    body = ""
    for notebook in rows:
        notebook_id, name, status, port, command = map(esc, _cells(notebook))
        color = COLORS[_STATUS_KINDS.get(notebook["status"], "info")]
        if command:  # (an empty <code> shows as a grey stub: an empty cell stays empty)
            command = f'<code title="{esc(notebook["command"])}">{command}</code>'
        cells = [
            # Ids are shown as text (user-select: all) so a click selects the whole 19 digits.
            f'<code style="user-select:all">{notebook_id}</code>',
            name,
            f'<span style="color:{color};font-weight:600">{status}</span>',
            port,
            command,
        ]
        body += "<tr>" + "".join(f"<td {cell}>{text}</td>" for text in cells) + "</tr>"
    return (
        f'<table class="scnet-notebooks"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table><div>{esc(_notebook_count(len(rows)))}</div>"
    )


# -- signing in ----------------------------------------------------------------------------
@terminal_safe
def login_text(login: Fields[LoginFields]) -> str:
    """Who is signed in, where, and the address the session now uses."""
    fields = login.to_dict()
    return _("Signed in as {user}, region {region} ({region_id}).\nAddress: {url}").format(
        user=fields["user"],
        region=fields["region"],
        region_id=fields["region_id"],
        url=fields["base_url"],
    )


@terminal_safe
def login_status_text(
    settings: Settings,
    current: Fields[LoginFields] | None,
    state: Fields[TokenFields] | None,
    saved: dict[str, Any],
    again: str,
) -> str:
    """Account, region, addresses and token state, as lines; never the token. ``saved`` is the
    config file's table: its account and region describe the token only if it is the one in use."""
    if settings.token is None:
        return _("Not signed in: run {command}.").format(command=again)
    if saved.get("token") != settings.token:
        saved = {}
    login = current.to_dict() if current else None
    user = login["user"] if login else saved.get("user")
    region = f"{login['region']} ({login['region_id']})" if login else saved.get("region")
    if user and region:
        lines = [
            _("Account: {user}").format(user=user),
            _("Region: {region}").format(region=region),
        ]
    else:
        lines = [_("Token from: {source}").format(source=settings.token_source)]
    # The three hosts a session talks to (scnet-api.md, section 5): the region's AI address
    # first, as the one the notebook calls use.
    lines += [
        _("Address: {url}").format(url=settings.base_url),
        _("Platform address (renewal, token check): {url}").format(url=settings.ac_url),
        _("Login address (sign-in): {url}").format(url=settings.login_url),
    ]
    if state is not None:
        token = state.to_dict()
        lines.append(
            _("Token: valid.")
            if token["valid"]
            else _("Token: not valid ({detail}); sign in again with {command}.").format(
                detail=token["detail"], command=again
            )
        )
    return "\n".join(lines)


# -- showing results in IPython ------------------------------------------------------------
class Shown(Protocol):
    """A result the magics display and return (StartResult, ServiceUrl, NotebookList)."""

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]: ...


def prints_only(shell: Any) -> bool:
    """True where displays are printed as text and cannot be updated in place: terminal
    IPython, whose display publisher is IPython's plain one (a kernel and a capturing cell
    replace it)."""
    from IPython.core.displaypub import DisplayPublisher

    return shell is not None and type(shell.display_pub) is DisplayPublisher


def waits_for_cell_end(shell: Any) -> bool:
    """True where what a magic says is best said at the end of the cell: in a terminal (see
    :func:`show`), while a cell runs."""
    # IPython hands the displayhook the cell's ExecutionResult while a cell runs, and only
    # then: a magic called from code outside any cell has no end of cell to wait for.
    in_a_cell = getattr(getattr(shell, "displayhook", None), "exec_result", None) is not None
    return prints_only(shell) and in_a_cell


# Results a magic returned in a terminal, not shown yet, with what to show: see show().
_deferred: dict[int, tuple[Shown, dict[str, Any]]] = {}
# The cell that showed each result, by the result's id: kept here, since results are
# immutable. The weak reference tells the result from a later one given the same id, and
# forgets the result when it goes (its id may then be given to another object).
_shown_in: dict[int, tuple[weakref.ref[Shown], int | None]] = {}


def show(
    result: Shown,
    handle: DisplayHandle | None = None,
    *,
    now: bool = False,
    bundle: dict[str, Any] | None = None,
) -> None:
    """Display a result from a magic (in place of ``handle``'s output when given; as
    ``bundle`` when given) and remember in which cell it was shown.

    In a terminal the magic's value, when it is the cell's last line, is printed after an
    ``Out[n]:`` prompt that IPython writes before asking the value to show itself: showing it
    here as well would leave that prompt empty. So there it is shown once, by the prompt, or
    at the end of the cell when it was assigned (``now`` shows it at once: a failure follows).
    """
    from IPython import get_ipython
    from IPython.display import display

    shell = get_ipython()
    bundle = bundle or result._repr_mimebundle_()
    if handle is None and not now and waits_for_cell_end(shell):
        _deferred[id(result)] = (result, bundle)
        if _show_deferred not in shell.events.callbacks["post_run_cell"]:
            shell.events.register("post_run_cell", _show_deferred)
        return
    key = id(result)
    cell = shell.execution_count if shell is not None else None
    _shown_in[key] = (weakref.ref(result, lambda _gone: _shown_in.pop(key, None)), cell)
    if handle is None:
        display(bundle, raw=True)
    else:
        handle.update(bundle, raw=True)


def _show_deferred(*_args: Any) -> None:
    from IPython import get_ipython
    from IPython.display import display

    pending = list(_deferred.values())
    _deferred.clear()
    shell = get_ipython()
    if shell is not None:
        shell.events.unregister("post_run_cell", _show_deferred)
    for _result, bundle in pending:
        display(bundle, raw=True)


def show_once(result: Shown) -> None:
    """Display a result unless the magic that returned it already showed it in this cell."""
    from IPython import get_ipython
    from IPython.display import display

    deferred = _deferred.pop(id(result), None)
    if deferred is not None:
        display(deferred[1], raw=True)
        return
    shell = get_ipython()
    ref, cell = _shown_in.pop(id(result), (None, None))
    if ref is not None and ref() is result and shell is not None and cell == shell.execution_count:
        return
    display(result._repr_mimebundle_(), raw=True)


def open_display(bundle: dict[str, Any]) -> DisplayHandle:
    """Show ``bundle``; the returned handle updates it in place."""
    from IPython.display import display

    handle: DisplayHandle = display(bundle, raw=True, display_id=True)
    return handle


class StartProgress(Protocol):
    """Where a start stands, as the service reports it while it waits."""

    @property
    def result(self) -> Fields[StartFields]: ...
    @property
    def check(self) -> Fields[WaitFields] | None: ...


class ProgressLine:
    """One status line on ``stream``, rewritten in place on a terminal (``\\r``); elsewhere one
    line when something begins (or the instance's status changes) and nothing for each check,
    so a log gets no flood."""

    def __init__(self, stream: TextIO, timeout: float) -> None:
        self.stream = stream
        self.timeout = timeout
        self.in_place = stream.isatty()
        self.url = ""
        self.shown = False
        self.instance_status: str | None = None  # the last one boot() showed

    def note(self, line: str) -> None:
        """A passing line (the start in flight): on a terminal only, where the result soon
        writes over it; a log or a pipe gets the result alone."""
        self._write(line, always=False)

    def begin(self, url: str) -> None:
        self.url = url
        self._write(waiting_text(url, self.timeout, None), always=True)

    def update(self, check: Fields[WaitFields]) -> None:
        self._write(waiting_text(self.url, self.timeout, check), always=False)

    def follow(self, progress: StartProgress) -> None:
        """The service's progress callback (``on_progress``): the wait begins, or a check was
        not ready."""
        if progress.check is None:
            self.begin(progress.result.to_dict()["url"] or _("the service"))
        else:
            self.update(progress.check)

    def boot(self, notebook_id: str, progress: Fields[InstanceProgressFields] | None) -> None:
        """The instance's status while the start boots it (``on_boot``, with the notebook id
        bound): the boot sent (None), then each status seen."""
        status = progress.to_dict()["status"] if progress is not None else None
        changed = progress is None or status != self.instance_status
        self.instance_status = status
        self._write(instance_waiting_text(progress, notebook_id), always=changed)

    def prompting(self, ask: str | Callable[[], str] | None) -> str | Callable[[], str] | None:
        """``ask`` (a password, or how to ask for it), made to end the line before it asks:
        its prompt on a line of its own."""
        if not callable(ask):
            return ask

        def asking() -> str:
            self.end()
            return ask()

        return asking

    def end(self) -> None:
        """Clear the line on a terminal, so what follows starts on a clean line."""
        if self.in_place and self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        self.shown = False

    def _write(self, line: str, *, always: bool) -> None:
        if self.in_place:
            # A line wider than the terminal wraps, and "\r" would then rewrite only its end.
            # (Chinese characters take two columns each.)
            width = shutil.get_terminal_size().columns - 1
            self.stream.write(f"\r\x1b[K{arguments.fit(line, width)}")
            self.stream.flush()
            self.shown = True
        elif always:
            print(line, file=self.stream, flush=True)
