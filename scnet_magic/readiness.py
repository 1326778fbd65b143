"""Waiting until a started service answers through its external URL.

The platform answers a start before a slow service listens, and its gateway answers
502/503/504 until then. So "ready" means: a GET to the external URL gets any other status (a
500 or a redirect comes from the service itself). The URL is polled at a growing interval;
nothing here touches the start request, and the token is never sent to the service.

A kernel inside the instance can also try ``127.0.0.1:PORT`` between checks: the first time it
accepts, the external URL is checked at once. Ready still means an external answer, so a
kernel elsewhere with another service on that port is never fooled.
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

FIRST_INTERVAL = 0.25
MAX_INTERVAL = 2.0
GROWTH = 1.5
PROBE_TIMEOUT = 5.0
# Even right at the deadline, so that the last check can still connect.
MIN_PROBE_TIMEOUT = 0.5
LOCAL_INTERVAL = 0.1  # between tries of 127.0.0.1:PORT: a connect on loopback costs little


class _LocalWatch:
    """``127.0.0.1:port``, tried between checks: the first time it accepts, the next check
    comes at once."""

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
    """Seconds between the starts of checks: 0.25, growing by half each time, to 2."""
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
    timeout: float = DEFAULT_WAIT,
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

    ``since``: the ``time.monotonic()`` the clock counts from (default now); at least one
    check is made. ``on_progress`` is called after every check that was not ready; an
    exception it raises ends the wait. ``local_port``: watched as the module says. ``guard``
    (``--protect``): poll the guard's status page, and only this guard's answer counts.
    ``ended`` (:meth:`~scnet_magic.local.CommandWatch.ended`) is asked after each failed
    check: a command that ended, with nothing on the local port, raises :class:`CommandEnded`.
    """
    url = validate_wait_url(url)
    watch = _LocalWatch(local_port) if local_port is not None else None
    probes: list[Probe] = []  # the last one says why the service was not ready

    def check(look: Look) -> Readiness | None:
        seconds = min(probe_timeout, max(look.remaining(), MIN_PROBE_TIMEOUT))
        if guard is None:
            probes.append(Probe(*transport.probe(url, seconds)[:2]))
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
    """How to recognise the guard a front end started: it signs every answer with its id
    (``header``); its status page answers 200, without a password, once the service is up."""

    guard_id: str
    header: str
    status_path: str


def check_guard(transport: HttpTransport, url: str, timeout: float, guard: GuardCheck) -> Probe:
    """One check of the guard's status page through the external URL: ready when this guard
    says the service is up; a gateway error or no answer is "not yet"; any other answer (from
    another guard, or no guard) means the URL leads elsewhere (:class:`GuardUnreachable`)."""
    status, reason, signed = transport.probe(urljoin(url, guard.status_path), timeout, guard.header)
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
