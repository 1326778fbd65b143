"""What the ``scnet`` verbs need for the instance around the service: the options of
``scnet stop`` and its confirmation, and the boot progress of ``scnet start --boot``."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from .. import display
from ..client import ScnetClient
from ..i18n import N_, _
from ..models import InstanceProgress

BOOT_HINT = N_("Add --boot to start the instance first.")


def add_stop_arguments(stop: argparse.ArgumentParser) -> None:
    stop.add_argument(
        "--discard-env",
        action="store_true",
        help=_(
            "do not keep the instance's environment (installed packages, files) for the next "
            "start (default: keep it)"
        ),
    )
    stop.add_argument(
        "--yes", action="store_true", help=_("stop without asking to type the instance's name")
    )


def confirmed(client: ScnetClient, notebook_id: str) -> bool:
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


class BootProgress:
    """The instance's status on stderr while ``--boot`` boots it: one line rewritten in place
    on a terminal, a line per change otherwise."""

    def __init__(self, stream: TextIO, notebook_id: str) -> None:
        self.stream = stream
        self.notebook_id = notebook_id
        self.in_place = stream.isatty()
        self.last = ""
        self.shown = False

    def __call__(self, progress: InstanceProgress | None) -> None:
        line = display.instance_waiting_text(progress, self.notebook_id)
        status = progress.status if progress is not None else ""
        self.shown = True
        if self.in_place:
            self.stream.write(f"\r\x1b[K{line}")
            self.stream.flush()
        elif status != self.last or progress is None:
            print(line, file=self.stream, flush=True)
        self.last = status

    def end(self) -> None:
        if self.in_place and self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


__all__ = ["BOOT_HINT", "BootProgress", "add_stop_arguments", "confirmed"]
