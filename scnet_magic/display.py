"""HTML, text and JSON renderings shared by the magics, the form and the command line.

Everything that came from the server is escaped with :func:`html.escape`; links open in a new
tab without giving the new page a handle on the notebook (``rel="noopener noreferrer"``).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from IPython.display import DisplayHandle

    from .errors import ScnetError
    from .models import ServiceUrl, StartResult
    from .readiness import WaitProgress

_COLORS = {
    "ok": "#2e7d32",
    "ready": "#2e7d32",
    "pending": "#b26a00",
    "error": "#c62828",
    "info": "#546e7a",
}
_HEADLINES = {
    "ok": "Service is up",
    "ready": "Service is ready",
    "pending": "Started, not answering yet",
    "error": "Not started",
}
_PENDING_NOTE = (
    "The command ran, but nothing answers on the port yet; the address works as soon as the "
    "service listens."
)
_OUTPUT_LIMIT = 20_000  # characters of command output shown inline; the rest stays in .output


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


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
    return text[:_OUTPUT_LIMIT] + f"\n… ({len(text) - _OUTPUT_LIMIT} more characters)"


def _headline(result: StartResult) -> str:
    title = _HEADLINES[result.status]
    if result.ready_after is not None:
        title += f" after {result.ready_after:.1f} s"
    return f"{title}: port {result.port} of notebook {result.notebook_id}"


def start_html(result: StartResult) -> str:
    color = _COLORS[result.status]
    parts = [f'<div style="font-weight:600;color:{color}">{_esc(_headline(result))}</div>']
    if result.url:
        parts.append(f"<div>External URL: {link_html(result.url)}</div>")
    if result.pending:
        parts.append(f"<div>{_esc(_PENDING_NOTE)}</div>")
    # Once the URL answers, the platform's "nothing listens yet" message is out of date.
    if result.error_msg and not result.ready:
        parts.append(f"<div>Platform message: {_esc(result.error_msg)}</div>")
    if result.output:
        parts.append(
            "<details><summary>Command output</summary>"
            f'<pre style="max-height:20em;overflow:auto">{_esc(_clip(result.output))}</pre>'
            "</details>"
        )
    return _box(result.status, "".join(parts))


def start_text(result: StartResult) -> str:
    lines = [_headline(result)]
    if result.url:
        lines.append(f"  URL: {result.url}")
    if result.pending:
        lines.append(f"  {_PENDING_NOTE}")
    if result.error_msg and not result.ready:
        lines.append(f"  Platform message: {result.error_msg}")
    if result.output:
        lines.append("  Output:")
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
        return f"Waiting up to {timeout:g} s for {url} to answer…"
    return (
        f"Waiting for {url} to answer: {progress.elapsed:.0f} s of {timeout:g} s, "
        f"check {progress.attempts}: {progress.last.reason}"
    )


def waiting_bundle(
    result: StartResult, timeout: float, progress: WaitProgress | None
) -> dict[str, Any]:
    """The start result with a progress line under it, for a display updated in place."""
    line = waiting_text(result.url or "the service", timeout, progress)
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
    if error.hint:
        inner += f"<div>{_esc(error.hint)}</div>"
    return _box("error", inner)


def info_html(text: str) -> str:
    return _box("info", f"<div>{_esc(text)}</div>")


def service_url_text(service: ServiceUrl) -> str:
    state = service.status or "unknown"
    where = service.url or "no address yet"
    return f"Custom service of notebook {service.notebook_id}: {state}, {where}"


def service_url_html(service: ServiceUrl) -> str:
    kind = "ok" if service.active else "pending" if service.url else "info"
    state = _esc(service.status or "unknown")
    inner = f"<div>Custom service of notebook {_esc(service.notebook_id)}: <b>{state}</b></div>"
    if service.url:
        inner += f"<div>External URL: {link_html(service.url)}</div>"
    else:
        inner += "<div>No external address yet: start a service first.</div>"
    return _box(kind, inner)


def service_url_bundle(service: ServiceUrl) -> dict[str, Any]:
    # HTML and text only, as for a start result: JupyterLab would prefer a JSON tree.
    return {"text/plain": service_url_text(service), "text/html": service_url_html(service)}


_NOTEBOOK_COLUMNS = (("id", "Id"), ("notebookName", "Name"), ("notebookStatus", "Status"))


def notebooks_text(records: Sequence[dict[str, Any]]) -> str:
    rows = [[str(r.get(key, "")) for key, _ in _NOTEBOOK_COLUMNS] for r in records]
    header = [title for _, title in _NOTEBOOK_COLUMNS]
    widths = [max([len(header[i])] + [len(row[i]) for row in rows]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    return "\n".join([fmt(header)] + [fmt(row) for row in rows] + [f"({len(rows)} notebooks)"])


def notebooks_html(records: Sequence[dict[str, Any]]) -> str:
    head = "".join(f"<th>{title}</th>" for _, title in _NOTEBOOK_COLUMNS)
    body = "".join(
        "<tr>"
        # Ids are shown as text (user-select: all) so a click selects the whole 19 digits.
        f'<td><code style="user-select:all">{_esc(r.get("id", ""))}</code></td>'
        f"<td>{_esc(r.get('notebookName', ''))}</td>"
        f"<td>{_esc(r.get('notebookStatus', ''))}</td>"
        "</tr>"
        for r in records
    )
    return (
        f'<table class="scnet-notebooks"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table><div>{len(records)} notebooks</div>"
    )


def notebooks_bundle(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"text/plain": notebooks_text(records), "text/html": notebooks_html(records)}
