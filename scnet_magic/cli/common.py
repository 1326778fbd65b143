"""What the ``scnet`` parser and its verbs share: exit codes, and how a result or an error
is printed."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TextIO

from .. import display
from ..errors import ConfigError, InvalidInput, ScnetError, as_sentence
from ..i18n import N_, _

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell convention for SIGINT
EXIT_BROKEN_PIPE = 141  # the shell convention for SIGPIPE: the reader went away

PASSWORD_HINT = N_(
    "Set SCNET_GUARD_PASSWORD, type it at the hidden prompt, or pipe it in with --password-stdin."
)


def report(error: ScnetError, stderr: TextIO | None = None) -> None:
    """An error as one line on stderr, and its hint on the next."""
    stderr = stderr or sys.stderr
    print(_("scnet: error: {message}").format(message=as_sentence(error.message)), file=stderr)
    if error.hint:
        print(_("hint: {hint}").format(hint=as_sentence(error.hint)), file=stderr)


def show(
    as_json: bool, data: Mapping[str, object], text: str, stdout: TextIO | None = None
) -> None:
    """A verb's result: ``data`` as one JSON object with --json, else ``text``."""
    print(display.to_json(data) if as_json else text, file=stdout)


def exit_code(error: ScnetError) -> int:
    """2 for bad input or missing settings (nothing was sent), 1 for everything else."""
    return EXIT_USAGE if isinstance(error, (InvalidInput, ConfigError)) else EXIT_FAILED
