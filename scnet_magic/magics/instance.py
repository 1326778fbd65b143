"""``%scnet_stop``: the instance around the service stopped, after a confirmation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from IPython.core.error import StdinNotImplementedError
from IPython.core.magic import line_magic, magics_class

from .. import arguments
from ..errors import ScnetError
from ..i18n import N_, _
from .base import SessionMagics
from .line import notebook_id_argument, option, parse, readable_arguments

if TYPE_CHECKING:
    from ..client import ScnetClient
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
            save_env = not args.discard_env
            if args.yes:
                return self._stop_and_show(client, notebook_id, save_env, line)
            from .. import display

            record = client.notebook(notebook_id)
            warning = display.stop_warning(record.name, notebook_id)
            confirm = self.session.widgets.confirm
            if self.session.widgets_shown() and confirm is not None:
                language = settings.language

                def confirmed() -> str:
                    from .. import i18n

                    with i18n.using(language):
                        try:
                            return display.stop_html(_stop(client, notebook_id, save_env))
                        except ScnetError as exc:
                            return display.error_html(exc)

                from IPython.display import display as show_widget

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
            return self._stop_and_show(client, notebook_id, save_env, line)

    def _stop_and_show(
        self, client: ScnetClient, notebook_id: str, save_env: bool, line: str
    ) -> StopResult:
        result = _stop(client, notebook_id, save_env)
        self.show(result, "scnet_stop", line)
        return result


def _stop(client: ScnetClient, notebook_id: str, save_env: bool) -> StopResult:
    return client.stop_notebook(notebook_id, save_env=save_env)
