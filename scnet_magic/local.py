"""The service as the kernel's own machine sees it, when the kernel runs where the command runs.

On the platform a notebook's kernel usually runs inside the instance (and beside an executing
sandbox): there it sees what the platform's answer does not say. Whether the started command
has already ended (its process gone, its log no longer written), so that a wait need not poll
for minutes for a service that died at once; and what already listens on a port before a
start, so that an old process is never reported as the new one. A kernel elsewhere sees
nothing, and every answer is then "don't know" (None), never "ended".
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shlex
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psutil

from .errors import one_line
from .server_text import strip_controls
from .validation import is_loopback_host

# How long a command must have been gone before a wait believes it: a shell that starts the
# service in the background hands over to it within this.
GRACE = 1.0
LAST_LINES = 12
_TAIL_BYTES = 16 * 1024
_SHELLS = ("sh", "bash", "dash", "zsh")


def log_file_of(command: str | None) -> str | None:
    """The file a shell command sends its output to (``> file``, ``>> file``, ``&> file``)."""
    if not command:
        return None
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    try:
        words = list(lexer)
    except ValueError:  # unbalanced quotes: the platform's shell decides, not us
        return None
    for operator, target in itertools.pairwise(words):
        if operator in (">", ">>", "&>", "&>>", ">|") and not set(target) <= set("();<>|&"):
            return target
    return None


def runs_here(url: str | None) -> bool:
    """Whether a service behind this external URL runs on this machine (a loopback address)."""
    host = urlsplit(url or "").hostname
    return host is not None and (host.endswith(".localhost") or is_loopback_host(host))


# The subject of every token a sandbox makes: what tells the sandbox from the platform. An
# address does not: an SSH tunnel to the platform is on loopback too.
SANDBOX_SUBJECT = "scnet-sandbox"


def sandbox_token(token: str | None) -> bool:
    """Whether ``token`` was made by a sandbox (the platform is then on this machine)."""
    try:
        payload = (token or "").split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, RecursionError):
        return False
    return isinstance(claims, dict) and claims.get("sub") == SANDBOX_SUBJECT


@dataclass(frozen=True)
class Ended:
    """The started command has ended here: its log (None: its process is gone), and the last
    lines it wrote, as far as they are known."""

    log: str | None
    last_lines: str


def _last_lines(text: str, count: int = LAST_LINES) -> str:
    # A log holds whatever the program printed (colours, a title, visitors' input): shown
    # at a terminal, only its text.
    return "\n".join(strip_controls(text).rstrip().splitlines()[-count:])


def tail(path: Path, size: int = _TAIL_BYTES) -> str:
    """The last ``size`` bytes of a log, as text."""
    with open(path, "rb") as log:
        end = log.seek(0, os.SEEK_END)
        log.seek(max(0, end - size))
        return log.read().decode("utf-8", "replace")


def _own_processes() -> list[psutil.Process]:
    # Only the user's own: the platform runs the command as the user the kernel runs as, and
    # other users' processes cannot be read anyway.
    uid = os.getuid()
    return [
        proc
        for proc in psutil.process_iter(["uids"])
        if proc.info.get("uids") is not None and proc.info["uids"].real == uid
    ]


def _writes(proc: psutil.Process, path: Path) -> bool:
    with contextlib.suppress(psutil.Error, OSError):
        return any(Path(f.path) == path for f in proc.open_files())
    return False


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:  # unbalanced quotes: nothing will match the words
        return []


def _runs(proc: psutil.Process | None, command: str, words: list[str]) -> bool:
    """Whether a process (None: none) runs the command: a shell running it (``sh -c command``),
    the command itself (a shell that ``exec``\\ s its last word), or a part of it (a program
    the command started in the background: ``nohup python app.py &``)."""
    argv: list[str] = []
    with contextlib.suppress(psutil.Error):
        argv = proc.cmdline() if proc is not None else []
    if not argv:
        return False
    if len(argv) >= 3 and Path(argv[0]).name in _SHELLS and argv[1] == "-c":
        return argv[2] == command
    if argv == words:
        return True
    return len(argv) >= 2 and " ".join(argv) in command


class CommandWatch:
    """Whether the command a start ran (sent at ``since``, a ``time.monotonic()``) has ended
    on this machine. ``here``: known to run here (:func:`runs_here`); a fresh log it writes
    shows it too, and so does its process seen here, started after ``since``. ``output``: the
    platform's answer's output, shown when the process is gone and there is no log.
    ``folders``: where a relative log path may be (the command's working folder is unknown)."""

    def __init__(
        self,
        command: str,
        since: float,
        *,
        here: bool,
        output: str | None = None,
        folders: tuple[Path, ...] | None = None,
    ) -> None:
        self.command = command
        self.here = here
        self.output = output or ""
        # The log's modification time is wall-clock time.
        self.since_wall = time.time() - (time.monotonic() - since)
        self.created = time.monotonic()
        self._gone_since: float | None = None
        self.log_name = log_file_of(command)
        self.logs: tuple[Path, ...] = ()
        if self.log_name is not None:
            path = Path(self.log_name).expanduser()
            bases = folders if folders is not None else (Path.cwd(), Path.home())
            self.logs = (path,) if path.is_absolute() else tuple(base / path for base in bases)
        self.words = _words(command)

    def ended(self) -> Ended | None:
        """Evidence that the command has ended, or None: it runs, or nothing can be seen."""
        fresh = [log for log in self.logs if _written_since(log, self.since_wall)]
        if fresh:
            return self._log_ended(fresh[0])
        if not self.command.strip():
            return None
        running = [proc for proc in _own_processes() if _runs(proc, self.command, self.words)]
        if not self.here:
            # The command's process seen here, started by this start: the kernel runs where
            # the command runs (inside the instance), so its end can be seen too.
            self.here = any(self._started_since(proc) for proc in running)
            if not self.here:
                return None  # a log not written yet, or elsewhere: nothing to go by
        if running:
            self._gone_since = None
            return None
        now = time.monotonic()
        if self._gone_since is None:
            self._gone_since = now
        if now - self._gone_since < GRACE:
            return None
        # The platform's output, not the log (which the process may never have written).
        return Ended(None if self.output.strip() else self.log_name, _last_lines(self.output))

    def _started_since(self, proc: psutil.Process) -> bool:
        with contextlib.suppress(psutil.Error):
            return proc.create_time() >= self.since_wall - 1.0
        return False

    def _log_ended(self, log: Path) -> Ended | None:
        if any(_writes(proc, log.resolve()) for proc in _own_processes()):
            return None
        if time.monotonic() - self.created < GRACE:
            return None  # the shell opens the log before it starts the program
        return Ended(str(log), _last_lines(tail(log)))


def _written_since(path: Path, moment: float) -> bool:
    try:
        # A second's slack: some file systems keep coarse times.
        return path.stat().st_mtime >= moment - 1.0
    except OSError:
        return False


# -- a port already in use ---------------------------------------------------------------------


def listening(port: int, timeout: float = 0.5) -> bool:
    """Whether something on this machine accepts connections on ``127.0.0.1:port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _listeners(port: int) -> list[psutil.Process]:
    found = []
    for proc in _own_processes():
        with contextlib.suppress(psutil.Error):
            if any(
                conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port
                for conn in proc.net_connections(kind="inet")
            ):
                found.append(proc)
    return found


def serving_process(url: str) -> int | None:
    """The process id of this user's process that serves ``url`` on this machine (a sandbox
    run by this kernel or by ``scnet sandbox``); None when it is elsewhere or cannot be seen."""
    parts = urlsplit(url)
    if not runs_here(url):
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return next((int(proc.pid) for proc in _listeners(port)), None)


def run_of(port: int, command: str) -> bool:
    """Whether what listens on ``port`` here is a run of ``command`` (an earlier start of it,
    the same app), as far as this user's processes show."""
    words = _words(command)
    for proc in _listeners(port):
        # The app a shell started (``cd app && python app.py``): its shell runs the command.
        with contextlib.suppress(psutil.Error):
            if _runs(proc, command, words) or _runs(proc.parent(), command, words):
                return True
    return False


def who_listens(port: int) -> str:
    """ " (pid N: its command)" for a process of this user listening on ``port``, else ""."""
    for proc in _listeners(port):
        with contextlib.suppress(psutil.Error):
            # On one line and without terminal controls: arguments may hold anything.
            command = one_line(" ".join(proc.cmdline()) or proc.name(), 59)
            return f" (pid {proc.pid}: {command})"
    return ""


def end_listeners(port: int, timeout: float = 5.0) -> list[int]:
    """End the processes of this user that listen on ``port`` (SIGTERM, then SIGKILL after
    ``timeout`` s), never this process nor its ancestors (the kernel, the notebook server);
    their pids."""
    spared = {os.getpid()}
    with contextlib.suppress(psutil.Error):
        spared.update(proc.pid for proc in psutil.Process().parents())
    procs = [proc for proc in _listeners(port) if proc.pid not in spared]
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _gone, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=timeout)
    deadline = time.monotonic() + timeout
    while listening(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [proc.pid for proc in procs]
