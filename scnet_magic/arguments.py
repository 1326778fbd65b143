"""What the front ends' argparse parsers share: ``type=`` callables made of
:mod:`scnet_magic.validation`'s checks, and a check of the words typed after an option.
"""

from __future__ import annotations

import argparse

from .errors import InvalidInput
from .i18n import N_
from .validation import validate_port, validate_timeout

# The one rule for where a sandbox runs commands, the same for every way of starting one.
SANDBOX_WORKDIR_HELP = N_(
    "folder start commands run in (default: the current folder when the sandbox starts)"
)


def seconds_argument(text: str) -> float:
    """``validate_timeout`` as an argparse ``type`` (``--wait``, ``--timeout``)."""
    try:
        return validate_timeout(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def listen_port_argument(text: str) -> int:
    """argparse ``type`` for a port to listen on: 0 for any free one, or 1 to 65535 (a usage
    error, not ``bind()``'s ``OverflowError``)."""
    if text.strip() == "0":
        return 0
    try:
        return validate_port(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def gives_a_value(words: list[str], option: str) -> bool:
    """Whether a flag that takes no value was given one: ``--flag=…``, or a word after it that
    is not an option. For ``--protect``, whose value could only be a password: refused with
    a message that quotes nothing (argparse would quote it)."""
    for index, word in enumerate(words):
        if word.startswith(option + "="):
            return True
        if word == option and index + 1 < len(words) and not words[index + 1].startswith("-"):
            return True
    return False
