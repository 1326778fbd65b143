"""What the front ends' argument parsers share: ``type=`` callables for argparse, and a check
of the words typed after an option. The magics, the ``scnet`` command and the sandbox's command
all parse words with argparse; each check is :mod:`scnet_magic.validation`'s, its message
turned into the usage error argparse reports.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import unicodedata
from collections.abc import Iterator

from .errors import InvalidInput
from .i18n import N_, _, ngettext
from .validation import validate_port, validate_timeout

# The one rule for where a sandbox runs commands, the same for every way of starting one.
SANDBOX_WORKDIR_HELP = N_(
    "folder start commands run in (default: the current folder when the sandbox starts)"
)


def seconds_argument(text: str) -> float:
    """``validate_timeout`` as an argparse ``type`` (``--wait``, ``--timeout``): argparse
    reports the message as a usage error."""
    try:
        return validate_timeout(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def listen_port_argument(text: str) -> int:
    """argparse ``type`` for a port to listen on (``scnet sandbox --port``, ``python -m
    scnet_magic.sandbox --port``): 0 for any free one, or 1 to 65535. Checked here so that a
    port out of range is a usage error, not ``bind()``'s ``OverflowError``."""
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


def columns(text: str) -> int:
    """How many terminal columns ``text`` takes: a wide character (Chinese) two, a combining
    mark none, anything else one."""
    return sum(
        2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1
        for c in text
    )


def fit(line: str, width: int) -> str:
    """The start of ``line`` that takes at most ``width`` columns."""
    used = 0
    for index, char in enumerate(line):
        used += columns(char)
        if used > width:
            return line[:index]
    return line


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` columns (a longer word alone on its line):
    broken at spaces, and between wide characters, as Chinese has no spaces."""
    pieces: list[tuple[str, str]] = []  # (what goes before it on a line, piece)
    for word in text.split():
        before = " "
        for part in re.findall(r"[^\u1100-\uffff]+|.", word):
            pieces.append((before, part))
            before = ""
    lines: list[str] = []
    line = ""
    for before, piece in pieces:
        if line and columns(line + before + piece) > width:
            lines.append(line)
            line = piece
        else:
            line = line + before + piece if line else piece
    return [*lines, line] if line else lines


class ColumnsHelpFormatter(argparse.HelpFormatter):
    """argparse's help wrapped by terminal columns rather than characters, so that Chinese
    help fits the screen; indented lines of a description or epilog (examples) kept as
    written."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return wrap(text, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines: list[str] = []
        for paragraph in text.splitlines():
            if paragraph.startswith(" ") or not paragraph:
                lines.append(indent + paragraph if paragraph else "")
            else:
                lines += [indent + line for line in wrap(paragraph, width - len(indent))]
        return "\n".join(lines)


# argparse's own messages that a user can meet, named here so that the catalog has them.
ARGPARSE_MESSAGES = (
    N_("the following arguments are required: %s"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("expected one argument"),
    N_("expected at most one argument"),
    N_("expected at least one argument"),
    N_("ignored explicit argument %r"),
    N_("not allowed with argument %s"),
    N_("one of the arguments %s is required"),
    N_("invalid %(type)s value: %(value)r"),
    N_("unrecognized arguments: %s"),
    N_("show this help message and exit"),
)


@contextlib.contextmanager
def argparse_speaking() -> Iterator[None]:
    """argparse's own messages ("the following arguments are required", "invalid choice",
    "expected one argument") in the current language while the block parses: argparse takes
    them from :func:`gettext.gettext`, bound at its import, which reads no catalog of ours."""
    saved = argparse._, argparse.ngettext  # type: ignore[attr-defined]
    argparse._, argparse.ngettext = _, ngettext  # type: ignore[attr-defined]
    try:
        yield
    finally:
        argparse._, argparse.ngettext = saved  # type: ignore[attr-defined]
