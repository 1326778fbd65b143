"""``scnet start --protect`` and ``scnet guard``: where the command takes the password from,
and the guard verb (start one by hand, list, stop), whose options and work live in
:mod:`scnet_magic.guard.cli`."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from .. import validation
from ..errors import InvalidInput
from ..i18n import N_, _

PROTECT = "--protect"
PASSWORD_ON_LINE = N_(
    "--protect takes no value: the password is never an argument (it would show in the "
    "process list and the shell history)"
)
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
    from ..guard.cli import add_guard_arguments

    add_guard_arguments(
        verbs.add_parser(
            "guard",
            help=_("put a password in front of a service of this machine; list or stop guards"),
            description=_(
                "A guard listens on a port of its own and lets through to 127.0.0.1:PORT only "
                "visitors who know the password (a login page, or HTTP Basic). "
                "'scnet start --protect' starts one for you."
            ),
        )
    )


def guard_verb(args: argparse.Namespace) -> int:
    from ..guard.cli import guard_command

    return guard_command(args)


def password_on_line(words: list[str]) -> bool:
    """``--protect=…`` or ``--protect VALUE``: refused before argparse, which would echo it."""
    return validation.gives_a_value(words, PROTECT)


def protect_password(args: argparse.Namespace) -> str | None:
    """The password for ``scnet start --protect`` (None without it): ``--password-stdin``,
    else ``SCNET_GUARD_PASSWORD``, else a hidden prompt twice on a terminal."""
    if not args.protect:
        if args.password_stdin:
            raise InvalidInput(N_("--password-stdin goes with --protect"))
        return None
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        return validation.validate_guard_password(line)
    from .. import service  # here, not at the top: building the parser loads no HTTP stack

    return service.guard_password(getpass.getpass if sys.stdin.isatty() else None)
