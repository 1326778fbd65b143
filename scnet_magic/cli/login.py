"""``scnet login``: sign in with an access key pair and save the region's token and address."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, TextIO

from .. import arguments, config, display, validation
from ..errors import ConfigError, InvalidInput, ScnetError
from ..i18n import N_, _
from .common import EXIT_INTERRUPTED, exit_code, report, show

if TYPE_CHECKING:
    from ..models import Menu


def add_login_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``scnet login`` on ``parser`` (a sub-command's parser)."""
    arguments.REGION.add_to(parser)
    arguments.USER.add_to(parser)
    parser.add_argument(
        "--secret-key-stdin",
        action="store_true",
        help=_("read the secret key from the first line of standard input"),
    )
    arguments.LOGIN_STATUS.add_to(parser)
    arguments.RENEW.add_to(parser)
    parser.add_argument(
        "--save",
        action="store_true",
        help=_(
            "save even a sign-in to a sandbox on this machine (by default only the platform's "
            "is saved: a sandbox's token is of no use once it stops)"
        ),
    )
    parser.add_argument("--json", action="store_true", help=_("print the result as JSON"))


def login_command(
    args: argparse.Namespace,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run ``scnet login`` with parsed ``args``; 0 done, 1 refused or failed, 2 usage error.

    Signing in saves the token, address, account and region (never a key) to the user config
    file, readable by its owner only; later commands use them from there.
    """
    from .. import account as accounts  # not at the top: the parser loads no HTTP stack

    stdin = stdin or sys.stdin
    try:
        if args.status and (args.renew or args.region or args.user or args.secret_key_stdin):
            raise InvalidInput(N_("--status takes no other option but --json"))
        if args.renew and (args.region or args.user or args.secret_key_stdin):
            raise InvalidInput(N_("--renew keeps the region and needs no keys; give it alone"))
        if args.status:
            return _status(args.json, stdout)
        if args.renew:
            path = config.save_config({"token": accounts.renew_in_force(config.resolve())})
            renewed = {"renewed": True, "saved_to": str(path)}
            show(args.json, renewed, _("Token renewed and saved."), stdout)
            return 0
        secret_key = _read_secret(stdin) if args.secret_key_stdin else None
        at_terminal = stdin.isatty()
        signed = accounts.sign_in(
            args.user,
            secret_key=secret_key,
            region=args.region,
            ask=_terminal_ask if at_terminal else None,
            menu=_terminal_menu(stdin, stdout) if at_terminal else None,
        )
        from ..local import sandbox_token  # psutil: not for every command's start

        if sandbox_token(signed.token) and not args.save:
            result = {**signed.to_dict(), "saved_to": None}
            note = _(
                "This is a sandbox on this machine: nothing was saved to {path}. Use the export "
                "lines the sandbox printed, or sign in again with --save to save anyway."
            ).format(path=config.config_path())
        else:
            path = config.save_config(signed.saved_settings())
            result = {**signed.to_dict(), "saved_to": str(path)}
            note = _("Saved to {path}.").format(path=path)
            warning = config.override_warning()
            if warning:
                print(warning, file=stderr)
        show(args.json, result, f"{signed.describe()}\n{note}", stdout)
        return 0
    except KeyboardInterrupt:
        # Ctrl-C at a prompt: the user changed their mind.
        print("\nscnet: " + _("cancelled; nothing was saved."), file=stderr)
        return EXIT_INTERRUPTED
    except ScnetError as exc:
        report(exc, stderr)
        return exit_code(exc)


def logout_command(args: argparse.Namespace) -> int:
    """``scnet logout``: remove the saved token and addresses from the config file."""
    path, removed = config.forget_sign_in()
    print(config.signed_out_text(path, removed))
    return 0


def _status(as_json: bool, stdout: TextIO | None) -> int:
    from .. import account as accounts

    settings = config.resolve()
    state = accounts.state_in_force(settings)
    saved = config.read_config_file()
    shown = {
        "signed_in": settings.token is not None,
        "user": saved.get("user"),
        "region": saved.get("region"),
        "base_url": settings.base_url,
        "ac_url": settings.ac_url,
        "login_url": settings.login_url,
        "token_source": settings.token_source,
        "token_valid": state.valid if state else None,
    }
    text = display.login_status_text(settings, None, state, saved, "scnet login")
    show(as_json, shown, text, stdout)
    return 0 if state is not None and state.valid else 1


def _read_secret(stdin: TextIO) -> str:
    line = stdin.readline()
    if not line.strip():
        raise InvalidInput(N_("--secret-key-stdin: standard input is empty"))
    return validation.validate_secret_key(line)


def _terminal_menu(stdin: TextIO, stdout: TextIO | None) -> Menu:
    """The numbered list of the account's regions, typed into at the terminal."""
    from ..account import pick_region

    def read_line(prompt: str) -> str:
        print(prompt, end="", file=stdout, flush=True)
        return stdin.readline()

    return lambda account: pick_region(account, read_line, lambda text: print(text, file=stdout))


def _terminal_ask(label: str, hidden: bool) -> str:
    try:
        prompt = _("SCNet {label}: ").format(label=label)
        return getpass.getpass(prompt) if hidden else input(prompt)
    except EOFError:
        raise ConfigError(N_("no SCNet {label} given"), label=label) from None
