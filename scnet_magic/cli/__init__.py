"""The ``scnet`` command: the magics' powers from a shell, with the same client and renderings.

Settings come from the same places as in the magics (``SCNET_*`` variables, the config file);
the token is never an argument, since arguments show in the process list and shell history:
it comes from ``SCNET_TOKEN``, the config file, or one line of standard input
(``--token-stdin``). Exit codes: 0 success (a pending start included), 1 the platform or the
network failed or the service was not ready in time, 2 bad usage or input (nothing was sent),
130 interrupted, 141 the reader of the output went away (``scnet notebooks | head``).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from typing import Any, NoReturn

from .. import arguments, config, i18n
from .._version import __version__
from ..config import DEFAULT_WAIT
from ..errors import ConfigError, InvalidInput, ScnetError, as_sentence
from ..i18n import N_, _
from .common import EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, EXIT_USAGE, PASSWORD_HINT, exit_code, report

__all__ = ["build_parser", "main"]

# The verbs that act on one instance (--id), and those that call the platform (its address,
# timeout, token and --json).
WITH_ID = ("start", "stop", "url", "doctor")
WITH_API = (*WITH_ID, "notebooks")


class _Formatter(arguments.ColumnsHelpFormatter):
    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, _("usage: ") if prefix is None else prefix)


class _Parser(argparse.ArgumentParser):
    """argparse in the current language: its headings, its -h help, its messages."""

    def __init__(self, **kwargs: Any) -> None:
        # No abbreviated options, for every verb's parser too (add_subparsers makes them of
        # this class): argparse quotes the value of an ambiguous one back (--t=…), and a value
        # on this command line may be a misplaced token.
        super().__init__(formatter_class=_Formatter, allow_abbrev=False, add_help=False, **kwargs)
        self._positionals.title = _("positional arguments")
        self._optionals.title = _("options")
        self.add_argument("-h", "--help", action="help", help=_("show this help and exit"))

    def parse_known_args(self, *args: Any, **kwargs: Any) -> Any:
        with arguments.argparse_speaking():
            return super().parse_known_args(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        text = _("{prog}: error: {message}").format(prog=self.prog, message=as_sentence(message))
        self.exit(EXIT_USAGE, text + "\n")


def build_parser() -> argparse.ArgumentParser:
    """The command's parser, its help in the current language (see :mod:`scnet_magic.i18n`)."""
    parser = _Parser(
        prog="scnet",
        description=_("Start and reach custom services in SCNet notebook instances."),
        epilog=_(
            "The token comes from SCNET_TOKEN, the config file or --token-stdin; "
            "it is never accepted as an argument. 'scnet COMMAND --help' describes each command."
        ),
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"scnet {__version__}",
        help=_("show the version and exit"),
    )
    parser.add_argument(
        "--lang",
        metavar="LANG",
        help=_(
            "language of messages and help: en or zh (default: SCNET_LANG, the config file, "
            "then the locale)"
        ),
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    # Each verb: its line in the list of commands, its description, what its help ends with.
    texts = {
        "start": (
            _("start a custom service and print its external URL"),
            _(
                "Start a custom service in a notebook instance and print its external URL. "
                "The start request is sent once, never repeated."
            ),
            (
                "scnet start --id 1896050410550136833 --port 7860",
                'scnet start --port 7860 --command "python app.py" --wait',
                "scnet start --port 7860 --boot --protect --replace",
            ),
        ),
        "stop": (
            _("stop a notebook instance (every process in it ends)"),
            _(
                "Stop a notebook instance: every process in it ends, its services and "
                "kernels too, and it stops costing card-hours. Asks you to type the "
                "instance's name unless --yes; keeps its environment unless --discard-env."
            ),
            ("scnet stop --id 1896050410550136833", "scnet stop --yes --discard-env"),
        ),
        "url": (
            _("print the status and external URL of the custom service"),
            _("Print the status and external URL of a notebook's custom service."),
            ("scnet url --id 1896050410550136833", "scnet url --json"),
        ),
        "notebooks": (
            _("list notebook instances (all pages)"),
            _("List notebook instances: id, name and status (every page)."),
            ("scnet notebooks --status Running", "scnet notebooks --name demo --json"),
        ),
        "login": (
            _("sign in with an access key pair; save the region's token and address"),
            _(
                "Sign in with an access key pair (SCNET_USER, SCNET_ACCESS_KEY, "
                "SCNET_SECRET_KEY or the config file), choose the region, find its address, and "
                "save the token and address (never a key) to the user config file."
            ),
            ("scnet login", "scnet login --region 昆山 --save", "scnet login --status"),
        ),
        "logout": (
            _("remove the saved token and addresses from the user config file"),
            _(
                "Remove what scnet login saved (token, addresses, account, region) from the "
                "user config file, keeping everything else in it, and say what was removed."
            ),
            ("scnet logout",),
        ),
        "sandbox": (
            _("serve a local SCNet-compatible sandbox for trying things out"),
            _(
                "Serve the SCNet notebook API on loopback with a random token and print "
                "the export lines that point this shell at it. Ctrl-C stops it."
            ),
            ("scnet sandbox --execute", "scnet sandbox --execute --workdir ~/app"),
        ),
        "guard": (
            _("put a password in front of a service of this machine; list or stop guards"),
            _(
                "A guard listens on a port of its own and lets through to 127.0.0.1:PORT only "
                "visitors who know the password (a login page, or HTTP Basic). "
                "'scnet start --protect' starts one for you."
            ),
            ("scnet guard --port 7860", "scnet guard --list", "scnet guard --stop all"),
        ),
        "doctor": (
            _("check the settings, the platform's answers and the guards (read-only)"),
            _(
                "Check where each setting comes from, the clock, the token, the region's "
                "address, a notebook list call and the guards; nothing is started, stopped or "
                "renewed. Exit 0 when every check passes, 1 when one fails."
            ),
            ("scnet doctor", "scnet doctor --id 1896050410550136833 --report"),
        ),
    }
    made = {}
    for name, (line, description, examples) in texts.items():
        epilog = "\n".join([_("Examples:"), *(f"  {example}" for example in examples)])
        verb = made[name] = verbs.add_parser(
            name, help=line, description=description, epilog=epilog
        )
        if name in WITH_ID:
            verb.add_argument(
                "--id",
                dest="notebook_id",
                metavar="ID",
                help=_(
                    "notebook instance id, 19 digits (default: SCNET_NOTEBOOK_ID or the config "
                    "file)"
                ),
            )
        if name in WITH_API:
            verb.add_argument(
                "--base-url",
                metavar="URL",
                help=_(
                    "your region's API address (default: SCNET_BASE_URL, the config file, or {url})"
                ).format(url=config.DEFAULT_BASE_URL),
            )
            verb.add_argument(
                "--timeout",
                type=arguments.seconds_argument,
                metavar="S",
                help=_("seconds to wait for each API answer (default {seconds})").format(
                    seconds=f"{config.DEFAULT_TIMEOUT:g}"
                ),
            )
            verb.add_argument(
                "--token-stdin",
                action="store_true",
                help=_("read the token from one line of standard input"),
            )
            verb.add_argument("--json", action="store_true", help=_("print one JSON object"))

    start = made["start"]
    arguments.PORT.add_to(start, required=True)
    arguments.COMMAND.add_to(start)
    arguments.WAIT.add_to(start, const=DEFAULT_WAIT)
    arguments.PROTECT.add_to(start)
    start.add_argument(
        "--password-stdin",
        action="store_true",
        help=_(
            "with --protect: read the password from a line of standard input (after the "
            "token's line with --token-stdin) instead of SCNET_GUARD_PASSWORD or a prompt"
        ),
    )
    arguments.BOOT.add_to(start)
    arguments.REPLACE.add_to(start)
    arguments.DISCARD_ENV.add_to(made["stop"])
    arguments.YES.add_to(made["stop"])
    arguments.STATUS.add_to(made["notebooks"])
    arguments.NAME.add_to(made["notebooks"])
    login = made["login"]
    arguments.REGION.add_to(login)
    arguments.USER.add_to(login)
    login.add_argument(
        "--secret-key-stdin",
        action="store_true",
        help=_("read the secret key from the first line of standard input"),
    )
    arguments.LOGIN_STATUS.add_to(login)
    arguments.RENEW.add_to(login)
    login.add_argument(
        "--save",
        action="store_true",
        help=_(
            "save even a sign-in to a sandbox on this machine (by default only the platform's "
            "is saved: a sandbox's token is of no use once it stops)"
        ),
    )
    login.add_argument("--json", action="store_true", help=_("print the result as JSON"))
    arguments.EXECUTE.add_to(made["sandbox"])
    made["sandbox"].add_argument(
        "--port",
        type=arguments.listen_port_argument,
        default=0,
        help=_("port to listen on (default: any)"),
    )
    arguments.WORKDIR.add_to(made["sandbox"])

    guard = made["guard"]
    action = guard.add_mutually_exclusive_group(required=True)
    action.add_argument(
        "--port", metavar="P", help=_("put a password in front of the service on port P")
    )
    action.add_argument("--list", action="store_true", help=_("list the guards running here"))
    action.add_argument(
        "--stop", metavar="G", help=_("stop the guard on port G ('all': every guard here)")
    )
    guard.add_argument(
        "--listen-port",
        type=arguments.listen_port_argument,
        default=0,
        metavar="G",
        help=_("port the guard listens on (default: any free port)"),
    )
    guard.add_argument("--host", help=_("address the guard listens on (default: all)"))
    guard.add_argument(
        "--password-stdin",
        action="store_true",
        help=_("read the password from one line of standard input instead of asking"),
    )
    guard.add_argument("--json", action="store_true", help=_("print one JSON object"))

    made["doctor"].add_argument(
        "--report",
        nargs="?",
        const="scnet-doctor.json",
        metavar="FILE",
        help=_(
            "also write the shapes of the answers seen (never a value) to FILE "
            "(default {file}), to attach to a bug report"
        ).format(file="scnet-doctor.json"),
    )
    return parser


def _language_option(words: list[str]) -> tuple[str | None, list[str]]:
    """The value of --lang, read before parsing (the parser's help is built in that language),
    and the words without it: --lang is taken before or after the command
    (``scnet url --lang zh`` as well as ``scnet --lang zh url``)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    parser.add_argument("--lang")
    try:
        known, rest = parser.parse_known_args(words)
    except argparse.ArgumentError:  # --lang without a value: the full parser says so
        return None, words
    return known.lang, rest


def main(argv: list[str] | None = None) -> int:
    """Run the ``scnet`` command; returns the exit code."""
    words = sys.argv[1:] if argv is None else argv
    if isinstance(sys.stdout, io.TextIOWrapper):
        # The platform's messages are Chinese. Where stdout cannot encode them (a Latin-1 or
        # ASCII locale, a Windows code page) print escapes: failing would hide a start that
        # was already sent.
        sys.stdout.reconfigure(errors="backslashreplace")
    chosen, words = _language_option(words)
    try:
        language = config.resolve_language(chosen)
    except InvalidInput as exc:
        report(exc)
        return EXIT_USAGE
    except ConfigError:
        # A config file that cannot be read: --help, --version and the verbs that need no
        # settings still work, and each verb that reads it says so in one line (exit 2).
        language = i18n.known(chosen) or i18n.environment_language()
    try:
        with i18n.using(language):
            code = _main(words)
        # Written out here, not at exit, so that a reader that went away is noticed below.
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (scnet notebooks | head): stop quietly, as a command killed by
        # SIGPIPE does, and keep Python from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code


def _main(words: list[str]) -> int:
    parser = build_parser()
    try:
        if any(_gives_a_token(word) for word in words):
            raise InvalidInput(
                N_(
                    "the token is never taken from the command line (it would show in the "
                    "process list and the shell history)"
                ),
                N_("Set SCNET_TOKEN, put it in the config file, or pipe it in with --token-stdin."),
            )
        options, flags = _options(parser)
        # --protect=… or --protect VALUE: refused before argparse, which would echo the password.
        if arguments.values_given(words, "--protect", options):
            raise InvalidInput(
                N_(
                    "--protect takes no value: the password is never an argument (it would show "
                    "in the process list and the shell history)"
                ),
                PASSWORD_HINT,
            )
        # A value given to a flag (--password-stdin=…): argparse would echo it, and it may well
        # be the secret the flag reads from standard input.
        named = (word.partition("=") for word in words)
        flag = next((name for name, given, _ in named if given and name in flags), None)
        if flag is not None:
            raise InvalidInput(
                N_("{option} takes no value; nothing was sent"),
                N_(
                    "A secret given there is in the shell history all the same: choose another. "
                    "Secrets come in on standard input, never on the command line."
                ),
                option=flag,
            )
        try:
            args, extra = parser.parse_known_args(words)
            if extra:
                # argparse would echo them, and a stray word may well be a token pasted in the
                # wrong place: name options, not values.
                shown = " ".join(w.split("=", 1)[0] if w.startswith("-") else "…" for w in extra)
                parser.error(_("unrecognized arguments: {words}").format(words=shown))
        except SystemExit as exc:  # --help, --version, or a usage error already printed
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        from . import verbs  # here, not at the top: --help and --version load no HTTP stack

        return verbs.VERBS[args.verb](args)
    except ScnetError as exc:
        report(exc)
        return exit_code(exc)
    except KeyboardInterrupt:
        print("scnet: " + _("interrupted"), file=sys.stderr)
        return EXIT_INTERRUPTED


def _options(parser: argparse.ArgumentParser) -> tuple[set[str], set[str]]:
    """Every option string of every verb, and those of them that take no value."""
    actions = list(parser._actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            actions += [each for verb in action.choices.values() for each in verb._actions]
    every = {name for action in actions for name in action.option_strings}
    return every, {
        name for action in actions if action.nargs == 0 for name in action.option_strings
    }


def _gives_a_token(word: str) -> bool:
    """``--token``, ``--token=…``, or a value given to ``--token-stdin`` or to a prefix of it
    (``--tok=…``): refused with the message that says where a token goes, before argparse
    (which, abbreviations being off, would only call the option unknown)."""
    name, has_value, _ = word.partition("=")
    if name == "--token":
        return True
    # "--t" could be --timeout too; from "--to" on, only --token-stdin starts so.
    return bool(has_value) and len(name) >= len("--to") and "--token-stdin".startswith(name)
