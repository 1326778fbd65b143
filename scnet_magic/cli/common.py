"""What every ``scnet`` verb shares: exit codes, reporting an error, settings from the
command line."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TextIO

from .. import arguments, config
from ..config import Settings
from ..errors import ConfigError, InvalidInput, ScnetError, as_sentence
from ..i18n import N_, _

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell convention for SIGINT
EXIT_BROKEN_PIPE = 141  # the shell convention for SIGPIPE: the reader went away


# argparse type for --wait and --timeout: a positive number of seconds.
seconds = arguments.seconds_argument
# argparse type for --port of a server: 0 (any free one) or 1 to 65535.
listen_port = arguments.listen_port_argument


def report(error: ScnetError, stderr: TextIO | None = None) -> None:
    """An error as one line on stderr, and its hint on the next."""
    stderr = stderr or sys.stderr
    print(_("scnet: error: {message}").format(message=as_sentence(error.message)), file=stderr)
    if error.hint:
        print(_("hint: {hint}").format(hint=as_sentence(error.hint)), file=stderr)


def note(sentence: str, stderr: TextIO | None = None) -> None:
    """A sentence on stderr after "scnet: ", lower-cased as such lines are written."""
    print("scnet: " + sentence[:1].lower() + sentence[1:], file=stderr or sys.stderr)


def exit_code(error: ScnetError) -> int:
    """2 for bad input or missing settings (nothing was sent), 1 for everything else."""
    return EXIT_USAGE if isinstance(error, (InvalidInput, ConfigError)) else EXIT_FAILED


def settings_of(args: argparse.Namespace) -> Settings:
    """The settings for a verb: its options first, then the environment and config file."""
    token = token_from_stdin() if getattr(args, "token_stdin", False) else None
    return config.resolve(
        token=token,
        base_url=getattr(args, "base_url", None),
        timeout=getattr(args, "timeout", None),
    )


def token_from_stdin() -> str:
    if sys.stdin.isatty():
        # Typed or pasted at a terminal: ask without echoing it, as %scnet_token does.
        try:
            line = getpass.getpass(_("SCNET token (hidden): "))
        except EOFError:
            line = ""
    else:
        line = sys.stdin.readline().rstrip("\r\n")
    if not line.strip():
        raise InvalidInput(
            N_("--token-stdin: standard input has no token"),
            N_("Pipe it in, e.g. scnet ... --token-stdin < token-file."),
        )
    return line
