"""Starting a service: the one use case the magic, the form and the ``scnet`` command share.

A front end resolves the settings once and hands over: :func:`prepare` checks the request,
:func:`start` sends it once (never twice) and, when asked, waits until the external URL
answers, telling a :class:`StartObserver` what happens. A failure or an interruption carries
the platform's answer when it had come. Nothing here prints or renders.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TextIO

from . import config, display, guard, lifecycle, local
from .client import ScnetClient
from .config import Settings
from .errors import (
    ApiError,
    ConfigError,
    GuardFailed,
    GuardUnreachable,
    InvalidInput,
    ScnetError,
    Sentences,
)
from .i18n import N_, Message, _
from .models import (
    InstanceProgress,
    Notebook,
    NotebookList,
    ServiceUrl,
    StartResult,
    WaitProgress,
)
from .readiness import GuardCheck
from .validation import (
    Secret,
    StartRequest,
    start_request,
    validate_guard_password,
    validate_notebook_id,
    validate_timeout,
)

NO_NOTEBOOK_ID_HINT = N_("Give --id, or set %config ScnetMagics.notebook_id or SCNET_NOTEBOOK_ID.")
# With nothing configured (no token either), the way to try things first.
NEWCOMER_HINT = N_("To try things without an account, run %scnet_sandbox --execute.")
_ON_ITS_WAY = ("Creating", "Restarting")
ON_ITS_WAY_HINT = N_(
    "It is on its way to Running: start the service once it runs, or with --boot "
    "(boot=True from Python), which waits for it."
)


@dataclass(frozen=True)
class Progress:
    """The wait so far: the result, and the last check (None as the wait begins)."""

    result: StartResult
    timeout: float
    check: WaitProgress | None = None


def prepare(
    settings: Settings,
    notebook_id: object,
    port: object,
    command: object = None,
    **id_hints: str,
) -> StartRequest:
    """The checked request, the notebook id defaulting to the settings' (``id_hints``: the
    front end's, as :func:`notebook_id_for` takes them); nothing is sent."""
    if port is None:
        raise InvalidInput(N_("--port is required"), N_("Give the port the service listens on."))
    return start_request(notebook_id_for(settings, notebook_id, **id_hints), port, command)


def notebook_id_for(
    settings: Settings,
    given: object,
    *,
    no_id_hint: str = NO_NOTEBOOK_ID_HINT,
    newcomer_hint: str = NEWCOMER_HINT,
) -> str:
    """The notebook id given, else the settings' default, checked. With no token either (a
    newcomer), the error's hint leads to the sandbox."""
    if given is None:
        if settings.notebook_id is None:
            hint = Sentences(no_id_hint, newcomer_hint) if settings.token is None else no_id_hint
            raise InvalidInput(N_("no notebook id"), hint)
        given = settings.notebook_id
    return validate_notebook_id(given)


class StartObserver:
    """What a front end is told while a start runs. Every method does nothing unless
    overridden; one may raise (a stop button, Ctrl-C) to end the start. The hints name the
    front end's own options."""

    boot_hint: str = lifecycle.NOT_RUNNING_HINT
    guard_command: str = "scnet guard"
    replace_hint: str = N_("Add --replace to end it first, or leave out --command to expose it.")

    def booting(self, progress: InstanceProgress | None) -> None:
        """None when the boot is sent, then each status seen."""

    def sending(self) -> None:
        """After the boot and the guard, if any."""

    def started(self, result: StartResult) -> None:
        """The platform's answer, as soon as it comes (the URL helps even if the wait fails)."""

    def waiting(self, progress: Progress) -> None:
        """As the wait begins, then after each failed check."""


class StartInterrupted(KeyboardInterrupt):
    """A start interrupted (Ctrl-C, a stop button). ``result``: the platform's answer, or None
    when it had not come; then the request may have run all the same, unless it was not
    ``sent`` (interrupted during the boot, say)."""

    def __init__(self, result: StartResult | None, sent: bool = True) -> None:
        super().__init__()
        self.result = result
        self.sent = sent


@dataclass
class _Flight:
    """When the start request went out: an interruption before that started nothing."""

    sent_at: float | None = None


def interrupted_text(stopped: StartInterrupted, check: str) -> Message:
    """What an interruption before the platform's answer means; ``check``: how to look."""
    if not stopped.sent:
        return Message(N_("Interrupted before the start request was sent: no service was started."))
    return Message(
        N_(
            "Interrupted while the start request was in flight: it may already have run. Check "
            "with {check} before starting again (a second start runs the command twice)."
        ),
        check=check,
    )


STOPPED_WAITING = N_("Stopped waiting; the service may still be starting.")
# The hint of --boot for the magic and the command, which both take it as an option.
BOOT_OPTION_HINT = N_("Add --boot to start the instance first.")


class StartLine(StartObserver):
    """A start at a terminal, on one line rewritten in place: "Starting…", the boot, the wait."""

    boot_hint = BOOT_OPTION_HINT

    def __init__(self, stream: TextIO, request: StartRequest, wait: float | None) -> None:
        self.line = display.ProgressLine(stream, wait or 0)
        self.notebook_id = request.notebook_id
        self.line.note(display.starting_text(request.notebook_id, request.port))

    def booting(self, progress: InstanceProgress | None) -> None:
        self.line.boot(self.notebook_id, progress)

    def started(self, result: StartResult) -> None:
        self.line.end()  # the "Starting…" or boot line

    def waiting(self, progress: Progress) -> None:
        self.line.follow(progress)


def start(
    request: StartRequest,
    client: ScnetClient,
    *,
    wait: float | None = None,
    boot: bool | float = False,
    protect: str | Callable[[], str] | None = None,
    observer: StartObserver | None = None,
    record: Notebook | None = None,
    replace: bool = False,
) -> StartResult:
    """Send ``request`` once; with ``wait`` seconds, then wait until the external URL answers.

    A command for a port that already accepts here is refused before anything is sent (the
    old process would answer in its place), unless ``replace`` ends it first. ``protect`` (a
    password, or a callable asking for it once the instance is known to run) puts a guard in
    front of the port. ``boot`` boots the instance first unless it runs. ``record``, the
    instance as the caller knows it, lets the result say which port the start replaced.

    A failure carries the platform's answer as ``result`` when it had come; an interruption
    becomes a :class:`StartInterrupted`.
    """
    observer = observer or StartObserver()
    result: StartResult | None = None
    flight = _Flight()
    try:
        if request.command:  # (ending an old process takes seconds: Ctrl-C may come)
            _free_port(request, client, replace, observer.replace_hint)
        result = _send(request, client, boot, protect, observer, record, flight)
        observer.started(result)
        if wait is None or result.url is None or result.code != "0" or result.nothing_ran:
            return result  # (nothing ran: nothing will answer, and the URL leads nowhere)
        assert flight.sent_at is not None
        return _wait(client, result, wait, flight.sent_at, observer)
    except ScnetError as exc:
        exc.result = result
        raise
    except KeyboardInterrupt:
        raise StartInterrupted(result, sent=flight.sent_at is not None) from None


def _free_port(request: StartRequest, client: ScnetClient, replace_old: bool, hint: str) -> None:
    """Where the kernel runs beside the command (the sandbox, or an earlier run of this
    command listens), end the old process on the port when asked, else refuse."""
    port = request.port
    if not local.listening(port):
        return
    assert request.command is not None
    beside = local.sandbox_token(client.settings.token) or local.run_of(port, request.command)
    if not beside:
        return
    if replace_old:
        local.end_listeners(port)
        if not local.listening(port):
            return
        hint = N_(
            "It could not be ended (another user's process, or the notebook's own server): "
            "choose another port."
        )
    raise InvalidInput(
        N_(
            "port {port} is already in use on this machine{process}: the new command would "
            "fail and the URL would show the old service"
        ),
        hint,
        port=port,
        process=local.who_listens(port),
    )


def _send(
    request: StartRequest,
    client: ScnetClient,
    boot: bool | float,
    protect: str | Callable[[], str] | None,
    observer: StartObserver,
    record: Notebook | None,
    flight: _Flight,
) -> StartResult:
    """The one start request, after a boot and behind a guard as asked."""
    if boot:
        limit = lifecycle.DEFAULT_INSTANCE_TIMEOUT if boot is True else float(boot)
        record = _boot_if_stopped(client, request.notebook_id, observer, limit)
    elif callable(protect):
        record = _running(client, request.notebook_id, observer.boot_hint)
    if callable(protect):
        protect = protect()
    guarding = None
    if protect is not None:
        # A guard for a sandbox's service ends with the sandbox, as the service does.
        guarding = protect_port(
            request.port,
            protect,
            guard_command=observer.guard_command,
            ends_with=local.serving_process(client.settings.base_url)
            if local.sandbox_token(client.settings.token)
            else None,
        )
    observer.sending()
    flight.sent_at = time.monotonic()
    try:
        if guarding is None:
            result = client.send_start(request)
        else:
            result = _send_guarded(client, request, guarding)
    except ApiError as exc:
        if boot:
            raise
        raise (
            _stopped_instance(client, exc, request.notebook_id, observer.boot_hint) or exc
        ) from None
    # Ports the user knows: a guard's port stands for the service behind it.
    old_port = user_port(record.custom_port) if record is not None else None
    if old_port not in (None, request.port):
        result = replace(result, replaced_port=old_port)
    # A sandbox (on this machine) giving a URL elsewhere is one without execution: it answers
    # with the platform's example address and runs no command.
    if (
        result.url is not None
        and local.sandbox_token(client.settings.token)
        and not local.runs_here(result.url)
    ):
        result = replace(result, nothing_ran=True)
    return result


def _wait(
    client: ScnetClient, result: StartResult, timeout: float, since: float, observer: StartObserver
) -> StartResult:
    # The wait's seconds count from the platform's answer (now), the result's ready_after
    # from the start request.
    before = time.monotonic() - since

    def report(check: WaitProgress) -> None:
        observer.waiting(Progress(result, timeout, check))

    observer.waiting(Progress(result, timeout))
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
    # Given a StartResult, the client's wait returns it marked ready.
    assert ready.result is not None
    return ready.result.marked_ready(ready.elapsed + before)


# -- --protect: a password in front of the service -----------------------------------------

PASSWORD_ENV = guard.PASSWORD_ENV


def guard_password(
    ask: Callable[[str], str] | None = None,
    *,
    no_password: str = N_("no password for --protect"),
    no_password_hint: str = N_(
        "Set SCNET_GUARD_PASSWORD, or run where a hidden prompt can ask for it."
    ),
) -> Secret:
    """The password for ``--protect``: ``SCNET_GUARD_PASSWORD``, else asked twice with ``ask``
    (a hidden prompt); never an argument a front end shows, saves or lists."""
    given = os.environ.get(PASSWORD_ENV)
    if given is not None:
        return validate_guard_password(given)
    if ask is None:
        raise ConfigError(no_password, no_password_hint)
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


def password_for(
    ask: Callable[[str], str] | None, **messages: str
) -> Secret | Callable[[], Secret]:
    """The password for ``--protect`` now when nothing is typed for it (so that a bad one is
    refused before anything is sent); else how to ask for it, which :func:`start` calls once
    the instance is known to run."""
    if ask is None or os.environ.get(PASSWORD_ENV) is not None:
        return guard_password(ask, **messages)
    return lambda: guard_password(ask, **messages)


def user_port(port: int | None, guarded: dict[int, int] | None = None) -> int | None:
    """The port of the user's service behind the custom ``port``: the one a guard of this
    machine there passes visitors to (or did, and ended), else ``port``. ``guarded``:
    :func:`guard.guarded_ports`, read once for many ports."""
    if port is None:
        return None
    return (guard.guarded_ports() if guarded is None else guarded).get(port, port)


def protect_port(
    port: int,
    password: str,
    *,
    host: str = "0.0.0.0",
    listen_port: int = 0,
    guard_command: str = "scnet guard",
    ends_with: int | None = None,
) -> guard.GuardRecord:
    """A guard asking for ``password`` in front of ``127.0.0.1:port``: started, or the one
    running there with that password. ``ends_with``: a process whose end ends it."""
    try:
        return guard.start_guard(port, password, host=host, port=listen_port, ends_with=ends_with)
    except (guard.GuardError, OSError) as exc:
        existing = guard.find_guard(port)
        if isinstance(exc, guard.GuardError) and existing is not None:
            raise GuardFailed(
                N_("port {upstream} is already guarded on port {port} with another password"),
                N_("Stop that guard first: {command} --stop {port}."),
                upstream=port,
                port=existing.port,
                command=guard_command,
            ) from None
        problem = exc.args[0] if isinstance(exc, guard.GuardError) else Message(str(exc))
        raise GuardFailed(problem, N_("See {command} --list."), command=guard_command) from None


def _send_guarded(
    client: ScnetClient, request: StartRequest, record: guard.GuardRecord
) -> StartResult:
    """The start with the guard's port exposed; a guard started for a failed start is stopped."""
    try:
        answer = client.send_start(replace(request, port=record.port))
    except BaseException:
        if not record.reused:
            guard.stop_guard(record.port)
        raise
    result = answer.guarded_by(record.port, record.guard_id, request.port)
    # The guard's port always accepts, so the platform's "up" says nothing: the service is up
    # only when its own port accepts here.
    if result.ok and not local.listening(result.port):
        return replace(result, exec_success=False)
    return result


def start_service(
    notebook_id: str | int | None,
    port: int | str,
    command: str | None = None,
    *,
    wait: float | None = None,
    boot: bool | float = False,
    protect: str | bool | None = None,
    client: ScnetClient | None = None,
    replace: bool = False,
) -> StartResult:
    """Start a custom service from Python: the one call that does what ``%scnet_start`` does.

    The start request is sent once, never repeated. ``wait``: seconds to wait for the external
    URL to answer; running out raises :class:`~scnet_magic.NotReady`, whose ``result`` is the
    platform's answer. ``boot``: start the instance first if it is not running, waiting up to
    600 s (or as many seconds as ``boot`` says). ``protect``: the password visitors must give
    (read it with :func:`getpass.getpass`), or True for ``SCNET_GUARD_PASSWORD``. ``replace``:
    end what already listens on the port on this machine first (else such a start is refused).
    ``notebook_id`` None: the default notebook id.
    """
    settings = client.settings if client is not None else config.resolve()
    request = prepare(settings, notebook_id, port, command)
    if not isinstance(boot, bool):
        boot = validate_timeout(boot)
    password: str | None = None
    if protect is True:
        password = guard_password()
    elif protect is not None and protect is not False:
        password = validate_guard_password(protect)
    observer = StartObserver()
    # In IPython (looked up, not imported) the user has the magics.
    ipython = sys.modules.get("IPython")
    if ipython is not None and ipython.get_ipython() is not None:
        observer.guard_command = "%scnet_guard"
    active = client or ScnetClient(settings=settings)
    try:
        return start(
            request,
            active,
            wait=wait,
            boot=boot,
            protect=password,
            replace=replace,
            observer=observer,
        )
    finally:
        if client is None:
            active.close()


def service_url(client: ScnetClient, notebook_id: str) -> ServiceUrl:
    """The custom service's address, with the instance around it when its detail answers."""
    found = client.service_url(notebook_id)
    try:
        return replace(found, instance=with_user_port(client.notebook(found.notebook_id)))
    except ScnetError:
        return found


def with_user_port(notebook: Notebook, guarded: dict[int, int] | None = None) -> Notebook:
    """The record, with the port of the user's service when a guard of this machine listens
    on its custom port (``--protect``)."""
    port = user_port(notebook.custom_port, guarded)
    return notebook if port == notebook.custom_port else replace(notebook, user_port=port)


def notebooks(
    client: ScnetClient, status: str | None = None, name: str | None = None
) -> NotebookList:
    """The instances (all pages), each with its user's port as :func:`with_user_port`."""
    records = client.list_notebooks(status=status, name=name)
    guarded = guard.guarded_ports()  # read once, not once an instance
    return NotebookList(with_user_port(record, guarded) for record in records)


def _boot_if_stopped(
    client: ScnetClient, notebook_id: str, observer: StartObserver, timeout: float
) -> Notebook:
    """Boot the instance unless it runs, and follow it to ``Running`` for up to ``timeout``
    seconds; its record then."""
    started = time.monotonic()
    record = client.notebook(notebook_id)
    if record.running:
        return record
    if record.status == "Shutting":
        # A boot sent while it shuts down would be refused: let it finish first.
        client.wait_for_notebook(
            notebook_id, "Terminated", timeout, on_progress=observer.booting, since=started
        )
    if record.status not in _ON_ITS_WAY:
        observer.booting(None)
        # Sent once: booting is not repeated automatically, whatever happens next.
        client.boot_notebook(notebook_id)
    return client.wait_for_notebook(
        notebook_id, "Running", timeout, on_progress=observer.booting, since=started
    )


def _running(client: ScnetClient, notebook_id: str, hint: str) -> Notebook:
    """The instance's record, if it runs; else the error a start would meet there."""
    record = client.notebook(notebook_id)
    if not record.running:
        raise ScnetError(
            N_("notebook {notebook_id} is {status}: a service starts only in a running instance"),
            _boot_hint(record, hint),
            notebook_id=notebook_id,
            status=display.status_message(record.status or "?"),
        )
    return record


def _stopped_instance(
    client: ScnetClient, refused: ApiError, notebook_id: str, hint: str
) -> ApiError | None:
    """After a refused start: the platform's error with ``hint`` (boot first) when the
    instance does not run (the platform's code for that is not documented, so ask)."""
    try:
        record = client.notebook(notebook_id)
    except ScnetError:
        return None
    if record.running:
        return None
    says = Message(
        N_("The instance is {status}."), status=display.status_message(record.status or "?")
    )
    return refused.with_hint(Sentences(says, _boot_hint(record, hint)))


def _boot_hint(record: Notebook, hint: str) -> str:
    # Booting again is not what an instance on its way up needs: waiting for it is.
    return ON_ITS_WAY_HINT if record.status in _ON_ITS_WAY else hint
