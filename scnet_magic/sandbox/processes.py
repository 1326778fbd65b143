"""The commands the sandbox runs for started services: their environment, and ending them.

Run as a script, this file is the reaper: a small process that reads process-group ids, one a
line, until its standard input closes, then ends those groups. Its input closes when the
sandbox's process ends without stopping the sandbox (a kernel killed by its front end runs no
atexit handler), so the services never outlive the process that started them. It imports
nothing but the standard library, so that it starts quickly and alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

# The user's credentials stay with the user: a command in a real instance never sees the
# variables of the shell that started it, and a service could print or leak them.
_CREDENTIALS = ("SCNET_TOKEN", "SCNET_ACCESS_KEY", "SCNET_SECRET_KEY", "SCNET_GUARD_PASSWORD")


def command_environment() -> dict[str, str]:
    """This process's environment minus the credentials, with the kernel's interpreter first on
    PATH (``python app.py`` runs with the packages installed beside scnet-magic, as it would in
    the instance's own environment)."""
    env = {name: value for name, value in os.environ.items() if name not in _CREDENTIALS}
    here = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([here, *(env.get("PATH", os.defpath).split(os.pathsep))])
    return env


def _alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if not os.path.isdir("/proc"):
        return True
    # Where PID 1 does not reap orphans, members that died stay in the group as zombies.
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                state, _ppid, pgrp = stat.read().rpartition(")")[2].split()[:3]
        except (OSError, ValueError):
            continue
        if pgrp == str(group) and state not in ("Z", "X"):
            return True
    return False


def end_groups(groups: list[int], grace: float) -> None:
    """SIGTERM to each process group, up to ``grace`` s for them to go (polled, so that groups
    that end at once cost nothing), then SIGKILL to what is left."""
    _signal(groups, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not any(_alive(group) for group in groups):
            return
        time.sleep(0.05)
    _signal(groups, signal.SIGKILL)


def _signal(groups: list[int], sig: signal.Signals) -> None:
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)


def terminate(procs: list[subprocess.Popen[bytes]]) -> None:
    """End the started commands, each with its process group (start_new_session made its
    pid the group's id)."""
    for proc in procs:
        proc.poll()  # reaps our own child, which would otherwise stay in the group as a zombie
    end_groups([proc.pid for proc in procs], 3.0)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)


def start_reaper() -> subprocess.Popen[str]:
    """The reaper, fed the process groups to end on standard input."""
    return subprocess.Popen(
        [sys.executable, "-I", __file__],
        env=command_environment(),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        # Its own session: a Ctrl-C meant for the kernel must not end it early.
        start_new_session=True,
    )


if __name__ == "__main__":
    end_groups([int(line) for line in sys.stdin if line.strip().isdigit()], 2.0)
