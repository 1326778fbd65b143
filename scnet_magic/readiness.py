"""Waiting until a started service answers through its external URL.

The platform answers a start request before a slow service (an image-generation web UI loads
for minutes) listens, and its gateway answers 502/503/504 until then. So "ready" means: an HTTP
GET to the external URL connects and gets any status other than a gateway error. A 500 or a
redirect is an answer from the service itself, so it counts as up.

The URL is polled with a growing interval (first check at once, then after 0.25 s, the
interval growing to 2 s), each check with its own short timeout. Nothing here touches the start
request, so waiting cannot start the service twice; the token is never sent to the service.

A notebook's kernel usually runs inside the instance, where the service listens: so, given the
port, the wait also tries a TCP connection to ``127.0.0.1:PORT`` every 0.1 s between checks,
and the first time it is accepted, checks the external URL at once instead of at the next
interval. A local hit only
brings that check forward: ready still means an external answer, so a kernel elsewhere that
happens to have another service on that port is never fooled, and it costs at most one extra
external check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urljoin

from .config import DEFAULT_WAIT
from .errors import CommandEnded, GuardUnreachable, NotReady
from .i18n import N_, Message, _
from .local import Ended, listening, log_file_of
from .models import GATEWAY_ERRORS, Probe, Readiness, WaitProgress
from .polling import Look, growing_intervals, poll
from .transport import HttpTransport
from .validation import validate_wait_url

__all__ = [
    "GATEWAY_ERRORS",
    "GuardCheck",
    "Probe",
    "Readiness",
    "WaitProgress",
    "wait_until_ready",
]
DEFAULT_TIMEOUT = DEFAULT_WAIT
FIRST_INTERVAL = 0.25
MAX_INTERVAL = 2.0
GROWTH = 1.5
PROBE_TIMEOUT = 5.0
# A check never waits less than this, even right at the deadline, so that the last check can
# still connect.
MIN_PROBE_TIMEOUT = 0.5
LOCAL_INTERVAL = 0.1  # between tries of 127.0.0.1:PORT: a connect on loopback costs little


class _LocalWatch:
    """``127.0.0.1:port``, tried while the wait sleeps between checks: the first time it
    accepts, the next check comes at once."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.accepted = False

    def sleep_until(self, moment: float, _last_check: float) -> None:
        while (remaining := moment - time.monotonic()) > 0:
            tried_at = time.monotonic()
            if not self.accepted and listening(self.port, min(remaining, LOCAL_INTERVAL)):
                self.accepted = True
                return
            time.sleep(max(0.0, min(moment, tried_at + LOCAL_INTERVAL) - time.monotonic()))


def check_intervals() -> Iterator[float]:
    """Seconds between the starts of successive checks: 0.25, growing by half each time, to 2."""
    return growing_intervals(FIRST_INTERVAL, MAX_INTERVAL, GROWTH)


def not_ready_hint(command: str | None = None, port: int | None = None) -> str:
    """What to look at when the service does not come up: its log, else its output and port."""
    log_file = log_file_of(command)
    if log_file:
        return _(
            "The service may still be loading, or it failed: look at its log, {log_file}, "
            "in the instance."
        ).format(log_file=log_file)
    if command and port is not None:
        return _(
            "The service may still be loading, or it failed: look at its output (end the "
            "command with '> service.log 2>&1' to keep it in a file) and check that it listens "
            "on port {port} on 0.0.0.0."
        ).format(port=port)
    if command:
        return _(
            "The service may still be loading, or it failed: look at its output (end the "
            "command with '> service.log 2>&1' to keep it in a file) and check that it listens "
            "on 0.0.0.0."
        )
    if port is not None:
        return _(
            "No command was given: check that a service listens on port {port} on 0.0.0.0."
        ).format(port=port)
    return _("The service may still be loading, or it failed: look at its log in the instance.")


def wait_until_ready(
    url: str,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    on_progress: Callable[[WaitProgress], None] | None = None,
    since: float | None = None,
    hint: str | None = None,
    probe_timeout: float = PROBE_TIMEOUT,
    guard: GuardCheck | None = None,
    local_port: int | None = None,
    ended: Callable[[], Ended | None] | None = None,
) -> Readiness:
    """Poll ``url`` until the service answers, or raise :class:`NotReady` after ``timeout`` s.

    ``since`` is the ``time.monotonic()`` from which elapsed time and the timeout count
    (the moment the start request was sent, when the caller knows it); default: now. At least
    one check is made even when that moment is long past. ``on_progress`` is called after every
    check that was not ready; an exception it raises (KeyboardInterrupt from a stop button, for
    one) ends the wait and propagates. ``hint`` goes into the NotReady error. ``local_port``:
    also watch ``127.0.0.1:local_port`` and check the URL the moment it accepts (see above).
    With ``guard`` (``--protect``), the guard's status page is polled instead, and only this
    guard's answer counts (see :func:`check_guard`). ``ended`` (a
    :meth:`~scnet_magic.local.CommandWatch.ended`) is asked after each check that was not
    ready: when it shows that the command has ended and the local port does not accept,
    nothing will come, and :class:`CommandEnded` says so without waiting out ``timeout``.
    """
    url = validate_wait_url(url)
    watch = _LocalWatch(local_port) if local_port is not None else None
    probes: list[Probe] = []  # the last one says why the service was not ready

    def check(look: Look) -> Readiness | None:
        seconds = min(probe_timeout, max(look.remaining(), MIN_PROBE_TIMEOUT))
        if guard is None:
            probes.append(Probe(*transport.probe(url, seconds)))
        else:
            probes.append(check_guard(transport, url, seconds, guard))
        status = probes[-1].status
        if probes[-1].ready and status is not None:
            return Readiness(url, look.elapsed(), look.number, status)
        return None

    def report(look: Look) -> None:
        gone = ended() if ended is not None else None
        if gone is not None and not (local_port is not None and listening(local_port)):
            raise CommandEnded(url, timeout, look.elapsed(), gone.log, gone.last_lines)
        if on_progress is not None:
            on_progress(WaitProgress(url, look.elapsed(), timeout, look.number, probes[-1]))

    # One attempt per check and no retries inside it: the polling loop is the retry.
    with HttpTransport(probe_timeout, retries=0, purpose="readiness check") as transport:
        return poll(
            check,
            timeout,
            check_intervals(),
            since=since,
            expired=lambda _look: NotReady(
                url, timeout, probes[-1].reason, hint or not_ready_hint()
            ),
            waiting=report,
            sleep_until=watch.sleep_until if watch is not None else None,
        )


# -- through a guard (--protect) -----------------------------------------------------------

NOT_THIS_GUARD = N_(
    "the external URL does not reach this machine's guard: --protect works from a kernel "
    "running inside the instance"
)


@dataclass(frozen=True)
class GuardCheck:
    """How to recognise the guard a front end started: it signs every answer with its id."""

    guard_id: str
    header: str  # the header carrying the id (``X-Scnet-Guard``)
    status_path: str  # its status page, answered without a password: 200 once the service is up


def check_guard(transport: HttpTransport, url: str, timeout: float, guard: GuardCheck) -> Probe:
    """One check of the guard's status page through the external URL.

    Ready when this guard says the service is up. A gateway error or no answer is "not yet".
    Any other answer means the URL leads elsewhere: to another guard (its id differs), or to
    something that is no guard at all. The platform exposes the guard's port in the instance,
    so the guard this front end started is not there: raises :class:`GuardUnreachable`.
    """
    status, reason, signed = transport.probe_header(
        urljoin(url, guard.status_path), timeout, guard.header
    )
    if signed == guard.guard_id:
        if status == 200:
            return Probe(status, reason)
        return Probe(
            None,
            _("the guard answers, the service behind it not yet ({reason})").format(reason=reason),
        )
    if signed is None and (status is None or status in GATEWAY_ERRORS):
        return Probe(status, reason)
    what = N_("another guard") if signed is not None else N_("something that is not a guard")
    raise GuardUnreachable(
        NOT_THIS_GUARD,
        N_("{url} was answered by {what} ({reason})."),
        url=url,
        what=Message(what),
        reason=reason,
    )
