"""The guard process: ``python -m scnet_magic.guard serve ...``, as :func:`.start_guard`
launches it, with the password on standard input (never in its arguments or environment).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import logging.handlers
import os
import resource
import signal
import sys
import time
from pathlib import Path

from ..i18n import _
from . import GuardRecord, has_exited, log_path, remove_record, write_record

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
LOG_BYTES = 1024 * 1024
MAX_DESCRIPTORS = 65536
ENDS_WITH_INTERVAL = 0.5  # seconds between two looks at the process a guard ends with


def serve(argv: list[str]) -> int:
    """The guard process: bind, detach, record itself, serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m scnet_magic.guard serve")
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--guard-id", required=True)
    parser.add_argument("--ends-with", type=int, default=None)
    args = parser.parse_args(argv)

    # Imported here: without "serve" the process needs neither tornado nor scrypt.
    from tornado.netutil import bind_sockets

    from .auth import PasswordHash
    from .base import Guard
    from .server import serve_until

    password = sys.stdin.buffer.read().decode("utf-8").removesuffix("\n").removesuffix("\r")
    if not password:
        print(_("the guard's password must not be empty"), file=sys.stderr)
        return EXIT_USAGE
    guard = Guard(args.upstream_port, args.guard_id, PasswordHash.of(password))
    del password  # only the hash stays
    try:
        sockets = bind_sockets(args.port, args.host)
    except OSError as exc:
        address = f"{args.host}:{args.port}"
        print(
            _("cannot listen on {address}: {reason}").format(address=address, reason=exc),
            file=sys.stderr,
        )
        return EXIT_FAILED
    # As many descriptors as the system allows: one per connection.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(MAX_DESCRIPTORS if hard == resource.RLIM_INFINITY else hard, MAX_DESCRIPTORS)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    # Forked before any event loop exists: the launcher's child exits at once, so the guard
    # is nobody's child (the kernel that started it never has to reap it).
    if os.fork() != 0:
        os._exit(EXIT_OK)
    # From here on the guard writes only through its log, whose size is bounded.
    devnull = os.open(os.devnull, os.O_RDWR)
    for descriptor in (0, 1, 2):
        os.dup2(devnull, descriptor)
    os.close(devnull)
    _log_to(log_path(args.guard_id))
    record = GuardRecord(
        port=int(sockets[0].getsockname()[1]),
        upstream_port=args.upstream_port,
        pid=os.getpid(),
        guard_id=args.guard_id,
        started_at=time.time(),
        host=args.host,
        ends_with=args.ends_with,
    )
    write_record(record)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        watching = None
        if args.ends_with is not None:
            watching = asyncio.create_task(_stop_when_ended(args.ends_with, stop))
        await serve_until(guard, sockets, stop)
        if watching is not None:
            watching.cancel()

    try:
        asyncio.run(run())
    finally:
        remove_record(record)
    return EXIT_OK


async def _stop_when_ended(pid: int, stop: asyncio.Event) -> None:
    """Set ``stop`` once process ``pid`` has ended (the sandbox's, killed with its kernel
    perhaps): a guard in front of services that ended with it only misleads."""
    while not has_exited(pid):
        await asyncio.sleep(ENDS_WITH_INTERVAL)
    stop.set()


def _log_to(path: Path) -> None:
    """Log warnings and errors (Python's and asyncio's included) to ``path``, rotated so that
    it never holds more than about 2 x LOG_BYTES."""
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=LOG_BYTES, backupCount=1, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.captureWarnings(True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    print(_("start, list and stop guards with: scnet guard --help"), file=sys.stderr)
    return EXIT_USAGE
