"""The guard from a shell.

::

    scnet guard --port P [--listen-port G] [--host H] [--password-stdin]
    scnet guard --list
    scnet guard --stop G

``add_guard_arguments`` and ``guard_command`` are for the ``scnet`` command; ``python -m
scnet_magic.guard`` takes the same options. ``python -m scnet_magic.guard serve ...`` is the
guard process itself, as :func:`.manage.start_guard` launches it; it takes the password from
standard input or a file private to the user, never from its arguments or environment.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import stat
import sys
import time
from pathlib import Path

from .. import validation
from ..i18n import _
from . import manage

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def add_guard_arguments(parser: argparse.ArgumentParser) -> None:
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--port", type=int, metavar="P", help=_("put a password in front of the service on port P")
    )
    action.add_argument("--list", action="store_true", help=_("list the guards running here"))
    action.add_argument("--stop", type=int, metavar="G", help=_("stop the guard on port G"))
    parser.add_argument(
        "--listen-port",
        type=validation.listen_port_argument,
        default=0,
        metavar="G",
        help=_("port the guard listens on (default: any free port)"),
    )
    parser.add_argument(
        "--host", default="0.0.0.0", help=_("address the guard listens on (default: all)")
    )
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help=_("read the password from one line of standard input instead of asking"),
    )


def guard_command(args: argparse.Namespace) -> int:
    try:
        if args.list:
            return _print_guards(manage.list_guards())
        if args.stop is not None:
            if manage.stop_guard(args.stop):
                print(_("stopped the guard on port {port}").format(port=args.stop))
                return EXIT_OK
            print(_("no guard runs on port {port}").format(port=args.stop), file=sys.stderr)
            return EXIT_FAILED
        password = _read_password(args.password_stdin)
        record = manage.start_guard(args.port, password, host=args.host, port=args.listen_port)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except (manage.GuardError, OSError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILED
    if record.reused:
        message = _("port {upstream} is already guarded on port {port}")
    else:
        message = _("port {upstream} is now guarded on port {port}")
    print(message.format(upstream=record.upstream_port, port=record.port))
    return EXIT_OK


def _read_password(from_stdin: bool) -> str:
    given = os.environ.get(manage.PASSWORD_ENV)
    if given is not None and not from_stdin:
        return given
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(_("Password for the guard: "))
    if getpass.getpass(_("The same password again: ")) != first:
        raise ValueError(_("the two passwords differ"))
    return first


def guard_lines(records: list[manage.GuardRecord]) -> list[str]:
    """The running guards, one line each (what ``--list`` prints)."""
    if not records:
        return [_("no guard runs here")]
    lines = []
    for record in records:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.started_at))
        lines.append(
            _("port {port} guards port {upstream} (process {pid}, since {started})").format(
                port=record.port, upstream=record.upstream_port, pid=record.pid, started=started
            )
        )
    return lines


def _print_guards(records: list[manage.GuardRecord]) -> int:
    print("\n".join(guard_lines(records)))
    return EXIT_OK


def serve(argv: list[str]) -> int:
    """The guard process: bind, detach, record itself, serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m scnet_magic.guard serve")
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--guard-id", required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--password-stdin", action="store_true")
    source.add_argument("--password-file", type=Path)
    args = parser.parse_args(argv)

    # Imported here: the management commands need neither tornado nor scrypt.
    from tornado.netutil import bind_sockets

    from .auth import PasswordHash
    from .base import Guard
    from .proxy import serve_until

    try:
        password = _password_from(args.password_file)
    except (OSError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
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
    # Forked before any event loop exists: the launcher's child exits at once, so the guard
    # is nobody's child (the kernel that started it never has to reap it).
    if os.fork() != 0:
        os._exit(EXIT_OK)
    _detach_stdin()
    record = manage.GuardRecord(
        port=int(sockets[0].getsockname()[1]),
        upstream_port=args.upstream_port,
        pid=os.getpid(),
        guard_id=args.guard_id,
        started_at=time.time(),
        host=args.host,
    )
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    manage.write_record(record)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve_until(guard, sockets, stop)

    try:
        asyncio.run(run())
    finally:
        manage.remove_record(record)
    return EXIT_OK


def _password_from(path: Path | None) -> str:
    if path is None:
        data = sys.stdin.buffer.read()
    else:
        info = path.stat()
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO) or info.st_uid != os.getuid():
            raise ValueError(_("{path} must be readable by you only (chmod 600)").format(path=path))
        data = path.read_bytes()
    return data.decode("utf-8").removesuffix("\n").removesuffix("\r")


def _detach_stdin() -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m scnet_magic.guard",
        description=_("A password in front of a service of this machine."),
    )
    add_guard_arguments(parser)
    return guard_command(parser.parse_args(argv))
