"""What the front ends' argparse parsers share: ``type=`` callables made of
:mod:`scnet_magic.validation`'s checks, and a check of the words typed after an option.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import re
import unicodedata
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidInput
from .i18n import N_, _, ngettext
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


def values_given(words: list[str], flag: str, options: Collection[str]) -> list[str]:
    """What a flag that takes no value was given all the same: ``--flag=…``, or the word after
    it unless that word names one of ``options`` (a password may well start with "-"). For
    ``--protect``, whose value could only be a password: refused without quoting it."""
    given = [word.split("=", 1)[1] for word in words if word.startswith(flag + "=")]
    given += [
        after
        for word, after in itertools.pairwise(words)
        if word == flag and after.split("=", 1)[0] not in options
    ]
    return given


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


# Chinese typesetting never starts a line with closing punctuation, nor ends one with an
# opening bracket.
_NO_LINE_START = "，。、；：！？）》」』】,.;:!?)"
_NO_LINE_END = "（《「『【("


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` columns (a longer word alone on its line):
    broken at spaces, and between wide characters, as Chinese has no spaces (never before
    closing punctuation or after an opening bracket)."""
    pieces: list[tuple[str, str]] = []  # (what goes before it on a line, piece)
    for word in text.split():
        before = " "
        for part in re.findall(r"[^\u1100-\uffff]+|.", word):
            glued = (
                not before
                and pieces
                and (part[0] in _NO_LINE_START or pieces[-1][1][-1] in _NO_LINE_END)
            )
            if glued:
                pieces[-1] = (pieces[-1][0], pieces[-1][1] + part)
            else:
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


@dataclass(frozen=True)
class Option:
    """An option the magics and the ``scnet`` command both take: its flags, argparse's
    keywords, and its help, a catalog id written in the language of the moment it is shown."""

    flags: tuple[str, ...]
    help: str
    keywords: dict[str, Any] = field(default_factory=dict)

    def add_to(self, parser: argparse.ArgumentParser, **keywords: Any) -> None:
        """Declare it on a parser whose help is written now (the ``scnet`` command's)."""
        parser.add_argument(*self.flags, help=_(self.help), **(self.keywords | keywords))


def _flag(name: str, text: str) -> Option:
    return Option((name,), text, {"action": "store_true"})


PORT = Option(
    ("--port",), N_("Port the service listens on inside the instance."), {"metavar": "PORT"}
)
COMMAND = Option(
    ("--command",),
    N_(
        "Shell command that starts the service (quote it). Leave it out to reach a service "
        "that is already running."
    ),
    {"metavar": "CMD"},
)
WAIT = Option(
    ("--wait",),
    # The default (const=, config.DEFAULT_WAIT, which the front ends give) is written out so
    # that the text is one catalog entry.
    N_(
        "After starting, wait until the external URL answers (a gateway error such as 502 "
        "does not count), up to SECONDS (300 when left out). Ctrl-C, or interrupting the "
        "kernel, stops the wait; the start request is never sent again."
    ),
    {"nargs": "?", "type": seconds_argument, "metavar": "SECONDS"},
)
PROTECT = _flag(
    "--protect",
    N_(
        "Put a password in front of the external URL: a guard on this machine asks for it and "
        "passes visitors who know it to PORT. The password is asked for without echo (or taken "
        "from SCNET_GUARD_PASSWORD), never given as an argument. Run it inside the instance."
    ),
)
BOOT = Option(
    ("--boot",),
    N_(
        "If the instance is not running, start it first and wait until it runs, up to SECONDS "
        "(600 when left out; its status is shown as it goes), then start the service."
    ),
    {"nargs": "?", "const": True, "default": False, "type": seconds_argument, "metavar": "SECONDS"},
)
REPLACE = _flag(
    "--replace",
    N_(
        "If something already listens on PORT on this machine (an earlier run of the app), end "
        "it first; without this such a start is refused, since the new command would fail and "
        "the URL would show the old service."
    ),
)
DISCARD_ENV = _flag(
    "--discard-env",
    N_(
        "Do not keep the instance's environment (installed packages, files outside the shared "
        "storage) for the next start. Default: keep it."
    ),
)
YES = _flag("--yes", N_("Stop without asking for confirmation."))
STATUS = Option(
    ("--status",),
    N_(
        "Only instances in this state: Creating, Restarting, Running, Terminated, Failed or "
        "Shutting."
    ),
    {"metavar": "S"},
)
NAME = Option(("--name",), N_("Only instances whose name contains TEXT."), {"metavar": "TEXT"})
REGION = Option(
    ("--region",),
    N_(
        "Region to use: its name, a unique part of it (昆山), or its id. Default: the only "
        "region, or a choice among them when the account has several."
    ),
    {"metavar": "NAME_OR_ID"},
)
USER = Option(
    ("--user",),
    N_("Account name. Default: SCNET_USER, user in the config file, or a prompt."),
    {"metavar": "NAME"},
)
LOGIN_STATUS = _flag(
    "--status", N_("Show the account, region and address, and whether the token is still valid.")
)
RENEW = _flag("--renew", N_("Renew the current token instead."))
EXECUTE = _flag(
    "--execute",
    N_(
        "Run start commands for real on this machine (off: answer like the platform without "
        "running anything)."
    ),
)
WORKDIR = Option(("--workdir",), SANDBOX_WORKDIR_HELP)
