"""The guard: a password in front of a service whose public address has no authentication.

A guard is a separate, detached process (``python -m scnet_magic.guard serve``) that listens
on a port of its own and lets through to ``127.0.0.1:<service port>`` only visitors who know
the password: browsers sign in on a small page (a session cookie), API clients send HTTP
Basic. ``GET /.scnet-guard/status`` tells anyone whether the service is up.

    record = start_guard(7860, password)   # a running guard for 7860 is reused
    record.port                            # expose this port instead of 7860
    list_guards(); find_guard(7860); stop_guard(record.port); stop_all_guards()
"""

from __future__ import annotations

from .manage import (
    GUARD_DIR_ENV,
    GUARD_HEADER,
    PASSWORD_ENV,
    STATUS_PATH,
    GuardError,
    GuardRecord,
    find_guard,
    guard_lines,
    list_guards,
    start_guard,
    stop_all_guards,
    stop_guard,
    stop_guards_ending_with,
    stopped_line,
)

__all__ = [
    "GUARD_DIR_ENV",
    "GUARD_HEADER",
    "PASSWORD_ENV",
    "STATUS_PATH",
    "GuardError",
    "GuardRecord",
    "find_guard",
    "guard_lines",
    "list_guards",
    "start_guard",
    "stop_all_guards",
    "stop_guard",
    "stop_guards_ending_with",
    "stopped_line",
]
