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
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .i18n import N_, _

if TYPE_CHECKING:
    from IPython.display import DisplayHandle

    from .config import Settings
    from .errors import ScnetError
    from .models import (
        InstanceProgress,
        Login,
        Notebook,
        ServiceUrl,
        StartResult,
        StopResult,
        TokenState,
        WaitProgress,
    )

_COLORS = {
    "ok": "#2e7d32",
    "ready": "#2e7d32",
    "pending": "#b26a00",
    "error": "#c62828",
    "info": "#546e7a",
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
_REPLACES = N_("This replaced the custom service on port {port}: an instance has one custom port.")


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _label(message: str, *, html: bool = True) -> str:
    """A translated "Label:" followed by a space, except after a full-width colon (Chinese)."""
    text = _(message)
    text = text if text.endswith("：") else text + " "
    return _esc(text) if html else text


def link_html(url: str) -> str:
    """A clickable link that opens in a new tab and shows the URL itself as its text."""
    # Styled inline: inside a widget (the form's result area) no notebook stylesheet makes a
    # link look like one.
    return (
        f'<a href="{_esc(url)}" target="_blank" rel="noopener noreferrer" '
        f'style="color:#1565c0;text-decoration:underline"><code>{_esc(url)}</code></a>'
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


def start_html(result: StartResult) -> str:
    color = _COLORS[result.status]
    parts = [f'<div style="font-weight:600;color:{color}">{_esc(_headline(result))}</div>']
    if result.url:
        parts.append(f"<div>{_label(_EXTERNAL_URL)}{link_html(result.url)}</div>")
    if result.pending:
        parts.append(f"<div>{_esc(_(_PENDING_NOTE))}</div>")
    if result.replaced_port is not None:
        parts.append(f"<div>{_esc(_(_REPLACES).format(port=result.replaced_port))}</div>")
    # Once the URL answers, the platform's "nothing listens yet" message is out of date.
    if result.error_msg and not result.ready:
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
    if result.pending:
        lines.append(f"  {_(_PENDING_NOTE)}")
    if result.replaced_port is not None:
        lines.append(f"  {_(_REPLACES).format(port=result.replaced_port)}")
    if result.error_msg and not result.ready:
        lines.append(f"  {_label(_PLATFORM_MESSAGE, html=False)}{result.error_msg}")
    if result.output:
        lines.append(f"  {_(_OUTPUT)}")
        lines.extend(f"    {line}" for line in _clip(result.output).splitlines())
    return "\n".join(lines)


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


def show(result: Shown, handle: DisplayHandle | None = None) -> None:
    """Display a result from a magic (in place of ``handle``'s output when given) and remember
    in which cell it was shown."""
    from IPython import get_ipython
    from IPython.display import display

    shell = get_ipython()
    result.__dict__["_scnet_shown_in"] = shell.execution_count if shell is not None else None
    if handle is None:
        display(result._repr_mimebundle_(), raw=True)
    else:
        handle.update(result._repr_mimebundle_(), raw=True)


def show_once(result: Shown) -> None:
    """Display a result unless the magic that returned it already showed it in this cell."""
    from IPython import get_ipython
    from IPython.display import display

    shell = get_ipython()
    shown_in = result.__dict__.pop("_scnet_shown_in", None)
    if shell is not None and shown_in is not None and shown_in == shell.execution_count:
        return
    display(result._repr_mimebundle_(), raw=True)


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
    state = service.status or _("unknown")
    where = service.url or _("no address yet")
    text = _("Custom service of notebook {notebook_id}: {state}, {url}").format(
        notebook_id=service.notebook_id, state=state, url=where
    )
    if service.instance is not None:
        text += "\n  " + instance_line(service.instance)
    return text


def service_url_html(service: ServiceUrl) -> str:
    kind = "ok" if service.active else "pending" if service.url else "info"
    state = _esc(service.status or _("unknown"))
    title = _label(_SERVICE_OF).format(notebook_id=_esc(service.notebook_id))
    inner = f"<div>{title}<b>{state}</b></div>"
    if service.url:
        inner += f"<div>{_label(_EXTERNAL_URL)}{link_html(service.url)}</div>"
    else:
        inner += f"<div>{_esc(_(_NO_ADDRESS))}</div>"
    if service.instance is not None:
        inner += f"<div>{_esc(instance_line(service.instance))}</div>"
    return _box(kind, inner)


def service_url_bundle(service: ServiceUrl) -> dict[str, Any]:
    # HTML and text only, as for a start result: JupyterLab would prefer a JSON tree.
    return {"text/plain": service_url_text(service), "text/html": service_url_html(service)}


_NOTEBOOK_COLUMNS = (
    ("id", N_("Id")),
    ("notebookName", N_("Name")),
    ("notebookStatus", N_("Status")),
    ("customsizePort", N_("Port")),
    ("command", N_("Command")),
)
_COMMAND_COLUMN = 40  # characters of a command shown in the table; the record keeps all of it


def _cell(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    text = "" if value is None else str(value)
    return text if key != "command" else one_line_clip(text, _COMMAND_COLUMN)


def one_line_clip(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: CJK characters (names, Chinese titles) take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def notebooks_text(records: Sequence[dict[str, Any]]) -> str:
    rows = [[_cell(r, key) for key, _ in _NOTEBOOK_COLUMNS] for r in records]
    header = [_(title) for _key, title in _NOTEBOOK_COLUMNS]
    widths = [
        max([_width(header[i])] + [_width(row[i]) for row in rows]) for i in range(len(header))
    ]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            cell + " " * (width - _width(cell)) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    count = _("({count} notebooks)").format(count=len(rows))
    return "\n".join([fmt(header)] + [fmt(row) for row in rows] + [count])


def notebooks_html(records: Sequence[dict[str, Any]]) -> str:
    head = "".join(f"<th>{_esc(_(title))}</th>" for _key, title in _NOTEBOOK_COLUMNS)
    body = "".join(
        "<tr>"
        # Ids are shown as text (user-select: all) so a click selects the whole 19 digits.
        f'<td><code style="user-select:all">{_esc(r.get("id", ""))}</code></td>'
        f"<td>{_esc(r.get('notebookName', ''))}</td>"
        f"<td>{_esc(r.get('notebookStatus', ''))}</td>"
        f"<td>{_esc(_cell(r, 'customsizePort'))}</td>"
        f'<td><code title="{_esc(r.get("command") or "")}">'
        f"{_esc(_cell(r, 'command'))}</code></td>"
        "</tr>"
        for r in records
    )
    count = _("{count} notebooks").format(count=len(records))
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


# -- the instance around the service -------------------------------------------------------


def instance_line(notebook: Notebook) -> str:
    """The instance's status and its one custom service (port and command), as one line."""
    if notebook.custom_port is None:
        service = _("no custom service configured")
    elif notebook.command:
        service = _("custom port {port}, command: {command}").format(
            port=notebook.custom_port, command=one_line_clip(notebook.command, 120)
        )
    else:
        service = _("custom port {port}, no command").format(port=notebook.custom_port)
    return _("Instance {status}; {service}").format(
        status=notebook.status or _("unknown"), service=service
    )


def notebook_text(notebook: Notebook) -> str:
    title = _("Notebook {name} ({notebook_id})").format(
        name=notebook.name or _("(no name)"), notebook_id=notebook.id
    )
    return f"{title}\n  {instance_line(notebook)}"


def notebook_html(notebook: Notebook) -> str:
    kind = "ok" if notebook.running else "error" if notebook.status == "Failed" else "info"
    title = _("Notebook {name} ({notebook_id})").format(
        name=notebook.name or _("(no name)"), notebook_id=notebook.id
    )
    inner = f'<div style="font-weight:600">{_esc(title)}</div>'
    inner += f"<div>{_esc(instance_line(notebook))}</div>"
    return _box(kind, inner)


def notebook_bundle(notebook: Notebook) -> dict[str, Any]:
    return {"text/plain": notebook_text(notebook), "text/html": notebook_html(notebook)}


def instance_waiting_text(progress: InstanceProgress | None, notebook_id: str = "") -> str:
    """One line: the instance's status while it boots (or stops), with the seconds elapsed."""
    if progress is None:
        return _("Starting notebook instance {notebook_id}…").format(notebook_id=notebook_id)
    return _("Instance {notebook_id}: {status} ({elapsed} s), waiting for {wanted}…").format(
        notebook_id=progress.notebook_id,
        status=progress.status or _("unknown"),
        elapsed=f"{progress.elapsed:.0f}",
        wanted=progress.wanted,
    )


def stop_text(result: StopResult) -> str:
    name = f"{result.name} ({result.notebook_id})" if result.name else result.notebook_id
    if result.already_stopped:
        return _("Notebook instance {name} was already stopped: nothing to do.").format(name=name)
    kept = (
        _("its environment is kept for the next start")
        if result.save_env
        else _("its environment is discarded")
    )
    return _("Notebook instance {name} is stopping; {kept}.").format(name=name, kept=kept)


def stop_html(result: StopResult) -> str:
    return _box("info" if result.already_stopped else "ok", f"<div>{_esc(stop_text(result))}</div>")


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
