"""``scnet start --protect`` and ``scnet guard``: where the command takes the password from,
and the guard verb (start one by hand, list, stop).

::

    scnet guard --port P [--listen-port G] [--host H] [--password-stdin]
    scnet guard --list
    scnet guard --stop G | all
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import arguments, display, validation
from ..errors import InvalidInput, ScnetError
from ..i18n import N_, _
from .common import EXIT_OK

if TYPE_CHECKING:
    from ..guard import GuardRecord

PROTECT = "--protect"
STOP_ALL = "all"
PASSWORD_ON_LINE = N_(
    "--protect takes no value: the password is never an argument (it would show in the "
    "process list and the shell history)"
)
LIST_HINT = N_("See scnet guard --list.")
PASSWORD_HINT = N_(
    "Set SCNET_GUARD_PASSWORD, type it at the hidden prompt, or pipe it in with --password-stdin."
)


def add_protect_arguments(start: argparse.ArgumentParser) -> None:
    start.add_argument(
        PROTECT,
        action="store_true",
        help=_(
            "put a password in front of the external URL: a guard on this machine asks for it "
            "and passes visitors who know it to PORT (run it inside the instance)"
        ),
    )
    start.add_argument(
        "--password-stdin",
        action="store_true",
        help=_(
            "with --protect: read the password from a line of standard input (after the "
            "token's line with --token-stdin) instead of SCNET_GUARD_PASSWORD or a prompt"
        ),
    )


def add_guard_verb(verbs: Any) -> None:
    """``scnet guard --port P | --list | --stop G``."""
    parser = verbs.add_parser(
        "guard",
        help=_("put a password in front of a service of this machine; list or stop guards"),
        description=_(
            "A guard listens on a port of its own and lets through to 127.0.0.1:PORT only "
            "visitors who know the password (a login page, or HTTP Basic). "
            "'scnet start --protect' starts one for you."
        ),
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--port", metavar="P", help=_("put a password in front of the service on port P")
    )
    action.add_argument("--list", action="store_true", help=_("list the guards running here"))
    action.add_argument(
        "--stop", metavar="G", help=_("stop the guard on port G ('all': every guard here)")
    )
    parser.add_argument(
        "--listen-port",
        type=arguments.listen_port_argument,
        default=0,
        metavar="G",
        help=_("port the guard listens on (default: any free port)"),
    )
    parser.add_argument("--host", help=_("address the guard listens on (default: all)"))
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help=_("read the password from one line of standard input instead of asking"),
    )
    parser.add_argument("--json", action="store_true", help=_("print one JSON object"))


def _shown(record: GuardRecord) -> dict[str, Any]:
    """A guard's record as ``--json`` prints it."""
    shown = ("port", "upstream_port", "pid", "host", "started_at")
    return {name: getattr(record, name) for name in shown}


def guard_verb(args: argparse.Namespace) -> int:
    # Here, not at the top: building the parser loads neither the guard's records nor HTTP.
    from .. import guard, service

    if args.port is None and (args.listen_port or args.host is not None or args.password_stdin):
        raise InvalidInput(N_("--listen-port, --host and --password-stdin go with --port"))
    if args.list:
        records = guard.list_guards()
        if args.json:
            print(display.to_json({"guards": [_shown(record) for record in records]}))
        else:
            print("\n".join(guard.guard_lines(records)))
        return EXIT_OK
    if args.stop == STOP_ALL:
        ports = guard.stop_all_guards()
        if args.json:
            print(display.to_json({"stopped": bool(ports), "ports": ports}))
        else:
            print(guard.stopped_line(len(ports)))
        return EXIT_OK
    if args.stop is not None:
        try:
            port = validation.validate_port(args.stop)
        except InvalidInput as exc:  # its hint speaks of a service's port, not a guard's
            raise InvalidInput(exc.message, LIST_HINT) from None
        if not guard.stop_guard(port):
            raise ScnetError(N_("no guard runs on port {port}"), LIST_HINT, port=port)
        if args.json:
            print(display.to_json({"stopped": True, "port": port}))
        else:
            print(_("stopped the guard on port {port}").format(port=port))
        return EXIT_OK
    upstream = validation.validate_port(args.port)  # before the prompt: nothing typed in vain
    password = read_password(args.password_stdin, N_("no password for the guard"))
    record = service.protect_port(
        upstream, password, host=args.host or "0.0.0.0", listen_port=args.listen_port
    )
    if args.json:
        print(display.to_json({**_shown(record), "reused": record.reused}))
        return EXIT_OK
    if record.reused:
        message = _("port {upstream} is already guarded on port {port}")
    else:
        message = _("port {upstream} is now guarded on port {port}")
    print(message.format(upstream=record.upstream_port, port=record.port))
    next_step = _(
        "Expose port {port} rather than {upstream}: scnet start --port {upstream} --protect "
        "does, with this guard."
    )
    print(next_step.format(upstream=record.upstream_port, port=record.port))
    return EXIT_OK


def password_on_line(words: list[str]) -> bool:
    """``--protect=…`` or ``--protect VALUE``: refused before argparse, which would echo it."""
    return arguments.gives_a_value(words, PROTECT)


def protect_password(args: argparse.Namespace) -> str | Callable[[], str] | None:
    """The password for ``scnet start --protect`` (None without it): ``--password-stdin``,
    else ``SCNET_GUARD_PASSWORD``, else a hidden prompt twice on a terminal, which the start
    asks once the instance is known to run."""
    if not args.protect:
        if args.password_stdin:
            raise InvalidInput(N_("--password-stdin goes with --protect"))
        return None
    missing = N_("no password for --protect")
    if args.password_stdin or not sys.stdin.isatty():
        return read_password(args.password_stdin, missing)
    from .. import service

    return service.password_for(
        getpass.getpass, no_password=missing, no_password_hint=PASSWORD_HINT
    )


def read_password(from_stdin: bool, missing: str) -> str:
    """A line of standard input with ``--password-stdin``, else ``SCNET_GUARD_PASSWORD``, else
    a hidden prompt twice on a terminal; ``missing`` says what lacks one when none of them
    gives it."""
    if from_stdin:
        return validation.validate_guard_password(sys.stdin.readline().rstrip("\r\n"))
    from .. import service  # here, not at the top: building the parser loads no HTTP stack

    ask = getpass.getpass if sys.stdin.isatty() else None
    return service.guard_password(ask, no_password=missing, no_password_hint=PASSWORD_HINT)
