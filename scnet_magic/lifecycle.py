"""The notebook instance around the service: reading its detail, and waiting for a status.

The instance endpoints (detail, boot, stop) are known only from public clients
(``scnet-api.md`` section 6), so their answers are read tolerantly. The calls are
:class:`ScnetClient` methods; this module reads their answers and follows a status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from . import display
from .errors import ApiError, InstanceError, InstanceTimeout, MalformedResponse, TransportError
from .i18n import N_, Message
from .models import InstanceProgress, Notebook, StopResult
from .polling import Look, growing_intervals, poll
from .transport import json_type, preview_json

# "当前Notebook已经停止！": stopping a stopped instance. It is stopped, as asked: not a failure.
ALREADY_STOPPED = "817140"
_ALREADY_STOPPED_TEXT = "已经停止"

# Booting takes from seconds to minutes: look often at first, then less, never less often
# than every MAX_POLL seconds, so the status shown stays current.
FIRST_POLL = 0.5
POLL_GROWTH = 1.5
MAX_POLL = 5.0
DEFAULT_INSTANCE_TIMEOUT = 600.0

NOT_RUNNING_HINT = N_("Start it first with --boot (boot=True from Python).")


def poll_intervals() -> Iterator[float]:
    """Seconds between looks at the detail: 0.5, growing by half each time, to 5."""
    return growing_intervals(FIRST_POLL, MAX_POLL, POLL_GROWTH)


def notebook_from(envelope: dict[str, Any], notebook_id: str, endpoint: str) -> Notebook:
    """The instance record in a detail answer: an object, or a list holding one (both shapes
    occur among the platform's answers)."""
    data = envelope.get("data")
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if isinstance(data, dict) and isinstance(data.get("records"), list) and data["records"]:
        data = data["records"][0]
    if not isinstance(data, dict):
        raise MalformedResponse(
            Message(N_("'data' is {type}, expected the instance record"), type=json_type(data)),
            200,
            preview_json(data),
        ).at(endpoint)
    return Notebook.from_record(data, notebook_id)


def stop_result(
    envelope: dict[str, Any] | None,
    notebook_id: str,
    save_env: bool,
    refused: ApiError | None = None,
) -> StopResult:
    """What a stop came to: stopping, or already stopped (an error code that says so)."""
    if refused is not None:
        envelope = {"code": refused.code, "msg": refused.msg, "data": None}
    assert envelope is not None
    return StopResult(
        notebook_id,
        save_env,
        already_stopped=refused is not None,
        msg=str(envelope.get("msg") or ""),
        raw=envelope,
    )


def is_already_stopped(error: ApiError) -> bool:
    return error.code == ALREADY_STOPPED or _ALREADY_STOPPED_TEXT in error.msg


def wait_for_status(
    fetch: Callable[[], Notebook],
    notebook_id: str,
    status: str,
    timeout: float,
    *,
    on_progress: Callable[[InstanceProgress], None] | None = None,
    since: float | None = None,
) -> Notebook:
    """Look at the instance (``fetch``) until its status is ``status``; the last record.

    ``Failed`` (unless waited for) and the timeout are :class:`InstanceError`\\ s naming the
    last status. A detail that does not come is looked at again (reading is safe to repeat);
    an error from the platform is not retried. ``on_progress`` is told after every look that
    did not end the wait; an exception it raises ends it.
    """
    statuses = [""]  # the last one is the status the errors and the progress name
    names = [""]  # the instance's, as the last look saw it

    def look_once(look: Look) -> Notebook | None:
        try:
            notebook = fetch()
        except TransportError:
            if look.remaining() <= 0:
                raise
            return None
        statuses.append(notebook.status)
        names.append(notebook.name)
        if notebook.status == status:
            return notebook
        if notebook.status == "Failed":
            raise InstanceError(
                N_("notebook instance {notebook_id} is Failed, not {wanted}"),
                N_(
                    "Look at the instance in the SCNet console (its events say why); "
                    "starting it again may work."
                ),
                notebook_id=notebook_id,
                status=notebook.status,
                shown_status=display.status_message(notebook.status),
                wanted=display.status_message(status),
            )
        return None

    def expired(_look: Look) -> InstanceTimeout:
        return InstanceTimeout(
            N_(
                "notebook instance {notebook_id} is not {wanted} after {timeout} s "
                "(last status: {status})"
            ),
            N_(
                "Look at the instance in the SCNet console: booting can take minutes when "
                "the resource group is busy."
            ),
            notebook_id=notebook_id,
            status=statuses[-1] or "?",
            shown_status=display.status_message(statuses[-1] or "?"),
            wanted=display.status_message(status),
            timeout=f"{timeout:g}",
        )

    def report(look: Look) -> None:
        if on_progress is not None:
            on_progress(
                InstanceProgress(
                    notebook_id,
                    statuses[-1],
                    status,
                    look.elapsed(),
                    timeout,
                    look.number,
                    names[-1],
                )
            )

    return poll(look_once, timeout, poll_intervals(), expired=expired, since=since, waiting=report)
