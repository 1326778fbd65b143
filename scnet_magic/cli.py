"""The ``scnet`` command: the magics' powers from a shell, with the same client and renderings.

::

    scnet start --id ID --port PORT [--command CMD] [--wait [S]] [--json]
    scnet url --id ID [--json]
    scnet notebooks [--status S] [--name TEXT] [--json]
    scnet sandbox [--execute] [--port N]

Settings come from the same places as in the magics (``SCNET_*`` variables, the config file);
the token is never an argument, since arguments show in the process list and shell history:
it comes from ``SCNET_TOKEN``, the config file, or one line of standard input
(``--token-stdin``). Exit codes: 0 success (a pending start included), 1 the platform or the
network failed or the service was not ready in time, 2 bad usage or input (nothing was sent),
130 interrupted.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from . import __version__, config, display, i18n, models
from .client import ScnetClient
from .config import Settings
from .errors import ConfigError, InvalidInput, ScnetError
from .i18n import N_, _
from .models import StartResult
from .readiness import DEFAULT_TIMEOUT as DEFAULT_WAIT
from .readiness import WaitProgress

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell convention for SIGINT
STOPPED_WAITING = N_("stopped waiting; the service may still be starting.")


def _seconds(text: str) -> float:
    try:
        return models.validate_timeout(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


class _Formatter(argparse.HelpFormatter):
    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, _("usage: ") if prefix is None else prefix)


class _Parser(argparse.ArgumentParser):
    """argparse in the current language: its headings, its -h help and its error line.

    (argparse's own error texts, such as a missing required option, stay English.)
    """

    def __init__(self, *, add_help: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        parents = kwargs.pop("parents", [])
        super().__init__(add_help=False, **kwargs)
        self._positionals.title = _("positional arguments")
        self._optionals.title = _("options")
        if add_help:
            self.add_argument("-h", "--help", action="help", help=_("show this help and exit"))
        # After -h, as argparse does, so that -h comes first in the usage line.
        for parent in parents:
            self._add_container_actions(parent)
            self._defaults.update(parent._defaults)

    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        self.exit(
            EXIT_USAGE, _("{prog}: error: {message}").format(prog=self.prog, message=message) + "\n"
        )


def build_parser() -> argparse.ArgumentParser:
    """The command's parser, its help in the current language (see :mod:`scnet_magic.i18n`)."""
    # No abbreviated options: argparse quotes the value of an ambiguous one back (--t=…),
    # and a value on this command line may be a misplaced token.
    parser = _Parser(
        allow_abbrev=False,
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

    api = _Parser(add_help=False)
    api.add_argument(
        "--base-url",
        metavar="URL",
        help=_(
            "your region's API address (default: SCNET_BASE_URL, the config file, or {url})"
        ).format(url=config.DEFAULT_BASE_URL),
    )
    api.add_argument(
        "--timeout",
        type=_seconds,
        metavar="S",
        help=_("seconds to wait for each API answer (default {seconds})").format(
            seconds=f"{config.DEFAULT_TIMEOUT:g}"
        ),
    )
    api.add_argument(
        "--token-stdin",
        action="store_true",
        help=_("read the token from one line of standard input"),
    )
    api.add_argument("--json", action="store_true", help=_("print one JSON object"))
    notebook_id = _Parser(add_help=False)
    notebook_id.add_argument(
        "--id",
        dest="notebook_id",
        metavar="ID",
        help=_("notebook instance id, 19 digits (default: SCNET_NOTEBOOK_ID or the config file)"),
    )

    start = verbs.add_parser(
        "start",
        allow_abbrev=False,
        parents=[notebook_id, api],
        help=_("start a custom service and print its external URL"),
        description=_(
            "Start a custom service in a notebook instance and print its external URL. "
            "The start request is sent once, never repeated."
        ),
    )
    start.add_argument(
        "--port", required=True, metavar="PORT", help=_("port the service listens on")
    )
    start.add_argument(
        "--command",
        metavar="CMD",
        help=_("shell command that starts the service (leave it out to reach a running one)"),
    )
    start.add_argument(
        "--wait",
        nargs="?",
        const=DEFAULT_WAIT,
        type=_seconds,
        metavar="S",
        help=_(
            "then wait until the external URL answers (not with 502/503/504), up to S "
            "seconds (default {seconds}); exit 1 if it does not"
        ).format(seconds=f"{DEFAULT_WAIT:g}"),
    )
    verbs.add_parser(
        "url",
        allow_abbrev=False,
        parents=[notebook_id, api],
        help=_("print the status and external URL of the custom service"),
        description=_("Print the status and external URL of a notebook's custom service."),
    )
    notebooks = verbs.add_parser(
        "notebooks",
        allow_abbrev=False,
        parents=[api],
        help=_("list notebook instances (all pages)"),
        description=_("List notebook instances: id, name and status (every page)."),
    )
    notebooks.add_argument(
        "--status",
        metavar="S",
        help=_(
            "only instances in this state (Creating, Restarting, Running, Terminated, "
            "Failed, Shutting)"
        ),
    )
    notebooks.add_argument("--name", metavar="TEXT", help=_("only names containing TEXT"))
    from .login import add_login_arguments

    add_login_arguments(
        verbs.add_parser(
            "login",
            allow_abbrev=False,
            help=_("sign in with an access key pair; save the region's token and address"),
            description=_(
                "Sign in with an access key pair (SCNET_USER, SCNET_ACCESS_KEY, "
                "SCNET_SECRET_KEY or the config file), choose the region, find its address, and "
                "save the token and address (never a key) to the user config file."
            ),
        )
    )
    sandbox = verbs.add_parser(
        "sandbox",
        allow_abbrev=False,
        help=_("serve a local SCNet-compatible sandbox for trying things out"),
        description=_(
            "Serve the SCNet notebook API on loopback with a random token and print "
            "the export lines that point this shell at it. Ctrl-C stops it."
        ),
    )
    sandbox.add_argument(
        "--execute", action="store_true", help=_("really run start commands on this machine")
    )
    sandbox.add_argument("--port", type=int, default=0, help=_("port to listen on (default: any)"))
    return parser


def _language_option(words: list[str]) -> str | None:
    """The value of --lang, read before parsing: the parser's help is built in that language."""
    for index, word in enumerate(words):
        if word == "--lang" and index + 1 < len(words):
            return words[index + 1]
        if word.startswith("--lang="):
            return word.split("=", 1)[1]
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the ``scnet`` command; returns the exit code."""
    words = sys.argv[1:] if argv is None else argv
    if isinstance(sys.stdout, io.TextIOWrapper):
        # The platform's messages are Chinese. Where stdout cannot encode them (a Latin-1 or
        # ASCII locale, a Windows code page) print escapes: failing would hide a start that
        # was already sent.
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        language = i18n.resolve(_language_option(words))
    except InvalidInput as exc:
        _report(exc)
        return EXIT_USAGE
    with i18n.using(language):
        return _main(words)


def _main(words: list[str]) -> int:
    if any(_gives_a_token(word) for word in words):
        _report(
            InvalidInput(
                _(
                    "the token is never taken from the command line (it would show in the "
                    "process list and the shell history)"
                ),
                _("Set SCNET_TOKEN, put it in the config file, or pipe it in with --token-stdin."),
            )
        )
        return EXIT_USAGE
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(words)
        if extra:
            # argparse would echo them, and a stray word may well be a token pasted in the
            # wrong place: name options, not values.
            shown = " ".join(w.split("=", 1)[0] if w.startswith("-") else "…" for w in extra)
            parser.error(_("unrecognized arguments: {words}").format(words=shown))
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.verb == "login":
        from .login import login_command

        return login_command(args)
    if args.verb == "sandbox":
        from . import sandbox

        return sandbox.main([*(["--execute"] if args.execute else []), "--port", str(args.port)])
    verbs: dict[str, Callable[[argparse.Namespace], int]] = {
        "start": _start,
        "url": _url,
        "notebooks": _notebooks,
    }
    try:
        return verbs[args.verb](args)
    except ScnetError as exc:
        _report(exc)
        return EXIT_USAGE if isinstance(exc, (InvalidInput, ConfigError)) else EXIT_FAILED
    except KeyboardInterrupt:
        print("scnet: " + _("interrupted"), file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (scnet notebooks | head): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def _gives_a_token(word: str) -> bool:
    """``--token``, ``--token=…``, or a value given to ``--token-stdin`` or to a prefix of it
    (``--tok=…``): refused with the message that says where a token goes, before argparse
    (which, abbreviations being off, would only call the option unknown)."""
    name, has_value, _ = word.partition("=")
    if name == "--token":
        return True
    # "--t" could be --timeout too; from "--to" on, only --token-stdin starts so.
    return bool(has_value) and len(name) >= len("--to") and "--token-stdin".startswith(name)


# -- verbs ----------------------------------------------------------------------------------


def _start(args: argparse.Namespace) -> int:
    settings = _settings(args)
    notebook_id = _notebook_id(args, settings)
    models.start_body(notebook_id, args.port, args.command)  # bad input: nothing is sent
    with _client(settings) as client:
        started = time.monotonic()
        result = client.start_service(notebook_id, args.port, args.command)
        if args.wait is None:
            _print_result(result, args.json)
            return EXIT_OK
        progress = _Progress(sys.stderr, args.wait)
        try:
            progress.begin(result.url or _("the service"))
            ready = client.wait_until_ready(
                result,
                args.wait,
                command=args.command,
                since=started,
                on_progress=progress.update,
            )
        except ScnetError as exc:
            progress.end()
            _print_result(result, args.json)  # it did start: the URL may still help
            _report(exc)
            return EXIT_FAILED
        except KeyboardInterrupt:
            progress.end()
            _print_result(result, args.json)
            print("scnet: " + _(STOPPED_WAITING), file=sys.stderr)
            return EXIT_INTERRUPTED
        progress.end()
        _print_result(result.marked_ready(ready.elapsed), args.json)
        return EXIT_OK


def _url(args: argparse.Namespace) -> int:
    settings = _settings(args)
    notebook_id = models.validate_notebook_id(_notebook_id(args, settings))
    with _client(settings) as client:
        service = client.service_url(notebook_id)
    print(display.to_json(service.to_dict()) if args.json else display.service_url_text(service))
    return EXIT_OK


def _notebooks(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with _client(settings) as client:
        records = client.list_notebooks(status=args.status, name=args.name)
    print(display.to_json(records.to_dict()) if args.json else display.notebooks_text(records))
    return EXIT_OK


# -- helpers --------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    token = _token_from_stdin() if args.token_stdin else None
    return config.resolve(token=token, base_url=args.base_url, timeout=args.timeout)


def _token_from_stdin() -> str:
    line = sys.stdin.readline().rstrip("\r\n")
    if not line.strip():
        raise InvalidInput(
            _("--token-stdin: standard input has no token"),
            _("Pipe it in, e.g. scnet ... --token-stdin < token-file."),
        )
    return line


def _notebook_id(args: argparse.Namespace, settings: Settings) -> str:
    if args.notebook_id is not None:
        return str(args.notebook_id)
    if settings.notebook_id is None:
        raise InvalidInput(
            _("no notebook id"),
            _("Give --id, or set SCNET_NOTEBOOK_ID or notebook_id in the config file."),
        )
    return settings.notebook_id


def _client(settings: Settings) -> ScnetClient:
    if settings.token is None:
        raise ConfigError(
            _("No SCNET token is set."),
            _(
                "Set the SCNET_TOKEN environment variable, pipe it in with --token-stdin, "
                'or put token = "…" in {path}.'
            ).format(path=config.config_path()),
        )
    return ScnetClient(base_url=settings.base_url, token=settings.token, timeout=settings.timeout)


def _print_result(result: StartResult, as_json: bool) -> None:
    print(display.to_json(result.to_dict()) if as_json else display.start_text(result))


def _report(error: ScnetError) -> None:
    print(_("scnet: error: {message}").format(message=error.message), file=sys.stderr)
    if error.hint:
        print(_("hint: {hint}").format(hint=error.hint), file=sys.stderr)


class _Progress:
    """One status line on stderr, rewritten in place on a terminal; one line otherwise."""

    def __init__(self, stream: TextIO, timeout: float) -> None:
        self.stream = stream
        self.timeout = timeout
        self.in_place = stream.isatty()
        self.url = ""

    def begin(self, url: str) -> None:
        self.url = url
        self._write(display.waiting_text(url, self.timeout, None))

    def update(self, progress: WaitProgress) -> None:
        if self.in_place:
            self._write(display.waiting_text(self.url, self.timeout, progress))

    def end(self) -> None:
        if self.in_place:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def _write(self, line: str) -> None:
        if self.in_place:
            # A line wider than the terminal wraps, and "\r" would then rewrite only its end.
            width = shutil.get_terminal_size().columns - 1
            self.stream.write(f"\r\x1b[K{line[:width]}")
            self.stream.flush()
        else:
            print(line, file=self.stream, flush=True)
