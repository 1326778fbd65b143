"""What each ``scnet`` verb does, in a function of its name; loaded only once a verb runs,
since it brings in the HTTP stack."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any, TextIO

from .. import account as accounts
from .. import config, display, service, validation
from .. import guard as guards
from ..client import ScnetClient
from ..config import Settings
from ..errors import ConfigError, InvalidInput, ScnetError
from ..i18n import N_, Message, _
from ..local import sandbox_token
from ..models import Menu
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, PASSWORD_HINT, exit_code, report, show

# How to give a notebook id, in the command's terms, for service.prepare and notebook_id_for.
ID_HINTS = {
    "no_id_hint": N_("Give --id, or set SCNET_NOTEBOOK_ID or notebook_id in the config file."),
    "newcomer_hint": N_("To try things without an account, run scnet sandbox --execute."),
}
LIST_HINT = N_("See scnet guard --list.")
NO_TOKEN_HINT = N_(
    "Sign in with scnet login, or give a token with SCNET_TOKEN, --token-stdin or "
    'token = "…" in {path}. To try things without an account, run scnet sandbox --execute.'
)


def start(args: argparse.Namespace) -> int:
    settings = _settings(args)
    # Bad input is reported before the token is looked at: nothing is sent.
    request = service.prepare(settings, args.notebook_id, args.port, args.command, **ID_HINTS)
    if not args.protect and args.password_stdin:
        raise InvalidInput(N_("--password-stdin goes with --protect"))
    password = (
        _password(args.password_stdin, N_("no password for --protect")) if args.protect else None
    )
    with _client(settings) as client:
        shown = service.StartLine(sys.stderr, request, args.wait)
        try:
            result = service.start(
                request,
                client,
                wait=args.wait,
                boot=args.boot,
                protect=shown.line.prompting(password),
                observer=shown,
                replace=args.replace,
            )
        except ScnetError as exc:
            shown.line.end()
            if exc.result is None:
                raise
            # It did start: the URL may still help.
            show(args.json, exc.result.to_dict(), display.start_text(exc.result))
            report(exc)
            return EXIT_FAILED
        except service.StartInterrupted as stopped:
            shown.line.end()
            if stopped.result is None:
                _note(str(service.interrupted_text(stopped, "scnet url")))
            else:
                show(args.json, stopped.result.to_dict(), display.start_text(stopped.result))
                _note(_(service.STOPPED_WAITING))
            return EXIT_INTERRUPTED
    shown.line.end()
    show(args.json, result.to_dict(), display.start_text(result))
    return EXIT_OK


def url(args: argparse.Namespace) -> int:
    settings = _settings(args)
    notebook_id = service.notebook_id_for(settings, args.notebook_id, **ID_HINTS)
    with _client(settings) as client:
        found = service.service_url(client, notebook_id)
    show(args.json, found.to_dict(), display.service_url_text(found))
    return EXIT_OK


def notebooks(args: argparse.Namespace) -> int:
    with _client(_settings(args)) as client:
        records = service.notebooks(client, status=args.status, name=args.name)
    show(args.json, records.to_dict(), display.notebooks_text(records))
    return EXIT_OK


def stop(args: argparse.Namespace) -> int:
    """Stop an instance, after the user types its name (unless --yes)."""
    settings = _settings(args)
    notebook_id = service.notebook_id_for(settings, args.notebook_id, **ID_HINTS)
    with _client(settings) as client:
        if not args.yes and not _confirmed(client, notebook_id):
            print("scnet: " + _("Not stopped."), file=sys.stderr)
            return EXIT_FAILED
        result = client.stop_notebook(notebook_id, save_env=not args.discard_env)
    show(args.json, result.to_dict(), display.stop_text(result))
    return EXIT_OK


def _confirmed(client: ScnetClient, notebook_id: str) -> bool:
    """Whether the user typed the instance's name (or its id, if it has none) at the prompt."""
    record = client.notebook(notebook_id)
    expected = record.name or notebook_id
    print(display.stop_warning(record.name, notebook_id, kernel=False), file=sys.stderr)
    prompt = _("Type the instance's name ({name}) to stop it: ").format(name=expected)
    print(prompt, end="", file=sys.stderr, flush=True)
    typed = sys.stdin.readline()
    if not sys.stdin.isatty():
        print(file=sys.stderr)  # what was piped in is not echoed: end the prompt's line
    return typed.strip() == expected


def doctor(args: argparse.Namespace) -> int:
    from ..doctor import diagnose, report_path

    report = None if args.report is None else report_path(args.report)
    settings = _settings(args)
    explicit = {"base_url": args.base_url, "timeout": args.timeout}
    if args.token_stdin:
        explicit["token"] = settings.token
    notebook_id = settings.notebook_id
    if args.notebook_id is not None:
        notebook_id = validation.validate_notebook_id(args.notebook_id)
    diagnosis = diagnose(settings, explicit=explicit, notebook_id=notebook_id)
    checks = [vars(check) for check in diagnosis.checks]
    show(args.json, {"passed": diagnosis.passed, "checks": checks}, "\n".join(diagnosis.lines()))
    if report is not None:
        diagnosis.write_report(report)
        # On stderr: with --json, stdout holds the one JSON object.
        print(_("report written to {path}").format(path=report), file=sys.stderr)
    return EXIT_OK if diagnosis.passed else EXIT_FAILED


def guard(args: argparse.Namespace) -> int:
    if args.port is None and (args.listen_port or args.host is not None or args.password_stdin):
        raise InvalidInput(N_("--listen-port, --host and --password-stdin go with --port"))
    if args.list:
        records = guards.list_guards()
        shown = [_guard_shown(record) for record in records]
        show(args.json, {"guards": shown}, "\n".join(guards.guard_lines(records)))
        return EXIT_OK
    if args.stop == "all":
        ports = guards.stop_all_guards()
        show(args.json, {"stopped": bool(ports), "ports": ports}, guards.stopped_line(len(ports)))
        return EXIT_OK
    if args.stop is not None:
        try:
            port = validation.validate_port(args.stop)
        except InvalidInput as exc:  # its hint speaks of a service's port, not a guard's
            raise InvalidInput(exc.message, LIST_HINT) from None
        if not guards.stop_guard(port):
            raise ScnetError(N_("no guard runs on port {port}"), LIST_HINT, port=port)
        text = _("stopped the guard on port {port}").format(port=port)
        show(args.json, {"stopped": True, "port": port}, text)
        return EXIT_OK
    upstream = validation.validate_port(args.port)  # before the prompt: nothing typed in vain
    password = _password(args.password_stdin, N_("no password for the guard"))
    record = service.protect_port(
        upstream,
        password() if callable(password) else password,
        host=args.host or "0.0.0.0",
        listen_port=args.listen_port,
    )
    if record.reused:
        headline = _("port {upstream} is already guarded on port {port}")
    else:
        headline = _("port {upstream} is now guarded on port {port}")
    next_step = _(
        "Expose port {port} rather than {upstream}: scnet start --port {upstream} --protect "
        "does, with this guard."
    )
    text = f"{headline}\n{next_step}".format(upstream=record.upstream_port, port=record.port)
    show(args.json, {**_guard_shown(record), "reused": record.reused}, text)
    return EXIT_OK


def _guard_shown(record: guards.GuardRecord) -> dict[str, Any]:
    """A guard's record as ``--json`` prints it."""
    shown = ("port", "upstream_port", "pid", "host", "started_at")
    return {name: getattr(record, name) for name in shown}


def login(
    args: argparse.Namespace,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Sign in, or --status, or --renew. Signing in saves the token, address, account and
    region (never a key) to the user config file, readable by its owner only."""
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
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


def _status(as_json: bool, stdout: TextIO | None) -> int:
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
    line = _stdin_line(_("SCNet {label}: ").format(label=_("secret key")), stdin)
    if not line.strip():
        raise InvalidInput(N_("--secret-key-stdin: standard input is empty"))
    return validation.validate_secret_key(line)


def _terminal_menu(stdin: TextIO, stdout: TextIO | None) -> Menu:
    """The numbered list of the account's regions, typed into at the terminal."""

    def read_line(prompt: str) -> str:
        print(prompt, end="", file=stdout, flush=True)
        return stdin.readline()

    return lambda account: accounts.pick_region(
        account, read_line, lambda text: print(text, file=stdout)
    )


def _terminal_ask(label: str, hidden: bool) -> str:
    try:
        prompt = _("SCNet {label}: ").format(label=label)
        return getpass.getpass(prompt) if hidden else input(prompt)
    except EOFError:
        raise ConfigError(N_("no SCNet {label} given"), label=label) from None


def logout(args: argparse.Namespace) -> int:
    path, removed = config.forget_sign_in()
    print(config.signed_out_text(path, removed))
    return EXIT_OK


def sandbox(args: argparse.Namespace) -> int:
    from .. import sandbox as local

    workdir = [f"--workdir={args.workdir}"] if args.workdir else []  # (one word: "-app" too)
    return local.main(
        [*(["--execute"] if args.execute else []), "--port", str(args.port), *workdir]
    )


def _settings(args: argparse.Namespace) -> Settings:
    """The settings for a verb: its options first, then the environment and config file."""
    return config.resolve(
        token=_token_from_stdin() if args.token_stdin else None,
        base_url=args.base_url,
        timeout=args.timeout,
    )


def _stdin_line(prompt: str, stdin: TextIO | None = None) -> str:
    """A secret's line of standard input. Typed or pasted at a terminal, it is asked for
    without echo (``prompt``), as %scnet_token does: shown, it would stay in the scrollback."""
    stdin = stdin or sys.stdin
    if not stdin.isatty():
        return stdin.readline().rstrip("\r\n")
    try:
        return getpass.getpass(prompt)
    except EOFError:
        return ""


def _token_from_stdin() -> str:
    line = _stdin_line(_("SCNET token (hidden): "))
    if not line.strip():
        raise InvalidInput(
            N_("--token-stdin: standard input has no token"),
            N_("Pipe it in, e.g. scnet ... --token-stdin < token-file."),
        )
    return line


def _client(settings: Settings) -> ScnetClient:
    if settings.token is None:
        raise config.no_token_error(Message(NO_TOKEN_HINT, path=config.config_path()))
    return ScnetClient(settings=settings)


def _password(from_stdin: bool, missing: str) -> str | Callable[[], str]:
    """The password for a guard: a line of standard input with --password-stdin, else
    SCNET_GUARD_PASSWORD, else how to ask for it twice at a hidden prompt on a terminal (a
    start asks once the instance is known to run); ``missing`` when none of them gives one."""
    if from_stdin:
        typed = _stdin_line(_("Password for the service (hidden): "))
        return validation.validate_guard_password(typed)
    ask = getpass.getpass if sys.stdin.isatty() else None
    return service.password_for(ask, no_password=missing, no_password_hint=PASSWORD_HINT)


def _note(sentence: str) -> None:
    """A sentence on stderr after "scnet: ", lower-cased as such lines are written."""
    print("scnet: " + sentence[:1].lower() + sentence[1:], file=sys.stderr)


# What ``scnet <verb>`` runs.
VERBS: dict[str, Callable[[argparse.Namespace], int]] = {
    "start": start,
    "url": url,
    "notebooks": notebooks,
    "stop": stop,
    "doctor": doctor,
    "guard": guard,
    "login": login,
    "logout": logout,
    "sandbox": sandbox,
}
