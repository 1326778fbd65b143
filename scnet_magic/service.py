"""Starting a service: the one use case the magic, the form and the ``scnet`` command share.

Each front end parses its own input, resolves the settings once (:func:`config.resolve`) and
hands over here: :func:`prepare` checks the request once (and takes the default notebook id),
:func:`start` sends the one start request and, when asked, waits until the external URL
answers, telling the front end what happens through callbacks so that each can show it its own
way (a display updated in place, a widget, a line on a terminal). Nothing here prints or
renders, and the start request is never sent twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from . import config, guard
from .client import ScnetClient
from .config import Settings
from .errors import ConfigError, GuardFailed, GuardUnreachable, InvalidInput
from .i18n import N_, _
from .models import StartResult, WaitProgress
from .readiness import GuardCheck
from .validation import Secret, StartRequest, start_request, validate_guard_password

__all__ = [
    "PASSWORD_ENV",
    "Progress",
    "guard_password",
    "prepare",
    "protect_port",
    "start",
    "start_service",
    "wait",
]

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
    protect: str | None = None,
) -> StartResult:
    """Send ``request`` once; with ``wait`` seconds, then wait until the external URL answers.

    With ``protect`` (a password), a guard asking for it is put in front of the request's
    port first (:func:`protect_port`) and the platform is asked to expose the guard's port
    instead; the command is sent as it is. The result records it (``.protected``).

    ``on_started`` gets the platform's answer as soon as it comes (show it: the URL is useful
    even if the wait fails); ``on_progress`` is called when the wait begins and after every
    check that was not ready. Returns the result, marked ready after a successful wait. A wait
    that runs out raises :class:`~scnet_magic.errors.NotReady`; an exception raised by a
    callback (a stop button, Ctrl-C) ends the wait and propagates. Neither re-sends the start.
    """
    record = protect_port(request.port, protect) if protect is not None else None
    started = time.monotonic()
    if record is None:
        result = client.send_start(request)
    else:
        result = _send_guarded(client, request, record)
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
    check = None
    if result.guard_id is not None:
        check = GuardCheck(result.guard_id, guard.GUARD_HEADER, guard.STATUS_PATH)
    try:
        ready = client.wait_until_ready(
            result, timeout, since=since, on_progress=report, guard=check
        )
    except GuardUnreachable:
        # The guard runs where nobody can reach it through the URL: it only holds a port.
        if result.guard_port is not None:
            guard.stop_guard(result.guard_port)
        raise
    return ready.result or result.marked_ready(ready.elapsed)


# -- --protect: a password in front of the service -----------------------------------------

PASSWORD_ENV = guard.PASSWORD_ENV


def guard_password(ask: Callable[[str], str] | None = None) -> Secret:
    """The password for ``--protect``: ``SCNET_GUARD_PASSWORD``, else asked twice with ``ask``
    (a hidden prompt: :func:`getpass.getpass`). Never taken from an argument a front end
    shows, saves or lists (a magic line, a process's arguments)."""
    given = os.environ.get(PASSWORD_ENV)
    if given is not None:
        return validate_guard_password(given)
    if ask is None:
        raise ConfigError(
            N_("no password for --protect"),
            N_("Set SCNET_GUARD_PASSWORD, or run where a hidden prompt can ask for it."),
        )
    try:
        first = validate_guard_password(ask(_("Password for the service (hidden): ")))
        # A Secret too: a traceback that shows variables would show a plain string.
        again = Secret(ask(_("The same password again: ")))
    except EOFError:
        raise ConfigError(
            N_("no password for --protect, and this front end cannot ask for it"),
            N_("Set SCNET_GUARD_PASSWORD."),
        ) from None
    if again != first:
        raise InvalidInput(N_("the two passwords differ"), N_("Nothing was started; try again."))
    return first


def protect_port(port: int, password: str) -> guard.GuardRecord:
    """Start a guard asking for ``password`` in front of ``127.0.0.1:port``, or reuse the one
    already running there with that password; its record (``.port`` is the port to expose)."""
    checked = validate_guard_password(password)
    try:
        return guard.start_guard(port, checked)
    except guard.GuardError as exc:
        raise GuardFailed(str(exc), N_("See scnet guard --list.")) from None
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _send_guarded(
    client: ScnetClient, request: StartRequest, record: guard.GuardRecord
) -> StartResult:
    """The start with the guard's port exposed; a guard started for a failed start is stopped."""
    try:
        result = client.send_start(replace(request, port=record.port))
    except BaseException:
        if not record.reused:
            guard.stop_guard(record.port)
        raise
    return result.guarded_by(record.port, record.guard_id, request.port)


def start_service(
    notebook_id: str | int | None,
    port: int | str,
    command: str | None = None,
    *,
    protect: str | bool | None = None,
    wait: float | None = None,
    client: ScnetClient | None = None,
) -> StartResult:
    """Start a custom service from Python, optionally behind a password and waiting until ready.

    ``protect``: the password visitors must give (a string: read it with :func:`getpass.getpass`
    rather than writing it in the notebook), or True for ``SCNET_GUARD_PASSWORD``. ``wait``:
    seconds to wait for the external URL to answer (for a protected start: to reach this
    guard, with the service up behind it). ``notebook_id`` None: the default notebook id. The
    client defaults to one made from the settings (``SCNET_TOKEN``, the config file).
    """
    settings = client.settings if client is not None else config.resolve()
    request = prepare(settings, notebook_id, port, command)
    password: str | None = None
    if protect is True:
        password = guard_password()
    elif protect is not None and protect is not False:
        password = validate_guard_password(protect)
    own = client is None
    active = client if client is not None else ScnetClient.from_settings(settings)
    try:
        return start(request, active, wait=wait, protect=password)
    finally:
        if own:
            active.close()
