"""What ``%scnet_start`` shows while the one start runs: "Starting…", the instance's status
while it boots, the result, the wait updated in place (or, in a terminal, one line rewritten
with "\\r" for all of these but the result), and the result again once ready."""

from __future__ import annotations

import functools
import sys
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from ..errors import ScnetError
from ..i18n import N_, _
from . import instance

if TYPE_CHECKING:
    from ..client import ScnetClient
    from ..models import StartResult
    from ..service import Progress

INTERRUPTED_IN_FLIGHT = N_(
    "Interrupted while the start request was in flight: it may already have run. Check with "
    "%scnet_url before starting again (a second start runs the command twice)."
)


def run_start(
    magics: Any,
    client: ScnetClient,
    request: Any,
    wait: float | None,
    protect: str | None = None,
    *,
    boot: bool = False,
) -> StartResult:
    """Say the start is in flight, send it, show the result; with ``wait``, update the
    result in place until ready. In a terminal, which cannot update a display, one line
    rewritten with "\\r" says how things stand and the result is printed once.

    Interrupting the kernel stops the wait quietly and returns the result as it was.
    """
    from .. import display, service

    terminal = display.prints_only(magics.shell)
    line = display.ProgressLine(sys.stdout, wait or 0) if terminal else None
    starting: Any = None
    handle: Any = None
    shown: list[StartResult] = []
    # A display updated through its handle in a kernel; the terminal's one line otherwise (its
    # display publisher would print every update anew).
    booting = instance.BootDisplay(request.notebook_id) if boot and line is None else None
    if line is not None:
        line.note(display.starting_text(request.notebook_id, request.port))
    else:
        starting = display.open_starting(request.notebook_id, request.port)

    def done_starting() -> None:
        if line is not None:
            line.end()
        elif starting is not None:
            display.close_starting(starting)

    def on_started(result: StartResult) -> None:
        if booting is not None:
            booting.done()
        nonlocal handle
        shown.append(result)
        done_starting()
        if line is None:
            # A display of its own rather than an update of "Starting…": nbval and
            # other readers of saved notebooks do not apply updates.
            if wait is None:
                display.show(result)
            else:
                handle = display.open_waiting(result, wait)

    def on_progress(progress: Progress) -> None:
        if line is not None:
            line.follow(progress)
        elif handle is not None and progress.check is not None:
            bundle = display.waiting_bundle(progress.result, wait or 0, progress.check)
            handle.update(bundle, raw=True)

    def show_final(result: StartResult, *, now: bool = False) -> None:
        if line is not None:
            line.end()
        display.show(result, handle, now=now)

    on_boot = functools.partial(line.boot, request.notebook_id) if line is not None else booting
    try:
        with magics.user_errors():
            final = service.start(
                request,
                client,
                wait=wait,
                on_started=on_started,
                on_progress=on_progress,
                protect=protect,
                boot=boot,
                on_boot=on_boot,
                boot_hint=instance.BOOT_HINT,
            )
    except KeyboardInterrupt:
        if not shown:
            done_starting()
            raise UsageError(_(INTERRUPTED_IN_FLIGHT)) from None
        show_final(shown[0])
        print(_("Stopped waiting; the service may still be starting."))
        return shown[0]
    except (UsageError, ScnetError):
        if not shown:
            done_starting()
        elif line is not None or handle is not None:
            show_final(shown[0], now=True)  # it did start: keep the result and URL on screen
        raise
    if line is not None or handle is not None:
        show_final(final)
    return final
