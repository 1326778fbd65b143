"""``scnet doctor``: read-only checks of what the settings point at, and the shape report.

::

    scnet doctor [--id ID] [--report [FILE]] [--base-url URL] [--timeout S] [--token-stdin]
"""

from __future__ import annotations

import argparse
import sys

from .. import display
from ..i18n import _
from .common import EXIT_FAILED, EXIT_OK, settings_of

DEFAULT_REPORT = "scnet-doctor.json"


def add_doctor_arguments(doctor: argparse.ArgumentParser) -> None:
    doctor.add_argument(
        "--report",
        nargs="?",
        const=DEFAULT_REPORT,
        metavar="FILE",
        help=_(
            "also write the shapes of the answers seen (never a value) to FILE "
            "(default {file}), to attach to a bug report"
        ).format(file=DEFAULT_REPORT),
    )


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


__all__ = ["add_doctor_arguments", "doctor_command"]
