"""Reading a magic's line: words split as a shell splits them, errors that quote no value, and
the prompts and small checks the magics share."""

from __future__ import annotations

import argparse
import getpass
import shlex
from collections.abc import Callable
from typing import Any, TypeVar

from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.magic_arguments import argument
from traitlets import TraitError

from .. import validation
from ..config import Settings
from ..errors import ConfigError, InvalidInput
from ..i18n import _, ngettext

T = TypeVar("T")


# argparse type for --wait and --timeout: a positive number of seconds.
seconds = validation.seconds_argument

# The --id option of every magic that acts on one instance.
notebook_id_argument = argument(
    "--id",
    dest="notebook_id",
    metavar="ID",
    help="Notebook instance id (19 digits). Default: ScnetMagics.notebook_id or SCNET_NOTEBOOK_ID.",
)


def ask(label: str, hidden: bool) -> str:
    """Ask for a missing credential; hidden for the keys."""
    try:
        if hidden:
            return getpass.getpass(_("SCNet {label} (hidden): ").format(label=label))
        return input(_("SCNet {label}: ").format(label=label))
    except (EOFError, StdinNotImplementedError):
        raise ConfigError(
            _("no SCNet {label} is set, and this front end cannot ask for it").format(label=label),
            _(
                "Set SCNET_USER, SCNET_ACCESS_KEY and SCNET_SECRET_KEY, or put user, access_key "
                "and secret_key in the config file."
            ),
        ) from None


def saved_note() -> str:
    return _("Saved the token and address to {path} (readable by you only).")


def default_id(settings: Settings) -> str:
    if settings.notebook_id is None:
        raise InvalidInput(
            _("no notebook id"),
            _("Give --id, or set %config ScnetMagics.notebook_id or SCNET_NOTEBOOK_ID."),
        )
    return settings.notebook_id


def trait_value(check: Callable[[object], T], value: object) -> T | None:
    if value is None:
        return None
    try:
        return check(value)
    except InvalidInput as exc:
        raise TraitError(exc.message) from None


def parse(magic: Any, line: str) -> argparse.Namespace:
    # Split like a POSIX shell, so that --command "a b" gives a b without the quotes
    # (IPython's parse_argstring keeps them).
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(
            _("cannot read the magic line: {reason} (check the quotes)").format(reason=exc)
        ) from None
    parser = magic.parser
    args, extra = parser.parse_known_args(words)
    if extra:
        # IPython's help formatter lays the usage out as a reST block ("::", indented lines).
        usage = " ".join(parser.format_usage().replace("::", " ").split())
        raise UsageError(_unexpected(extra, _("usage: {usage}").format(usage=usage)))
    return args  # type: ignore[no-any-return]


def _unexpected(words: list[str], usage: str) -> str:
    """What is wrong with words the magic does not take, without quoting any value.

    argparse would list them all, and a stray word on the line may well be a token.
    """
    options = [word.split("=", 1)[0] for word in words if word.startswith("-")]
    if options:
        message = _("unknown option {option}; {usage}").format(option=options[0], usage=usage)
    else:
        count = len(words)
        message = ngettext(
            "{count} unexpected word on the line; {usage}",
            "{count} unexpected words on the line; {usage}",
            count,
        ).format(count=count, usage=usage)
    if any(option.startswith("--tok") for option in options):
        message += " " + _("The token is never given on the line: run %scnet_token.")
    return message
