"""The guard: a password in front of a service whose public address has no authentication.

A guard is a detached process (``python -m scnet_magic.guard``, :mod:`.process`) that listens
on a port of its own and lets through to ``127.0.0.1:<service port>`` only visitors who know
the password: browsers sign in on a small page (a session cookie), API clients send HTTP Basic.
``GET /.scnet-guard/status`` tells anyone whether the service is up.

This module starts, finds, lists and stops guards, without tornado or scrypt. Each running
guard has a record, ``<port>.json``, in ``platformdirs.user_runtime_dir("scnet")/guards`` (or
``$SCNET_GUARD_DIR``): the guard writes it once it listens and removes it when it stops;
readers drop the records of processes that died.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from base64 import b64encode
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from .. import local, validation
from ..i18n import N_, Message, _, ngettext

GUARD_DIR_ENV = "SCNET_GUARD_DIR"
# Where the front ends may take the password from; never handed on to the guard's process.
PASSWORD_ENV = "SCNET_GUARD_PASSWORD"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
PROBE_TIMEOUT = 2.0
GUARD_HEADER = "X-Scnet-Guard"  # on every answer of a guard: its guard_id
STATUS_PATH = "/.scnet-guard/status"
# What the process list shows for a guard: how a reused process id is told from a guard.
COMMAND_MARK = "scnet_magic.guard"
# All the guard gets of the starting shell's environment: the guard faces the internet, and
# tokens and keys (SCNET_TOKEN, SCNET_SECRET_KEY, any other) have no business there.
ENVIRONMENT_KEPT = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH"}
)
ENVIRONMENT_KEPT_PREFIXES = ("LC_", "SCNET_GUARD_")
# The ports of guards that ended and the ports they guarded, newest last: an instance's custom
# port may still be an ended guard's, and the user's port is the one to name.
_ENDED = "ended-guards"  # not *.json: that names a running guard's record
_ENDED_KEPT = 50


class GuardError(RuntimeError):
    """A guard could not be started, or its records cannot be kept safely."""


@dataclass(frozen=True)
class GuardRecord:
    """A running guard: it listens on ``port`` and lets through to ``127.0.0.1:upstream_port``."""

    port: int
    upstream_port: int
    pid: int
    guard_id: str
    started_at: float  # seconds since the epoch
    host: str = "0.0.0.0"
    reused: bool = False  # start_guard found it running rather than starting it
    # The process whose end ends the guard too (a sandbox's: its services end with it).
    ends_with: int | None = None

    def to_json(self) -> str:
        fields = dataclasses.asdict(self)
        del fields["reused"]  # a property of one start_guard call, not of the guard
        return json.dumps(fields, indent=1)

    @classmethod
    def from_json(cls, text: str) -> GuardRecord:
        data: dict[str, Any] = json.loads(text)
        return cls(
            port=int(data["port"]),
            upstream_port=int(data["upstream_port"]),
            pid=int(data["pid"]),
            guard_id=str(data["guard_id"]),
            started_at=float(data["started_at"]),
            host=str(data.get("host", "0.0.0.0")),
            ends_with=None if data.get("ends_with") is None else int(data["ends_with"]),
        )


def guard_dir() -> Path:
    """The folder of the guards' records (created private to this user)."""
    override = os.environ.get(GUARD_DIR_ENV)
    if override:
        folder = Path(override)
    else:
        import platformdirs

        with warnings.catch_warnings():
            # Without XDG_RUNTIME_DIR (containers) platformdirs warns and uses /tmp/runtime-<uid>;
            # the ownership check below is what makes that safe.
            warnings.simplefilter("ignore")
            folder = Path(platformdirs.user_runtime_dir("scnet")) / "guards"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_uid != os.getuid():
        raise GuardError(
            Message(
                N_("{folder} belongs to another user; set SCNET_GUARD_DIR to a folder of yours"),
                folder=folder,
            )
        )
    folder.chmod(0o700)
    return folder


def record_path(port: int) -> Path:
    return guard_dir() / f"{port}.json"


def log_path(guard_id: str) -> Path:
    return guard_dir() / f"{guard_id}.log"


@contextlib.contextmanager
def starting_lock(upstream_port: int) -> Iterator[None]:
    """Held while a guard for ``upstream_port`` is looked for and started: two starts at once
    would otherwise both find none and start two guards, with two passwords."""
    with _locked(f".start-{upstream_port}.lock"):
        yield


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """This user's lock ``name`` in the guard folder, across processes."""
    descriptor = os.open(guard_dir() / name, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def write_record(record: GuardRecord) -> None:
    _write_private(record_path(record.port), record.to_json())


def _write_private(path: Path, text: str) -> None:
    """``text`` to ``path``, readable by this user only; a reader sees the old or the new."""
    # A name of its own (0600), even for two threads of one process writing at once.
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)


def remove_record(record: GuardRecord) -> None:
    """Remove a guard's record and log, unless a newer guard has taken its port since."""
    current = _read(record_path(record.port))
    if current is None or current.guard_id == record.guard_id:
        record_path(record.port).unlink(missing_ok=True)
        # Guards that end together (a sandbox's) each add themselves: one at a time.
        with contextlib.suppress(OSError), _locked(f".{_ENDED}.lock"):
            ended = {port: upstream for port, upstream in _ended().items() if port != record.port}
            ended[record.port] = record.upstream_port
            _write_private(guard_dir() / _ENDED, json.dumps(list(ended.items())[-_ENDED_KEPT:]))
    log = log_path(record.guard_id)
    for path in (log, log.with_name(f"{log.name}.1")):  # the log, and where it rotates to
        path.unlink(missing_ok=True)


def _ended() -> dict[int, int]:
    try:
        pairs = json.loads((guard_dir() / _ENDED).read_text(encoding="utf-8"))
        return {int(port): int(upstream) for port, upstream in pairs}
    except (OSError, ValueError, TypeError, RecursionError):
        return {}  # none yet, or not ours to trust: nothing is remembered


def guarded_ports() -> dict[int, int]:
    """Each port a guard of this user listens on, or did before it ended, and the port it
    passes visitors to (a running guard's, where one has taken an ended one's port)."""
    # Running guards first: listing them is what records a guard found dead as ended.
    running = {record.port: record.upstream_port for record in list_guards()}
    return _ended() | running


def _read(path: Path) -> GuardRecord | None:
    try:
        return GuardRecord.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _process(pid: int) -> psutil.Process | None:
    """Process ``pid`` while it runs (a zombie has exited), if it is this user's: another
    user's process that now holds the id is not our guard."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or process.uids().real != os.getuid():
            return None
    except psutil.Error:
        return None
    return process


def is_running(record: GuardRecord) -> bool:
    """Whether the record's process still runs and is a guard (not a reused process id)."""
    process = _process(record.pid)
    try:
        return process is not None and COMMAND_MARK in " ".join(process.cmdline())
    except psutil.Error:
        return False


def has_exited(pid: int) -> bool:
    """Whether ``pid`` is gone or a zombie. Unlike ``is_running`` it asks nothing of the command
    line: a process tearing itself down reads an empty one while it still runs."""
    return _process(pid) is None


def _wait_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not has_exited(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def list_guards() -> list[GuardRecord]:
    """The guards running now, by port; records of guards that died are removed."""
    running = []
    for path in guard_dir().glob("*.json"):
        record = _read(path)
        if record is None:
            continue
        if is_running(record):
            running.append(record)
        else:
            remove_record(record)
    return sorted(running, key=lambda record: record.port)


def find_guard(upstream_port: int) -> GuardRecord | None:
    """The running guard in front of ``127.0.0.1:upstream_port``, if any."""
    return next((r for r in list_guards() if r.upstream_port == upstream_port), None)


def stop_guard(port: int) -> bool:
    """Stop the guard listening on ``port``; False when there was none."""
    record = _read(record_path(port))
    if record is None:
        return False
    if not is_running(record):
        remove_record(record)
        return False
    # Once the guard is known to be ours, wait on its process id alone: returning while it still
    # exits would leave its port taken for a moment.
    for signum in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signum)
        if _wait_for_exit(record.pid, STOP_TIMEOUT):
            break
    remove_record(record)
    return True


def stop_all_guards() -> list[int]:
    """Stop every guard running here; the ports of those stopped."""
    return [record.port for record in list_guards() if stop_guard(record.port)]


def stop_guards_ending_with(pid: int) -> list[int]:
    """Stop the guards started to end with process ``pid`` (a sandbox stopping); their ports."""
    return [
        record.port
        for record in list_guards()
        if record.ends_with == pid and stop_guard(record.port)
    ]


def stopped_line(count: int) -> str:
    """What stopping every guard says (``scnet guard --stop all``, ``%scnet_guard --stop all``)."""
    if count == 0:
        return _("no guard runs here")
    return ngettext("stopped {count} guard", "stopped {count} guards", count).format(count=count)


def guard_lines(records: list[GuardRecord]) -> list[str]:
    """The running guards, one line each (``scnet guard --list``, ``%scnet_guard``)."""
    if not records:
        return [_("no guard runs here")]
    lines = []
    for record in records:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.started_at))
        line = _("port {port} guards port {upstream} (process {pid}, since {started})").format(
            port=record.port, upstream=record.upstream_port, pid=record.pid, started=started
        )
        if not local.listening(record.upstream_port):
            # A guard in front of nothing: say so, rather than let it pass for a working one.
            line += _(" - nothing listens on port {upstream} any more").format(
                upstream=record.upstream_port
            )
        lines.append(line)
    return lines


def start_guard(
    upstream_port: int,
    password: str,
    *,
    host: str = "0.0.0.0",
    port: int = 0,
    timeout: float = START_TIMEOUT,
    ends_with: int | None = None,
) -> GuardRecord:
    """Put a guard with ``password`` in front of ``127.0.0.1:upstream_port``; return its record
    once it answers.

    A guard already running for that port is reused (``reused=True``) if ``password`` opens
    it; one with another password is an error rather than a silent change of password. Ports
    and password are checked as every front end checks them (``InvalidInput``) before anything
    starts. With ``ends_with`` (a process id), the guard ends when that process ends, or with
    :func:`stop_guards_ending_with`.
    """
    validation.validate_port(upstream_port)
    if not (type(port) is int and port == 0):  # 0: any free port
        validation.validate_port(port)
    password = validation.validate_guard_password(password)
    with starting_lock(upstream_port):
        existing = find_guard(upstream_port)
        if existing is not None:
            credential = b64encode(f"scnet:{password}".encode()).decode("ascii")
            check = _ask(existing, "/.scnet-guard/check", {"Authorization": f"Basic {credential}"})
            if check is not None and check.status == 204:
                return dataclasses.replace(existing, reused=True)
            raise GuardError(
                Message(
                    N_(
                        "port {upstream} is already guarded on port {port} with another password; "
                        "stop that guard first (scnet guard --stop {port})"
                    ),
                    upstream=upstream_port,
                    port=existing.port,
                )
            )
        guard_id = secrets.token_hex(8)
        command = [sys.executable, "-m", "scnet_magic.guard", "serve", f"--guard-id={guard_id}"]
        command += [f"--upstream-port={upstream_port}", f"--port={port}", f"--host={host}"]
        if ends_with is not None:
            command.append(f"--ends-with={ends_with}")
        log = log_path(guard_id)
        descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "ab") as log_file:
            # A session of its own, so that a kernel restart (which signals the kernel's process
            # group) leaves it running; it forks once more, so it is never the kernel's child.
            launcher = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,  # the password: never an argument, which any user sees
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                # A crash report or a debugging session can read a process's environment: the
                # guard gets the password on stdin only, and no other secret of this shell.
                env={
                    name: value
                    for name, value in os.environ.items()
                    if (name in ENVIRONMENT_KEPT or name.startswith(ENVIRONMENT_KEPT_PREFIXES))
                    and name != PASSWORD_ENV
                },
            )
        try:
            launcher.communicate(password.encode("utf-8"), timeout=timeout)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait()
        deadline = time.monotonic() + timeout
        while launcher.returncode == 0 and time.monotonic() < deadline:
            for record in list_guards():
                status = _ask(record, STATUS_PATH) if record.guard_id == guard_id else None
                if status is not None and status.getheader(GUARD_HEADER) == guard_id:
                    return record  # its port is answered by that very guard
            time.sleep(0.05)
        try:
            lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            lines = []
        log.unlink(missing_ok=True)
        raise GuardError(
            _("the guard for port {port} did not start: {reason}").format(
                port=upstream_port, reason=lines[-1] if lines else _("no message")
            )
        )


def _ask(
    record: GuardRecord, path: str, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse | None:
    """The guard's answer to ``GET path``, None if none came."""
    # Loopback for a guard that listens on every address.
    host = "127.0.0.1" if record.host in ("", "0.0.0.0", "::") else record.host
    connection = http.client.HTTPConnection(host, record.port, timeout=PROBE_TIMEOUT)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        response.read()
        return response
    except OSError:
        return None
    finally:
        connection.close()
