"""The renderings of records: the notebooks table, the instance around the service, and the
signed-in session."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import one_line
from ..i18n import N_, Message, _, ngettext
from .base import (
    COLORS,
    box,
    esc,
    terminal_safe,
    text_width,
)

if TYPE_CHECKING:
    from ..config import Settings
    from ..models import InstanceProgress, Login, Notebook, StopResult, TokenState


_NOTEBOOK_COLUMNS = (N_("Id"), N_("Name"), N_("Status"), N_("Port"), N_("Command"))
_COMMAND_COLUMN = 40  # characters of a command shown in the table; the record keeps all of it


def _cells(notebook: Notebook) -> list[str]:
    """A notebook's row: id, name, status as it came, port, the command cut to one line."""
    port = "" if notebook.custom_port is None else str(notebook.custom_port)
    command = one_line(notebook.command or "", _COMMAND_COLUMN - 1)
    return [notebook.id, notebook.name, notebook.status, port, command]


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
    "Running": COLORS["ok"],
    "active": COLORS["ok"],
    "Creating": COLORS["pending"],
    "Restarting": COLORS["pending"],
    "Shutting": COLORS["pending"],
    "Failed": COLORS["error"],
}


def status_message(status: object) -> Message | str:
    """A notebook's or a service's status as a message, written in the language of whatever
    shows it (an unknown one as it came): for the values of errors."""
    text = str(status or "")
    return Message(_STATUS_NAMES[text]) if text in _STATUS_NAMES else text


def status_name(status: object) -> str:
    """A notebook's or a service's status in the current language (an unknown one as it came)."""
    return str(status_message(status))


def running_first(notebooks: Sequence[Notebook]) -> list[Notebook]:
    """Running instances first, as the form's menu lists them; the API's order otherwise."""
    return sorted(notebooks, key=lambda notebook: not notebook.running)


def _notebook_count(count: int) -> str:
    return ngettext("{count} notebook", "{count} notebooks", count).format(count=count)


@terminal_safe
def notebooks_text(notebooks: Sequence[Notebook]) -> str:
    rows = []
    for notebook in running_first(notebooks):
        row = _cells(notebook)
        row[2] = status_name(row[2])
        rows.append(row)
    header = [_(title) for title in _NOTEBOOK_COLUMNS]
    widths = [
        max([text_width(header[i])] + [text_width(row[i]) for row in rows])
        for i in range(len(header))
    ]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            cell + " " * (width - text_width(cell))
            for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    count = "(" + _notebook_count(len(rows)) + ")"
    return "\n".join([fmt(header)] + [fmt(row) for row in rows] + [count])


def notebooks_html(notebooks: Sequence[Notebook]) -> str:
    # Text columns read from the left (notebook front ends right-align table cells).
    cell = 'style="text-align:left"'
    head = "".join(f"<th {cell}>{esc(_(title))}</th>" for title in _NOTEBOOK_COLUMNS)

    def row(notebook: Notebook) -> str:
        notebook_id, name, _status, port, command = map(esc, _cells(notebook))
        color = _STATUS_COLORS.get(notebook.status, COLORS["info"])
        if command:
            command = f'<code title="{esc(notebook.command or "")}">{command}</code>'
        # (an empty <code> shows as a grey stub: an empty cell stays empty)
        return (
            "<tr>"
            # Ids are shown as text (user-select: all) so a click selects the whole 19 digits.
            f'<td {cell}><code style="user-select:all">{notebook_id}</code></td>'
            f"<td {cell}>{name}</td>"
            f'<td {cell}><span style="color:{color};font-weight:600">'
            f"{esc(status_name(notebook.status))}</span></td>"
            f"<td {cell}>{port}</td>"
            f"<td {cell}>{command}</td>"
            "</tr>"
        )

    body = "".join(row(notebook) for notebook in running_first(notebooks))
    count = _notebook_count(len(notebooks))
    return (
        f'<table class="scnet-notebooks"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table><div>{esc(count)}</div>"
    )


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
        status=status_name(notebook.status) or _("unknown"), service=service
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
    inner = f'<div style="font-weight:600">{esc(title)}</div>'
    inner += f"<div>{esc(instance_line(notebook))}</div>"
    return box(kind, inner)


@terminal_safe
def instance_waiting_text(progress: InstanceProgress | None, notebook_id: str = "") -> str:
    """One line: the instance's status while it boots (or stops), with the seconds elapsed."""
    if progress is None:
        return _("Starting notebook instance {notebook_id}…").format(notebook_id=notebook_id)
    return _("Instance {notebook_id}: {status} ({elapsed} s), waiting for {wanted}…").format(
        notebook_id=progress.notebook_id,
        status=status_name(progress.status) or _("unknown"),
        elapsed=f"{progress.elapsed:.0f}",
        wanted=status_name(progress.wanted),
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
    return box("info" if result.already_stopped else "ok", f"<div>{esc(stop_text(result))}</div>")


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
