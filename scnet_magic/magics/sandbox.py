"""``%scnet_sandbox``: a local SCNet-compatible sandbox, this session pointed at it."""

from __future__ import annotations

from typing import Any

from IPython.core.display_functions import publish_display_data
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument

from .. import arguments, display
from ..i18n import N_, _
from .base import SessionMagics
from .line import option, parse, readable_arguments


@magics_class
class SandboxMagics(SessionMagics):
    """The sandbox this session may point at."""

    @readable_arguments(
        summary=N_("Start a local SCNet-compatible sandbox and point this session at it.")
    )
    @option(arguments.EXECUTE)
    @option(arguments.WORKDIR)
    @argument("--stop", action="store_true", help=N_("Stop the sandbox and restore the settings."))
    @line_magic
    def scnet_sandbox(self, line: str = "") -> Any:
        """Start a local SCNet-compatible sandbox and point this session at it.

        No account or network needed: the sandbox speaks the same API on 127.0.0.1 with a
        random token, which this session uses without showing it.
        """
        with self.user_errors():
            args = parse(self.scnet_sandbox, line)
            if args.stop:
                if self.session.stop_sandbox():
                    print(_("Sandbox stopped; settings restored."))
                else:
                    print(_("No sandbox is running."))
                return None
            sandbox = self.session.use_sandbox(args.execute, args.workdir)
            mode = _("on: commands run on this machine") if args.execute else _("off")
            said = _(
                "Sandbox running at {url} (execution {mode}).\n"
                "This session now uses it, with notebook {notebook_id} as the default. "
                "Stop it with %scnet_sandbox --stop."
            ).format(url=sandbox.base_url, mode=mode, notebook_id=sandbox.notebook_id)
            # Its account is a made-up one, valid only here: shown so that signing in can be
            # tried; the secret key stays unshown all the same (notebooks get shared).
            said += "\n" + _(
                "Its account: {user}, access key {access_key}. %scnet_login signs in to it "
                "without asking for keys (the secret key, made up for this sandbox, is not "
                "shown)."
            ).format(user=sandbox.user, access_key=sandbox.access_key)
            self._say_once(sandbox, said)
            return sandbox

    def _say_once(self, sandbox: Any, said: str) -> None:
        """Say what the sandbox is, once: when the magic ends the cell, its value is not shown
        again under the lines (elsewhere, it is shown as usual). In a terminal, where IPython
        writes a value's ``Out[n]:`` before the value shows itself, the lines wait for the end
        of the cell and are that value's text when it is shown there."""
        shell = self.shell
        if shell is None or shell.display_formatter is None:
            print(said)
            return
        said_in = shell.execution_count
        pending = [said] if display.waits_for_cell_end(shell) else []
        if not pending:
            print(said)

        def shown(value: Any) -> None:
            if value is not sandbox or shell.execution_count != said_in:
                publish_display_data({"text/plain": repr(value)})
            elif pending:
                publish_display_data({"text/plain": pending.pop()})

        def cell_ended(*_args: Any) -> None:
            shell.events.unregister("post_run_cell", cell_ended)
            if pending:
                print(pending.pop())

        shell.display_formatter.ipython_display_formatter.for_type(type(sandbox), shown)
        if pending:
            shell.events.register("post_run_cell", cell_ended)
