"""The ``scnet`` verbs that talk to the notebook APIs: ``start``, ``url``, ``notebooks``."""

from __future__ import annotations

import argparse
import shutil
import sys
from typing import TextIO

from .. import config, display, service, validation
from ..client import ScnetClient
from ..config import Settings
from ..errors import ConfigError, ScnetError
from ..i18n import N_, _
from ..models import StartResult, WaitProgress
from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    STOPPED_WAITING,
    report,
    settings_of,
)
from .instance import BOOT_HINT, BootProgress, confirmed

NO_ID_HINT = N_("Give --id, or set SCNET_NOTEBOOK_ID or notebook_id in the config file.")


def start(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    # Bad input is reported before the token is looked at: nothing is sent.
    request = service.prepare(
        settings, args.notebook_id, args.port, args.command, no_id_hint=NO_ID_HINT
    )
    progress = _Progress(sys.stderr, args.wait or 0)
    shown: list[StartResult] = []
    booting = BootProgress(sys.stderr, request.notebook_id)

    def started(result: StartResult) -> None:
        booting.end()
        shown.append(result)

    with _client(settings) as client:
        try:
            result = service.start(
                request,
                client,
                wait=args.wait,
                on_started=started,
                on_progress=progress.follow,
                boot=args.boot,
                on_boot=booting,
                boot_hint=BOOT_HINT,
            )
        except ScnetError as exc:
            booting.end()
            if not shown:
                raise
            progress.end()
            _print_result(shown[0], args.json)  # it did start: the URL may still help
            report(exc)
            return EXIT_FAILED
        except KeyboardInterrupt:
            if not shown:
                raise
            progress.end()
            _print_result(shown[0], args.json)
            print("scnet: " + _(STOPPED_WAITING), file=sys.stderr)
            return EXIT_INTERRUPTED
    progress.end()
    _print_result(result, args.json)
    return EXIT_OK


def url(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    notebook_id = validation.validate_notebook_id(_notebook_id(args, settings))
    with _client(settings) as client:
        found = service.service_url(client, notebook_id)
    print(display.to_json(found.to_dict()) if args.json else display.service_url_text(found))
    return EXIT_OK


def notebooks(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    with _client(settings) as client:
        records = client.list_notebooks(status=args.status, name=args.name)
    print(display.to_json(records.to_dict()) if args.json else display.notebooks_text(records))
    return EXIT_OK


def stop(args: argparse.Namespace) -> int:
    """Stop an instance, after the user types its name (unless --yes)."""
    settings = settings_of(args)
    notebook_id = validation.validate_notebook_id(_notebook_id(args, settings))
    with _client(settings) as client:
        if not args.yes and not confirmed(client, notebook_id):
            print("scnet: " + _("Not stopped."), file=sys.stderr)
            return EXIT_FAILED
        result = service.stop(client, notebook_id, save_env=not args.discard_env)
    print(display.to_json(result.to_dict()) if args.json else display.stop_text(result))
    return EXIT_OK


def _notebook_id(args: argparse.Namespace, settings: Settings) -> str:
    if args.notebook_id is not None:
        return str(args.notebook_id)
    if settings.notebook_id is None:
        from ..errors import InvalidInput

        raise InvalidInput(N_("no notebook id"), NO_ID_HINT)
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
    return ScnetClient.from_settings(settings)


def _print_result(result: StartResult, as_json: bool) -> None:
    print(display.to_json(result.to_dict()) if as_json else display.start_text(result))


class _Progress:
    """One status line on stderr, rewritten in place on a terminal; one line otherwise."""

    def __init__(self, stream: TextIO, timeout: float) -> None:
        self.stream = stream
        self.timeout = timeout
        self.in_place = stream.isatty()
        self.url = ""
        self.begun = False

    def follow(self, progress: service.Progress) -> None:
        """The service's progress callback: the wait begins, or a check was not ready."""
        if progress.check is None:
            self.begin(progress.result.url or _("the service"))
        else:
            self.update(progress.check)

    def update(self, check: WaitProgress) -> None:
        if self.in_place:
            self._write(display.waiting_text(self.url, self.timeout, check))

    def begin(self, url: str) -> None:
        self.url = url
        self.begun = True
        self._write(display.waiting_text(url, self.timeout, None))

    def end(self) -> None:
        if self.in_place and self.begun:
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


__all__ = ["notebooks", "start", "stop", "url"]
