"""What the ``scnet`` verbs need for the instance around the service: the options of
``scnet stop`` and its confirmation. (The boot's progress is a
:class:`~scnet_magic.display.ProgressLine`'s, as the wait's.)"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from .. import display
from ..i18n import _

if TYPE_CHECKING:
    from ..client import ScnetClient


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


__all__ = ["add_stop_arguments", "confirmed"]
