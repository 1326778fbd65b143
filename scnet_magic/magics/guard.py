"""``--protect`` and ``%scnet_guard`` in the magics: the password never on the line, asked
for without echo (or taken from ``SCNET_GUARD_PASSWORD``), and the guards of this machine
listed and stopped. The guard itself is started by :mod:`scnet_magic.service`."""

from __future__ import annotations

import getpass
from collections.abc import Collection
from typing import Any

from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument

from .. import arguments
from ..errors import InvalidInput, Sentences
from ..i18n import N_, Message, _
from ..validation import shown_value, validate_port
from .base import SessionMagics
from .line import forget_input, parse, readable_arguments

PROTECT = "--protect"


def refuse_password_on_line(words: list[str], shell: Any, options: Collection[str]) -> None:
    """Refuse ``--protect=…`` and ``--protect VALUE`` (``words``: the line split, comments
    left out; ``options``: the magic's) before anything else reads the line.

    A value there can only be a password, and the line is already in the input history: take
    it out of there (as ``%scnet_token`` does), and say where the password goes instead,
    without quoting it (argparse would).
    """
    given = arguments.values_given(words, PROTECT, options)
    if not given:
        return
    forget_input(shell, [value for value in given if value])
    raise UsageError(
        Sentences(
            N_(
                "--protect takes no value: the password is never given on the line; the line "
                "was removed from this session's input history"
            ),
            N_(
                "It has been seen all the same: choose another password. Give --protect alone "
                "and type it at the hidden prompt, or set SCNET_GUARD_PASSWORD."
            ),
        )
    )


def ask_hidden(prompt: str) -> str:
    """A hidden prompt; EOFError where the front end has no stdin (a notebook run headless)."""
    try:
        return getpass.getpass(prompt)
    except StdinNotImplementedError:
        raise EOFError from None


@magics_class
class GuardMagics(SessionMagics):
    """The guards of this machine."""

    @readable_arguments(
        summary=N_(
            "List or stop the guards that --protect put in front of services on this machine."
        )
    )
    @argument("--list", action="store_true", help=N_("List the guards running on this machine."))
    @argument(
        "--stop",
        metavar="PORT",
        help=N_("Stop the guard listening on PORT ('all': every guard here)."),
    )
    @line_magic
    def scnet_guard(self, line: str = "") -> None:
        """List or stop the guards that ``--protect`` put in front of services on this machine.

        Examples::

            %scnet_guard --list      # also with no option
            %scnet_guard --stop 41234
            %scnet_guard --stop all  # every guard of this machine

        A guard is a process of its own: it keeps the service behind a password across kernel
        restarts, until it is stopped here, with ``scnet guard --stop PORT``, or the machine stops.
        From Python: ``scnet_magic.guard.list_guards()`` and ``stop_guard(port)``.
        """
        from ..guard import guard_lines, list_guards, stop_all_guards, stop_guard, stopped_line

        with self.user_errors():
            args = parse(self.scnet_guard, line)
            if args.list and args.stop is not None:
                raise UsageError(Message(N_("give either --list or --stop, not both")))
            if args.stop is None:
                print("\n".join(guard_lines(list_guards())))
            elif args.stop == "all":
                print(stopped_line(len(stop_all_guards())))
            else:
                try:  # as scnet guard --stop checks it: no "-3", no value quoted whole
                    port = validate_port(args.stop)
                except InvalidInput:
                    raise UsageError(
                        Message(
                            N_("--stop takes a guard's port or 'all', not {value}"),
                            value=shown_value(args.stop),
                        )
                    ) from None
                if not stop_guard(port):
                    raise UsageError(
                        Message(
                            N_("no guard runs on port {port}; %scnet_guard --list shows them"),
                            port=port,
                        )
                    )
                print(_("stopped the guard on port {port}").format(port=port))
