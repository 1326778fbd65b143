"""Starting a service: the one use case the magic, the form and the ``scnet`` command share.

Each front end parses its own input, resolves the settings once (:func:`config.resolve`) and
hands over here: :func:`prepare` checks the request once (and takes the default notebook id),
:func:`start` sends the one start request and, when asked, waits until the external URL
answers, telling the front end what happens through callbacks so that each can show it its own
way (a display updated in place, a widget, a line on a terminal). Nothing here prints or
renders, and the start request is never sent twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .client import ScnetClient
from .config import Settings
from .errors import InvalidInput
from .i18n import N_
from .models import StartResult, WaitProgress
from .validation import StartRequest, start_request

__all__ = ["Progress", "prepare", "start", "wait"]

NO_NOTEBOOK_ID_HINT = N_("Give --id, or set %config ScnetMagics.notebook_id or SCNET_NOTEBOOK_ID.")


@dataclass(frozen=True)
class Progress:
    """What a front end is told while a start runs: the result so far, and the last check."""

    result: StartResult
    timeout: float
    check: WaitProgress | None = None  # None: the wait has just begun


def prepare(
    settings: Settings,
    notebook_id: object,
    port: object,
    command: object = None,
    *,
    no_id_hint: str = NO_NOTEBOOK_ID_HINT,
) -> StartRequest:
    """The checked request, the notebook id defaulting to the settings' (``no_id_hint`` says
    how to give one in the caller's terms); nothing is sent."""
    if port is None:
        raise InvalidInput(N_("--port is required"), N_("Give the port the service listens on."))
    if notebook_id is None:
        if settings.notebook_id is None:
            raise InvalidInput(N_("no notebook id"), no_id_hint)
        notebook_id = settings.notebook_id
    return start_request(notebook_id, port, command)


def start(
    request: StartRequest,
    client: ScnetClient,
    *,
    wait: float | None = None,
    on_started: Callable[[StartResult], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> StartResult:
    """Send ``request`` once; with ``wait`` seconds, then wait until the external URL answers.

    ``on_started`` gets the platform's answer as soon as it comes (show it: the URL is useful
    even if the wait fails); ``on_progress`` is called when the wait begins and after every
    check that was not ready. Returns the result, marked ready after a successful wait. A wait
    that runs out raises :class:`~scnet_magic.errors.NotReady`; an exception raised by a
    callback (a stop button, Ctrl-C) ends the wait and propagates. Neither re-sends the start.
    """
    started = time.monotonic()
    result = client.send_start(request)
    if on_started is not None:
        on_started(result)
    if wait is None or result.url is None or result.code != "0":
        return result
    return _wait(client, result, wait, since=started, on_progress=on_progress)


def wait(
    client: ScnetClient,
    result: StartResult,
    timeout: float,
    *,
    on_progress: Callable[[Progress], None] | None = None,
) -> StartResult:
    """Wait until ``result``'s external URL answers; the result marked ready (``.ready``)."""
    return _wait(client, result, timeout, since=None, on_progress=on_progress)


def _wait(
    client: ScnetClient,
    result: StartResult,
    timeout: float,
    *,
    since: float | None,
    on_progress: Callable[[Progress], None] | None,
) -> StartResult:
    def report(check: WaitProgress) -> None:
        if on_progress is not None:
            on_progress(Progress(result, timeout, check))

    if on_progress is not None:
        on_progress(Progress(result, timeout))
    ready = client.wait_until_ready(result, timeout, since=since, on_progress=report)
    return ready.result or result.marked_ready(ready.elapsed)
