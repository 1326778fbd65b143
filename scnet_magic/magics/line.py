"""Reading a magic's line: its help, words split as a shell splits them, errors that quote no
value, and the prompts the magics share."""

from __future__ import annotations

import argparse
import getpass
import inspect
import itertools
import re
import shlex
from collections.abc import Callable
from typing import Any

from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.magic_arguments import (
    MagicArgumentParser,
    MagicHelpFormatter,
    argument,
    real_name,
)

from .. import arguments, i18n
from ..errors import ConfigError, sentences
from ..i18n import N_, Message, _, ngettext


class _HelpFormatter(MagicHelpFormatter):
    """IPython's help layout without its reST: no "::" before the usage line, and an option's
    value written as in the usage line ("--wait [SECONDS]", not "--wait <[SECONDS]>")."""

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        argparse.RawDescriptionHelpFormatter.add_usage(
            self, usage, actions, groups, "%" if prefix is None else prefix
        )

    def _split_lines(self, text: str, width: int) -> list[str]:
        return arguments.wrap(text, width)  # by screen columns: Chinese characters take two

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings or action.nargs == 0:
            return str(super()._format_action_invocation(action))
        value = self._format_args(action, action.dest.upper())
        return ", ".join(f"{option} {value}" for option in action.option_strings)


def readable_arguments(summary: str) -> Callable[[Any], Any]:
    """IPython's ``@magic_arguments()``, with the help ``%magic?`` shows written as plain text
    (reST's "Examples::" and ``code`` marks read as noise in a notebook), in the session's
    language, and only when asked: IPython's own formats every magic's help at import, which
    ``%load_ext`` would pay for. ``summary`` is the magic's first line as a catalog entry: in
    Chinese, the help is that line, the docstring's examples, and the options translated."""

    def decorate(func: Any) -> Any:
        func.__doc__ = re.sub(r"``([^`]+)``", r"\1", func.__doc__).replace("::\n", ":\n")
        func.parser = _parser(func, summary)  # reads lines in any language
        # IPython's ? asks an object's getdoc() before its __doc__ (oinspect.getdoc): the full
        # help, usage and options included, is formatted then, in the language of that moment.
        func.getdoc = lambda: _parser(func, summary).format_help()
        return func

    return decorate


def _parser(func: Any, summary: str) -> MagicArgumentParser:
    """The magic's parser, its help in the current language: English as written, else the
    summary and the options from the catalog, with the docstring's examples (code reads the
    same in any)."""
    translated = i18n.current() != "en"
    description = func.__doc__
    if translated:
        examples = _examples(description)
        description = _(summary) + ("\n\n" + _("Examples:") + "\n\n" + examples if examples else "")
    parser = MagicArgumentParser(
        real_name(func), formatter_class=_HelpFormatter, description=description
    )
    # In the order the decorators appear in the source, as IPython adds them.
    for decorator in reversed(func.decorators):
        decorator.add_to_parser(parser, None)
    if translated:
        parser._optionals.title = _("options")
        for action in parser._actions:
            if action.help:
                action.help = _(action.help)
    return parser


def _examples(description: str) -> str:
    """The indented lines under "Examples:" in a magic's docstring, or ""."""
    lines = inspect.cleandoc(description).split("\n")
    if "Examples:" not in lines:
        return ""
    after = lines[lines.index("Examples:") + 1 :]
    block = itertools.takewhile(lambda line: not line.strip() or line.startswith(" "), after)
    return "\n".join(block).strip("\n")


def option(shared: arguments.Option, **keywords: Any) -> Any:
    """An option the ``scnet`` command takes too, as a magic's ``@argument``."""
    return argument(*shared.flags, help=shared.help, **(shared.keywords | keywords))


# The --id option of every magic that acts on one instance.
notebook_id_argument = argument(
    "--id",
    dest="notebook_id",
    metavar="ID",
    help=N_(
        "Notebook instance id (19 digits). Default: ScnetMagics.notebook_id or SCNET_NOTEBOOK_ID."
    ),
)


def ask(label: str, hidden: bool) -> str:
    """Ask for a missing credential; hidden for the keys. Ctrl-C propagates as
    KeyboardInterrupt, which the magic reports as cancelled."""
    try:
        if hidden:
            return getpass.getpass(_("SCNet {label} (hidden): ").format(label=label))
        return input(_("SCNet {label}: ").format(label=label))
    except (EOFError, StdinNotImplementedError):
        raise ConfigError(
            N_("no SCNet {label} is set, and this front end cannot ask for it"),
            N_(
                "Set SCNET_USER, SCNET_ACCESS_KEY and SCNET_SECRET_KEY, or put user, access_key "
                "and secret_key in the config file."
            ),
            label=label,
        ) from None


_FORGOTTEN = "# (line removed from the history: it held a value that may be a secret)"


def forget_input(shell: Any, words: list[str]) -> None:
    """Take every input that contains one of ``words`` out of the session's history: ``In`` /
    ``_ih``, the ``_i`` variables, and the history database (whatever it already saved)."""

    def holds(text: object) -> bool:
        return isinstance(text, str) and any(word in text for word in words)

    history = shell.history_manager
    for inputs in (history.input_hist_parsed, history.input_hist_raw):
        inputs[:] = [_FORGOTTEN if holds(text) else text for text in inputs]
    for name in ("_i", "_ii", "_iii", "_i00"):
        if holds(getattr(history, name, None)):
            setattr(history, name, _FORGOTTEN)
    for name, value in list(shell.user_ns.items()):
        if name.startswith("_i") and holds(value):
            shell.user_ns[name] = _FORGOTTEN
    if not history.enabled:
        return
    with history.db_input_cache_lock:
        history.db_input_cache = [
            (number, *(_FORGOTTEN if holds(text) else text for text in texts))
            for number, *texts in history.db_input_cache
        ]
    # What the saving thread already wrote is in the database: overwrite it there.
    with history.db:
        found = history.db.execute(
            "SELECT line, source, source_raw FROM history WHERE session = ?",
            (history.session_number,),
        )
        for number, source, raw in list(found):  # a cursor, or a list without sqlite
            if holds(source) or holds(raw):
                history.db.execute(
                    "UPDATE history SET source = ?, source_raw = ? WHERE session = ? AND line = ?",
                    (_FORGOTTEN, _FORGOTTEN, history.session_number, number),
                )


# What shlex says of a line it cannot split: its own words in English, translated otherwise.
_SPLIT_ERRORS = frozenset({N_("No closing quotation"), N_("No escaped character")})


def split(line: str) -> list[str]:
    """The line's words as a POSIX shell splits them: --command "a b" gives a b without the
    quotes (IPython's parse_argstring keeps them), and an unquoted # starts a comment that runs
    to the end of the line, so ``%scnet_login  # sign in`` reads as ``%scnet_login``."""
    try:
        return shlex.split(line, comments=True)
    except ValueError as exc:
        reason = _(str(exc)) if str(exc) in _SPLIT_ERRORS else str(exc)
        raise UsageError(
            Message(N_("cannot read the magic line: {reason} (check the quotes)"), reason=reason)
        ) from None


def parse(magic: Any, line: str | list[str]) -> argparse.Namespace:
    """The magic's arguments from its line, or from the line's words already split."""
    words = split(line) if isinstance(line, str) else line
    parser = magic.parser
    with arguments.argparse_speaking():
        args, extra = parser.parse_known_args(words)
    if extra:
        usage = " ".join(parser.format_usage().split())  # on one line
        if any(word in ("-h", "--help") for word in extra):
            # A shell habit; in IPython a magic's help is asked with "?".
            raise UsageError(
                Message(
                    N_("%{magic}? shows the help; usage: {usage}"), magic=parser.prog, usage=usage
                )
            )
        message = _unexpected(extra, _("usage: {usage}").format(usage=usage))
        commanded = any(word.split("=", 1)[0] == "--command" for word in words)
        if commanded and not any(word.startswith("-") for word in extra):
            # The usual cause: --command python app.py, where only "python" is the command.
            message = sentences(
                message,
                _(
                    'Quote the command (--command "python app.py --port 7860"), or put it in '
                    "the cell under %%scnet_start."
                ),
            )
        raise UsageError(message)
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
        message = sentences(message, _("The token is never given on the line: run %scnet_token."))
    return message
