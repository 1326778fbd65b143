"""``%scnet_doctor``: the doctor's read-only checks from a notebook (see
:mod:`scnet_magic.doctor`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument

from ..i18n import N_, _
from .base import SessionMagics
from .line import notebook_id_argument, parse, readable_arguments

if TYPE_CHECKING:
    from ..doctor import Diagnosis


@magics_class
class DoctorMagics(SessionMagics):
    """``%scnet_doctor``."""

    @readable_arguments(
        summary=N_("Check the settings, the platform's answers and the guards (read-only).")
    )
    @notebook_id_argument
    @argument(
        "--report",
        metavar="FILE",
        help=N_("Also write the shapes of the answers seen (never a value) to FILE."),
    )
    @line_magic
    def scnet_doctor(self, line: str = "") -> Diagnosis:
        """Check where each setting comes from, the clock, the token, the region's address, a
        notebook list call (and with --id the instance) and the guards. Nothing is started,
        stopped or renewed.

        Returns a ``Diagnosis`` (``.checks``, ``.passed``, ``.report()``).
        """
        with self.user_errors():
            args = parse(self.scnet_doctor, line)
            from .. import doctor, validation

            report = None if args.report is None else doctor.report_path(args.report)
            settings = self.session.settings()

            notebook_id = args.notebook_id or settings.notebook_id
            if notebook_id is not None:
                notebook_id = validation.validate_notebook_id(notebook_id)
            found = doctor.diagnose(
                settings, session=self.session.values(), notebook_id=notebook_id
            )
            print("\n".join(found.lines()))
            if report is not None:
                found.write_report(report)
                print(_("report written to {path}").format(path=report))
        return found
