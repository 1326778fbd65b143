"""The renderings of a start: its result, the lines while it starts and while it waits, and
the custom service's address; showing them in IPython."""

from __future__ import annotations

import shutil
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from .. import arguments
from ..i18n import N_, _
from .base import (
    COLORS,
    box,
    clip,
    esc,
    info_html,
    label,
    link_html,
    terminal_safe,
)
from .records import instance_line, instance_waiting_text, status_name

if TYPE_CHECKING:
    from IPython.display import DisplayHandle

    from ..models import InstanceProgress, ServiceUrl, StartResult, WaitProgress

    class StartProgress(Protocol):
        """Where a start stands, as the service reports it while it waits."""

        @property
        def result(self) -> StartResult: ...
        @property
        def check(self) -> WaitProgress | None: ...


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


def _pending_note(result: StartResult) -> str:
    return _NOTHING_RAN_NOTE if result.nothing_ran else _PENDING_NOTE


def start_html(result: StartResult) -> str:
    color = COLORS[result.status]
    parts = [f'<div style="font-weight:600;color:{color}">{esc(_headline(result))}</div>']
    if result.url:
        parts.append(f"<div>{label(_EXTERNAL_URL)}{link_html(result.url)}</div>")
    if result.protected:
        parts.append(f'<div class="scnet-protected">{esc(protected_line(result))}</div>')
    if result.pending:
        parts.append(f"<div>{esc(_(_pending_note(result)))}</div>")
    if result.replaced_port is not None:
        parts.append(f"<div>{esc(_(_REPLACES).format(port=result.replaced_port))}</div>")
    if _platform_message_says_more(result):
        parts.append(f"<div>{label(_PLATFORM_MESSAGE)}{esc(result.error_msg)}</div>")
    if result.output:
        # Open while nothing answers: the reason a command failed at once is in its output.
        opened = " open" if result.pending else ""
        parts.append(
            f"<details{opened}><summary>{esc(_(_COMMAND_OUTPUT))}</summary>"
            f'<pre style="max-height:20em;overflow:auto">{esc(clip(result.output))}</pre>'
            "</details>"
        )
    return box(result.status, "".join(parts))


@terminal_safe
def start_text(result: StartResult) -> str:
    lines = [_headline(result)]
    if result.url:
        lines.append(f"  {label(_URL, html=False)}{result.url}")
    if result.protected:
        lines.append(f"  {protected_line(result)}")
    if result.pending:
        lines.append(f"  {_(_pending_note(result))}")
    if result.replaced_port is not None:
        lines.append(f"  {_(_REPLACES).format(port=result.replaced_port)}")
    if _platform_message_says_more(result):
        lines.append(f"  {label(_PLATFORM_MESSAGE, html=False)}{result.error_msg}")
    if result.output:
        lines.append(f"  {_(_OUTPUT)}")
        lines.extend(f"    {line}" for line in clip(result.output).splitlines())
    return "\n".join(lines)


def protected_line(result: StartResult) -> str:
    """The one line a protected start adds: the URL asks for a password (``--protect``)."""
    return "\N{LOCK} " + _(
        "asks for a password first: a guard passes visitors to port {port} (the guard's own "
        "port: {guard_port})"
    ).format(port=result.port, guard_port=result.guard_port)


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
# The cell that showed each result, by the result's id: kept here, since results are
# immutable. The weak reference tells the result from a later one given the same id.
_shown_in: dict[int, tuple[weakref.ref[Shown], int | None]] = {}


def _remember_shown(result: Shown, cell: int | None) -> None:
    key = id(result)
    # Forgotten when the result goes: its id may then be given to another object.
    _shown_in[key] = (weakref.ref(result, lambda _gone: _shown_in.pop(key, None)), cell)


def _cell_that_showed(result: Shown) -> int | None:
    found = _shown_in.pop(id(result), None)
    if found is None or found[0]() is not result:
        return None
    return found[1]


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
    if handle is None and not now and prints_only(shell) and _in_a_cell(shell):
        _deferred[id(result)] = result
        callbacks = shell.events.callbacks["post_run_cell"]
        if _show_deferred not in callbacks:
            shell.events.register("post_run_cell", _show_deferred)
        return
    _remember_shown(result, shell.execution_count if shell is not None else None)
    if handle is None:
        display(result._repr_mimebundle_(), raw=True)
    else:
        handle.update(result._repr_mimebundle_(), raw=True)


def _in_a_cell(shell: Any) -> bool:
    # IPython hands the displayhook the cell's ExecutionResult while a cell runs, and only
    # then: a magic called from code outside any cell has no end of cell to wait for.
    return getattr(getattr(shell, "displayhook", None), "exec_result", None) is not None


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
    shown_in = _cell_that_showed(result)
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
    html = box("starting", f"<div>{esc(line)}</div>")
    handle: DisplayHandle = display(
        {"text/plain": line, "text/html": html}, raw=True, display_id=True
    )
    return handle


def close_starting(handle: DisplayHandle) -> None:
    """Empty the "Starting…" display once the answer came (the answer is shown after it)."""
    handle.update({"text/plain": "", "text/html": ""}, raw=True)


class ProgressLine:
    """One status line on ``stream``, rewritten in place on a terminal (``\r``); elsewhere one
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

    def update(self, check: WaitProgress) -> None:
        self._write(waiting_text(self.url, self.timeout, check), always=False)

    def follow(self, progress: StartProgress) -> None:
        """The service's progress callback (``on_progress``): the wait begins, or a check was
        not ready."""
        if progress.check is None:
            self.begin(progress.result.url or _("the service"))
        else:
            self.update(progress.check)

    def boot(self, notebook_id: str, progress: InstanceProgress | None) -> None:
        """The instance's status while the start boots it (``on_boot``, with the notebook id
        bound): the boot sent (None), then each status seen."""
        status = progress.status if progress is not None else None
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


@terminal_safe
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


@terminal_safe
def service_url_text(service: ServiceUrl) -> str:
    state = status_name(service.status) or _("unknown")
    where = service.url or _("no address yet")
    text = _("Custom service of notebook {notebook_id}: {state}, {url}").format(
        notebook_id=service.notebook_id, state=state, url=where
    )
    if service.instance is not None:
        text += "\n  " + instance_line(service.instance)
    return text


def service_url_html(service: ServiceUrl) -> str:
    kind = "ok" if service.active else "pending" if service.url else "info"
    state = esc(status_name(service.status) or _("unknown"))
    title = label(_SERVICE_OF).format(notebook_id=esc(service.notebook_id))
    inner = f"<div>{title}<b>{state}</b></div>"
    if service.url:
        inner += f"<div>{label(_EXTERNAL_URL)}{link_html(service.url)}</div>"
    else:
        inner += f"<div>{esc(_(_NO_ADDRESS))}</div>"
    if service.instance is not None:
        inner += f"<div>{esc(instance_line(service.instance))}</div>"
    return box(kind, inner)
