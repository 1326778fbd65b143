"""The ways the start endpoint can misbehave, and the handler that answers with them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .data import _BAD_GATEWAY_PAGE, _HTML, _JSON, _START, _TEXT, _json_bytes, _nginx_page
from .server import _Handler

_HUGE_SIZE = 10 * 1024 * 1024

# Start-endpoint faults that always give the same answer: (HTTP status, content type, body).
_FIXED_FAULTS: dict[str, tuple[int, str, bytes]] = {
    "html502": (502, _HTML, _BAD_GATEWAY_PAGE),
    "401-json": (401, _JSON, _json_bytes({"code": "10008", "msg": "权限不足", "data": None})),
    "403-json": (403, _JSON, _json_bytes({"code": "10008", "msg": "权限不足", "data": None})),
    "500-json": (500, _JSON, _json_bytes({"code": "10001", "msg": "内部错误", "data": None})),
    "401-plain": (401, _TEXT, b"401 Unauthorized\n"),
    "403-plain": (403, _HTML, _nginx_page("403 Forbidden")),
    "500-plain": (500, _TEXT, b"500 Internal Server Error\n"),
}
FAULTS: frozenset[str] = frozenset(_FIXED_FAULTS) | {
    "truncated",
    "data-null",
    "data-list",
    "code-missing",
    "code-int",
    "exec-string",
    "huge",
    "slow-headers",
    "trickle",
    "reset",
    "drop",
    "redirect-http",
    "redirect-loop",
}


class _FaultHandler(_Handler):
    def _fault(
        self,
        fault: str,
        answer: Callable[[], dict[str, Any]],
        base_url: str,
        delay: float,
    ) -> None:
        """Answer a start call the way ``fault`` says; ``answer`` gives the good envelope."""
        if fault in _FIXED_FAULTS:
            status, content_type, page = _FIXED_FAULTS[fault]
            self._send(status, page, content_type)
            return
        if fault == "drop":
            self.log_request("-")
            self.close_connection = True
            return
        if fault in ("redirect-http", "redirect-loop"):
            target = "http://example.invalid" + _START
            if fault == "redirect-loop":
                target = base_url + self.path
            self._send(307, b"", _TEXT, headers=[("Location", target)])
            return
        if fault == "huge":
            self._send_huge()
            return
        if fault == "reset":
            self.send_response(200)
            self.send_header("Content-Type", _JSON)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"code": "0", "msg"'[:10])
            self._abort()
            return

        if fault == "slow-headers":
            time.sleep(delay)
        envelope = answer()
        data = envelope["data"]
        if fault == "data-null":
            envelope["data"] = None
        elif fault == "data-list":
            envelope["data"] = [data]
        elif fault == "code-missing":
            del envelope["code"]
        elif fault == "code-int":
            envelope["code"] = int(envelope["code"])
        elif fault == "exec-string" and isinstance(data, dict):
            data["execSuccess"] = str(data["execSuccess"]).lower()
        payload = _json_bytes(envelope)
        if fault == "truncated":
            payload = payload[:-1]
        if fault != "trickle":
            self._send(200, payload, _JSON)
            return
        self.send_response(200)
        self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        sent, deadline = 0, time.monotonic() + delay
        while sent < len(payload) and time.monotonic() < deadline:
            self.wfile.write(payload[sent : sent + 1])
            sent += 1
            time.sleep(0.2)
        self.wfile.write(payload[sent:])

    def _send_huge(self) -> None:
        head = b'{"code": "0", "msg": "'
        self.send_response(200)
        self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(_HUGE_SIZE))
        self.end_headers()
        self.wfile.write(head)
        filler = b"x" * 65536
        remaining = _HUGE_SIZE - len(head)
        while remaining > 0:
            chunk = filler[:remaining]
            self.wfile.write(chunk)
            remaining -= len(chunk)
