"""The commands the sandbox runs for started services: readiness, logs and stopping."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

_OUTPUT_LIMIT = 64 * 1024
# The user's credentials stay with the user: a command in a real instance never sees the
# variables of the shell that started it, and a service could print or leak them.
_CREDENTIALS = ("SCNET_TOKEN", "SCNET_ACCESS_KEY", "SCNET_SECRET_KEY", "SCNET_GUARD_PASSWORD")


def command_environment() -> dict[str, str]:
    """The environment of a started command: this process's, minus the credentials, with the
    kernel's interpreter first on PATH (``python app.py`` runs with the packages installed
    beside scnet-magic, as it would in the instance's own environment)."""
    env = {name: value for name, value in os.environ.items() if name not in _CREDENTIALS}
    here = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([here, *(env.get("PATH", os.defpath).split(os.pathsep))])
    return env


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _tail(path: Path) -> str:
    # The end of a start-up log is where the reason for a failure usually is.
    with open(path, "rb") as log:
        size = log.seek(0, os.SEEK_END)
        log.seek(max(0, size - _OUTPUT_LIMIT))
        return log.read(_OUTPUT_LIMIT).decode("utf-8", "replace")


def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
    proc.poll()  # reaps our own child, which would otherwise stay in the group as a zombie
    try:
        os.killpg(proc.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # Where PID 1 does not reap orphans, members that died stay in the group as zombies.
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return True
    for stat in proc_dir.glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp = stat.read_text().rpartition(")")[2].split()[:3]
        except (OSError, ValueError):
            continue
        if pgrp == str(proc.pid) and state not in ("Z", "X"):
            return True
    return False


def _killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _terminate(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        _killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 3.0
    for proc in procs:
        while _group_alive(proc) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_alive(proc):
            _killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)


# The reaper: a small process that reads process-group ids, one a line, until its standard
# input closes, then ends those groups: SIGTERM, up to two seconds for them to go (polled, so
# that groups that end at once cost nothing), then SIGKILL. Its input closes when the sandbox's
# process ends without stopping the sandbox (a kernel killed by its front end runs no atexit
# handler), so the services never outlive the process that started them.
_REAPER = """
import os, signal, sys, time

def alive(group):
    # Members that died stay in the group as zombies where PID 1 does not reap orphans.
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                state, _ppid, pgrp = stat.read().rpartition(")")[2].split()[:3]
        except (OSError, ValueError):
            continue
        if pgrp == str(group) and state not in ("Z", "X"):
            return True
    return False

groups = [int(line) for line in sys.stdin if line.strip().isdigit()]
for group in groups:
    try:
        os.killpg(group, signal.SIGTERM)
    except OSError:
        pass
deadline = time.monotonic() + 2.0
while time.monotonic() < deadline and any(alive(group) for group in groups):
    time.sleep(0.05)
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""


class Reaper:
    """Ends the sandbox's services when the sandbox's process ends, however it ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None

    def watch(self, pgid: int) -> None:
        """Add a process group to end (started on first use: only execution needs it)."""
        with self._lock:
            if self._proc is None:
                self._proc = subprocess.Popen(
                    [sys.executable, "-c", _REAPER],
                    env=command_environment(),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    text=True,
                    # Its own session: a Ctrl-C meant for the kernel must not end it early.
                    start_new_session=True,
                )
            assert self._proc.stdin is not None
            with contextlib.suppress(OSError):
                self._proc.stdin.write(f"{pgid}\n")
                self._proc.stdin.flush()

    def close(self) -> None:
        """The sandbox ended its services itself: the reaper has nothing left to do."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        proc.wait()
