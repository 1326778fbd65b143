"""The commands the sandbox runs for started services: readiness, logs and stopping."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

_OUTPUT_LIMIT = 64 * 1024


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
