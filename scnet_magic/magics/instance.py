"""``%scnet_stop``: the instance around the service stopped, after a confirmation."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from IPython.core.error import StdinNotImplementedError
from IPython.core.magic import line_magic, magics_class
from IPython.display import display as show_widget

from .. import arguments, display, i18n
from ..errors import ScnetError
from ..i18n import N_, _
from .base import SessionMagics
from .line import notebook_id_argument, option, parse, readable_arguments

if TYPE_CHECKING:
    from ..models import StopResult


@magics_class
class InstanceMagics(SessionMagics):
    """The instance around the service."""

    @readable_arguments(summary=N_("Stop a notebook instance: every process in it ends."))
    @notebook_id_argument
    @option(arguments.DISCARD_ENV)
    @option(arguments.YES)
    @line_magic
    def scnet_stop(self, line: str = "") -> StopResult | None:
        """Stop a notebook instance: every process in it ends (its services, terminals and
        kernels, this one too if this notebook runs there), and it stops costing card-hours.

        Examples::

            %scnet_stop                  # the default notebook; asks first
            %scnet_stop --id 1896050410550136833 --yes
            %scnet_stop --discard-env --yes

        Asks for confirmation unless ``--yes``: a button in a notebook, the instance's name typed
        in a terminal. Keeps the environment unless ``--discard-env``. Stopping an instance that is
        already stopped is not an error. Returns a ``StopResult`` (None when it waits for the
        button, or was not confirmed).
        """
        with self.user_errors():
            args = parse(self.scnet_stop, line)
            settings = self.session.settings()
            from .. import service

            notebook_id = service.notebook_id_for(settings, args.notebook_id)
            client = self.session.client(settings)
            stop = partial(client.stop_notebook, notebook_id, save_env=not args.discard_env)
            if not args.yes:
                record = client.notebook(notebook_id)
                warning = display.stop_warning(record.name, notebook_id)
                confirm = self.session.widgets.confirm
                if self.session.widgets_shown() and confirm is not None:
                    language = settings.language

                    def confirmed() -> str:
                        with i18n.using(language):
                            try:
                                return display.stop_html(stop())
                            except ScnetError as exc:
                                return display.error_html(exc)

                    show_widget(confirm(warning, _("Stop the instance"), confirmed))
                    return None
                expected = record.name or notebook_id
                print(warning)
                try:
                    typed = input(
                        _("Type the instance's name ({name}) to stop it: ").format(name=expected)
                    )
                except (EOFError, StdinNotImplementedError):
                    typed = ""
                if typed.strip() != expected:
                    print(_("Not stopped."))
                    return None
            result = stop()
            self.show(result, "scnet_stop", line)
        return result
