"""The renderings of records: the notebooks table, the instance around the service, and the
signed-in session."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import one_line
from ..i18n import N_, _, ngettext
from .base import (
    _COLORS,
    _box,
    _esc,
    _width,
    terminal_safe,
)

if TYPE_CHECKING:
    from ..config import Settings
    from .base import (
        InstanceProgress,
        Login,
        Notebook,
        StopResult,
        TokenState,
    )


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
    return text if key != "command" else one_line(text, _COMMAND_COLUMN - 1)


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


@terminal_safe
def notebooks_text(records: Sequence[dict[str, Any]]) -> str:
    rows = [
        [
            status_name(r.get("notebookStatus")) if key == "notebookStatus" else _cell(r, key)
            for key, _ in _NOTEBOOK_COLUMNS
        ]
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
        f"<td {cell}>{_esc(_cell(r, 'customsizePort'))}</td>"
        f'<td {cell}><code title="{_esc(r.get("command") or "")}">'
        f"{_esc(_cell(r, 'command'))}</code></td>"
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


@terminal_safe
def login_text(login: Login) -> str:
    """Who is signed in, where, and the address the session now uses."""
    return _("Signed in as {user}, region {region} ({region_id}).\nAddress: {url}").format(
        user=login.user, region=login.region, region_id=login.region_id, url=login.base_url
    )


@terminal_safe
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


# -- the instance around the service -------------------------------------------------------


def instance_line(notebook: Notebook) -> str:
    """The instance's status and its one custom service (port and command), as one line."""
    if notebook.custom_port is None:
        service = _("no custom service configured")
    elif notebook.command:
        service = _("custom port {port}, command: {command}").format(
            port=notebook.custom_port, command=one_line(notebook.command, 119)
        )
    else:
        service = _("custom port {port}, no command").format(port=notebook.custom_port)
    return _("Instance {status}; {service}").format(
        status=notebook.status or _("unknown"), service=service
    )


@terminal_safe
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


@terminal_safe
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


@terminal_safe
def stop_text(result: StopResult) -> str:
    name = result.notebook_id
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
