"""The ``scnet`` verbs that talk to the platform: ``start``, ``stop``, ``url``, ``notebooks``,
``doctor``."""

from __future__ import annotations

import argparse
import sys

from .. import config, display, service
from ..client import ScnetClient
from ..config import Settings
from ..errors import ScnetError
from ..i18n import N_, Message, _
from ..models import StartResult
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, note, report, settings_of
from .guard import protect_password

NO_ID_HINT = N_("Give --id, or set SCNET_NOTEBOOK_ID or notebook_id in the config file.")
NEWCOMER_HINT = N_("To try things without an account, run scnet sandbox --execute.")


def start(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    # Bad input is reported before the token is looked at: nothing is sent.
    request = service.prepare(
        settings,
        args.notebook_id,
        args.port,
        args.command,
        no_id_hint=NO_ID_HINT,
        newcomer_hint=NEWCOMER_HINT,
    )
    password = protect_password(args)
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
            _print_result(exc.result, args.json)  # it did start: the URL may still help
            report(exc)
            return EXIT_FAILED
        except service.StartInterrupted as stopped:
            shown.line.end()
            if stopped.result is None:
                note(str(service.interrupted_text(stopped, "scnet url")))
            else:
                _print_result(stopped.result, args.json)
                note(_(service.STOPPED_WAITING))
            return EXIT_INTERRUPTED
    shown.line.end()
    _print_result(result, args.json)
    return EXIT_OK


def url(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    notebook_id = service.notebook_id_for(
        settings, args.notebook_id, no_id_hint=NO_ID_HINT, newcomer_hint=NEWCOMER_HINT
    )
    with _client(settings) as client:
        found = service.service_url(client, notebook_id)
    print(display.to_json(found.to_dict()) if args.json else display.service_url_text(found))
    return EXIT_OK


def notebooks(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    with _client(settings) as client:
        records = service.notebooks(client, status=args.status, name=args.name)
    print(display.to_json(records.to_dict()) if args.json else display.notebooks_text(records))
    return EXIT_OK


def stop(args: argparse.Namespace) -> int:
    """Stop an instance, after the user types its name (unless --yes)."""
    settings = settings_of(args)
    notebook_id = service.notebook_id_for(
        settings, args.notebook_id, no_id_hint=NO_ID_HINT, newcomer_hint=NEWCOMER_HINT
    )
    with _client(settings) as client:
        if not args.yes and not confirmed(client, notebook_id):
            print("scnet: " + _("Not stopped."), file=sys.stderr)
            return EXIT_FAILED
        result = client.stop_notebook(notebook_id, save_env=not args.discard_env)
    print(display.to_json(result.to_dict()) if args.json else display.stop_text(result))
    return EXIT_OK


def confirmed(client: ScnetClient, notebook_id: str) -> bool:
    """Whether the user typed the instance's name (or its id, if it has none) at the prompt."""
    record = client.notebook(notebook_id)
    expected = record.name or notebook_id
    print(display.stop_warning(record.name, notebook_id, kernel=False), file=sys.stderr)
    print(
        _("Type the instance's name ({name}) to stop it: ").format(name=expected),
        end="",
        file=sys.stderr,
        flush=True,
    )
    typed = sys.stdin.readline()
    if not sys.stdin.isatty():
        print(file=sys.stderr)  # what was piped in is not echoed: end the prompt's line
    return typed.strip() == expected


def doctor_command(args: argparse.Namespace) -> int:
    from .. import doctor

    report = None if args.report is None else doctor.report_path(args.report)
    settings = settings_of(args)
    explicit = {"base_url": args.base_url, "timeout": args.timeout}
    if args.token_stdin:
        explicit["token"] = settings.token
    notebook_id = settings.notebook_id
    if args.notebook_id is not None:
        from ..validation import validate_notebook_id

        notebook_id = validate_notebook_id(args.notebook_id)
    diagnosis = doctor.diagnose(settings, explicit=explicit, notebook_id=notebook_id)
    if args.json:
        checks = [vars(check) for check in diagnosis.checks]
        print(display.to_json({"passed": diagnosis.passed, "checks": checks}))
    else:
        print("\n".join(diagnosis.lines()))
    if report is not None:
        diagnosis.write_report(report)
        # On stderr: with --json, stdout holds the one JSON object.
        print(_("report written to {path}").format(path=report), file=sys.stderr)
    return EXIT_OK if diagnosis.passed else EXIT_FAILED


def _client(settings: Settings) -> ScnetClient:
    if settings.token is None:
        raise config.no_token_error(
            Message(
                N_(
                    "Sign in with scnet login, or give a token with SCNET_TOKEN, --token-stdin or "
                    'token = "…" in {path}. To try things without an account, run scnet sandbox '
                    "--execute."
                ),
                path=config.config_path(),
            )
        )
    return ScnetClient(settings=settings)


def _print_result(result: StartResult, as_json: bool) -> None:
    print(display.to_json(result.to_dict()) if as_json else display.start_text(result))


__all__ = ["doctor_command", "notebooks", "start", "stop", "url"]
