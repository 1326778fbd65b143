"""The start form's controls for the instance around the service: the "Start the instance if
it is stopped" box, the boot progress shown in place, and the note that says which custom
port a start replaces (an instance has one). A mixin of :class:`~.form.StartForm`."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import ipywidgets as widgets

from .. import display, service, validation
from ..errors import ScnetError
from ..i18n import N_, _
from ..models import InstanceProgress, Notebook, StartResult

BOOT_HINT = N_("Tick “Start the instance if it is stopped” and start again.")
REPLACE_HINT = N_("Tick “End what already listens on the port” and start again.")


class InstanceControls:
    """What the form knows of each instance (from its notebook list) and shows about it."""

    # Made by StartForm._build.
    port: Any
    notebook_id: Any
    result_area: Any

    def _build_instance(self, defaults: dict[str, Any]) -> None:
        self._records: dict[str, Notebook] = {}
        self.boot_box = widgets.Checkbox(
            value=bool(defaults.get("boot")),
            description=_("Start the instance if it is stopped"),
            tooltip=_("If the instance is not running, start it and wait until it runs first"),
            indent=False,
            layout=widgets.Layout(width="auto", margin="0 0 0 1em"),
        )
        # An earlier run of the app on the port would stay the service: end it first.
        self.replace_box = widgets.Checkbox(
            value=bool(defaults.get("replace")),
            description=_("End what already listens on the port"),
            tooltip=_(
                "If something on this machine already listens on the port (an earlier run of "
                "the app), end it before the start"
            ),
            indent=False,
            layout=widgets.Layout(width="auto", margin="0 0 0 1em"),
        )
        self.port_note = widgets.HTML()
        self.port.observe(self._update_port_note, "value")
        self.notebook_id.observe(self._update_port_note, "value")

    def _remember_records(self, records: Sequence[dict[str, Any]]) -> None:
        self._records = {n.id: n for n in map(Notebook.from_record, records) if n.id}
        self._update_port_note()

    def _instance_fields(self, notebook_id: str) -> tuple[bool, Notebook | None, bool]:
        """A start request's boot choice, the instance as the list described it, and whether
        to end what listens on the port first."""
        return self.boot_box.value, self._records.get(notebook_id), self.replace_box.value

    def _update_port_note(self, change: object = None) -> None:
        """Say, before Start, what the list already tells: the instance does not run, or this
        start replaces its custom service on another port."""
        record = self._records.get(self.notebook_id.value.strip())
        notes: list[str] = []
        if record is not None:
            try:
                port: int | None = validation.validate_port(self.port.value)
            except ScnetError:
                port = None
            old = service.user_port(record.custom_port)  # not a guard's port: the user's
            if port is not None and old not in (None, port):
                notes.append(
                    _("Starting on port {port} replaces the custom service on port {old}.").format(
                        port=port, old=old
                    )
                )
            if not record.running and record.status:
                notes.append(
                    _("The instance is {status}.").format(status=display.status_name(record.status))
                )
        self.port_note.value = f"<small>{html.escape(' '.join(notes))}</small>" if notes else ""

    def _show_boot(self, progress: InstanceProgress | None) -> None:
        """The instance's status in the result area while it boots."""
        notebook_id = progress.notebook_id if progress else self.notebook_id.value.strip()
        line = display.instance_waiting_text(progress, notebook_id)
        self.result_area.value = display.info_html(line)

    def _started(self, result: StartResult) -> None:
        """The instance now runs with this custom service: the note follows."""
        record = self._records.get(result.notebook_id)
        if record is not None:
            self._records[result.notebook_id] = replace(
                record, status="Running", custom_port=result.port, command=result.command
            )
        self._update_port_note()
