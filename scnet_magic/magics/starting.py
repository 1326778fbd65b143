"""What ``%scnet_start`` shows while the one start runs: "Starting…", the instance's status
while it boots, the result, the wait updated in place (or, in a terminal, one line rewritten
with "\\r" for all of these but the result), and the result again once ready."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .. import display, service

if TYPE_CHECKING:
    from ..models import InstanceProgress, StartResult
    from ..validation import StartRequest


class StartDisplay(service.StartObserver):
    """The start as a notebook shows it: displays updated through their handles."""

    boot_hint = service.BOOT_OPTION_HINT
    guard_command = "%scnet_guard"  # the notebook's way: no scnet command on its PATH

    def __init__(self, request: StartRequest, wait: float | None, boot: bool, now: bool) -> None:
        self.wait = wait
        self.now = now  # show the result at once: IPython will not print it (see base.show)
        self.request = request
        self.handle: Any = None  # the result, updated while it waits
        self.boot: Any = None  # the instance's status while it boots
        self.name = ""  # the instance's, once a look at it gave it
        self.starting: Any = None
        if not boot:
            self.sending()

    def sending(self) -> None:
        if self.starting is None:
            # After a boot: the service's start is on its way only now, below the boot's lines.
            line = display.starting_text(self.request.notebook_id, self.request.port)
            self.starting = display.open_display(display.card_bundle("starting", line))

    def booting(self, progress: InstanceProgress | None) -> None:
        self.name = progress.name if progress is not None else self.name
        self._boot_line(display.instance_waiting_text(progress, self.request.notebook_id))

    def _boot_line(self, line: str) -> None:
        bundle = display.card_bundle("info", line)
        if self.boot is None:
            self.boot = display.open_display(bundle)
        else:
            self.boot.update(bundle, raw=True)

    def started(self, result: StartResult) -> None:
        if self.boot is not None:
            # The instance runs: said in place of its progress.
            self._boot_line(display.instance_running_text(self.name, self.request.notebook_id))
        self.done_starting()
        # A display of its own rather than an update of "Starting…": nbval and other readers
        # of saved notebooks do not apply updates.
        if self.wait is None:
            display.show(result, now=self.now)
        else:
            self.handle = display.open_display(display.waiting_bundle(result, self.wait, None))

    def waiting(self, progress: service.Progress) -> None:
        if self.handle is not None and progress.check is not None:
            bundle = display.waiting_bundle(progress.result, self.wait or 0, progress.check)
            self.handle.update(bundle, raw=True)

    def done_starting(self) -> None:
        if self.starting is not None:
            # Emptied once the answer came (the answer is shown after it).
            self.starting.update({"text/plain": "", "text/html": ""}, raw=True)
            self.starting = None

    def final(self, result: StartResult, *, now: bool = False, note: str = "") -> None:
        """The result in place of the wait, with ``note`` as its last line."""
        if self.handle is None and not note:
            return  # shown when it came, and nothing since
        display.show(
            result, self.handle, now=now or self.now, bundle=display.start_bundle(result, note)
        )


class StartLine(service.StartLine):
    """The start as a terminal IPython shows it: one line rewritten with "\\r" (its display
    publisher would print every update anew), then the result printed once."""

    guard_command = StartDisplay.guard_command

    def __init__(self, request: StartRequest, wait: float | None, now: bool) -> None:
        super().__init__(sys.stdout, request, wait)
        self.now = now

    def done_starting(self) -> None:
        self.line.end()

    def final(self, result: StartResult, *, now: bool = False, note: str = "") -> None:
        self.line.end()
        display.show(result, now=now or self.now, bundle=display.start_bundle(result, note))
