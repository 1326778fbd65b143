"""The instance lifecycle the sandbox plays: boot, stop, and the one custom service per instance.

Each sandbox keeps its own mutable state per notebook on top of the fixed records of
:mod:`.data`: the status, which moves with time as the platform's does (a boot goes
Terminated → Creating → Running, or Failed for a notebook listed in ``failing``, over
``boot_seconds``; a stop goes Running → Shutting → Terminated over ``stop_seconds``), and the
custom service (``customsizePort`` and ``command``, set by each start). A status is worked out
when it is read, so no timer thread runs. Stopping ends the processes the sandbox started for
that instance and closes its gateways, so the external URL stops answering; a start on another
port replaces the first, and the old port's gateway closes.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .data import _ApiError, _notebook, logger
from .gateway import _GatewayServer
from .processes import _terminate

# The platform's answers for an instance in the wrong state for the call.
_ALREADY_STOPPED = ("817140", "当前Notebook已经停止！")
_NOT_RUNNING = "716866"


@dataclass
class _State:
    """One instance as it stands: a status, or a move towards ``target`` begun at ``since``."""

    status: str
    target: str | None = None
    since: float = 0.0
    custom_port: int | None = None
    command: str | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)


class _Instances:
    """The instance endpoints of :class:`~scnet_magic.sandbox.Sandbox` (a mixin)."""

    # Set by Sandbox.
    _lock: threading.Lock
    _gateways: dict[tuple[str, int], _GatewayServer]
    _services: dict[str, int]

    def _init_instances(self) -> None:
        # How long a boot and a stop take, and the notebooks whose boot ends in Failed.
        self.boot_seconds = 2.0
        self.stop_seconds = 1.0
        self.failing: set[str] = set()
        self._states: dict[str, _State] = {}

    # -- state ---------------------------------------------------------------------------

    def _state(self, record: dict[str, str]) -> _State:
        """The instance's state, moved on to its target if the move has had its time."""
        state = self._states.get(record["id"])
        if state is None:
            state = self._states[record["id"]] = _State(record["notebookStatus"])
        if state.target is not None:
            takes = self.boot_seconds if state.status == "Creating" else self.stop_seconds
            if time.monotonic() >= state.since + takes:
                state.status, state.target = state.target, None
        return state

    def _live(self, record: dict[str, str]) -> dict[str, Any]:
        """A record as the list and the detail answer it: the status now and the custom
        service (``customsizePort`` in the platform's spelling, as text)."""
        with self._lock:
            state = self._state(record)
            port, command, status = state.custom_port, state.command, state.status
        return {
            **record,
            "notebookStatus": status,
            "customsizePort": str(port) if port is not None else None,
            "command": command,
        }

    # -- endpoints -----------------------------------------------------------------------

    def _detail(self, query: dict[str, str]) -> dict[str, Any]:
        return self._live(_notebook(query.get("notebookId"), "notebookId"))

    def _boot(self, body: object) -> None:
        record = _notebook(_field(body, "notebookId"), "notebookId")
        with self._lock:
            state = self._state(record)
            if state.status in ("Creating", "Restarting"):
                return  # on its way already
            if state.status == "Running":
                raise _ApiError("10004", "参数无效: Notebook实例已在运行中")
            if state.status == "Shutting":
                raise _ApiError("10004", "参数无效: Notebook实例正在关机，请稍后再试")
            target = "Failed" if record["id"] in self.failing else "Running"
            state.status, state.target, state.since = "Creating", target, time.monotonic()
        logger.info("notebook %s: booting (to %s)", record["id"], target)

    def _stop_instance(self, body: object) -> None:
        record = _notebook(_field(body, "notebookId"), "notebookId")
        save_env = body.get("saveEnv", True) if isinstance(body, dict) else True
        if not isinstance(save_env, bool):
            raise _ApiError("10004", "参数无效: saveEnv")
        with self._lock:
            state = self._state(record)
            if state.status in ("Terminated", "Failed"):
                raise _ApiError(*_ALREADY_STOPPED)
            if state.status == "Shutting":
                return
            state.status, state.target, state.since = "Shutting", "Terminated", time.monotonic()
            procs, state.procs = state.procs, []
            ours = [key for key in self._gateways if key[0] == record["id"]]
            gateways = [self._gateways.pop(key) for key in ours]
            self._services.pop(record["id"], None)
        # Everything in the instance ends: its services, and so their external addresses.
        for gateway in gateways:
            gateway.close()
        _terminate(procs)
        logger.info("notebook %s: stopped (saveEnv=%s)", record["id"], save_env)

    # -- used by the start endpoint ------------------------------------------------------

    def _check_running(self, record: dict[str, str]) -> None:
        with self._lock:
            status = self._state(record).status
        if status != "Running":
            raise _ApiError(_NOT_RUNNING, f"Notebook实例未处于运行状态({status})")

    def _configure(self, notebook_id: str, port: int, command: str | None) -> None:
        """Record the instance's one custom service; another port replaces the old one, whose
        gateway closes."""
        with self._lock:
            state = self._states[notebook_id]
            old = state.custom_port
            state.custom_port, state.command = port, command
            self._services[notebook_id] = port
            replaced = None
            if old is not None and old != port:
                replaced = self._gateways.pop((notebook_id, old), None)
        if replaced is not None:
            replaced.close()
            logger.info("notebook %s: port %s replaced by %d", notebook_id, old, port)


def _field(body: object, name: str) -> object:
    if not isinstance(body, dict):
        raise _ApiError("10004", "参数无效: 请求体必须是JSON对象")
    return body.get(name)
