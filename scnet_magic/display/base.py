"""What every rendering shares: colours, escaping, links, boxes, JSON, and the shapes of the
results as the renderers read them."""

from __future__ import annotations

import functools
import html
import json
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol

from ..i18n import N_, _
from ..server_text import strip_controls

if TYPE_CHECKING:
    from ..errors import ScnetError

    # What the renderers read of the result types, by field (read-only): this module never
    # imports scnet_magic.models (the results ask it for their renderings, not the other way
    # round).

    class StartResult(Protocol):
        @property
        def status(self) -> str: ...
        @property
        def url(self) -> str | None: ...
        @property
        def notebook_id(self) -> str: ...
        @property
        def port(self) -> int: ...
        @property
        def error_msg(self) -> str | None: ...
        @property
        def output(self) -> str | None: ...
        @property
        def ready_after(self) -> float | None: ...

        @property
        def pending(self) -> bool: ...
        @property
        def protected(self) -> bool: ...
        @property
        def guard_port(self) -> int | None: ...
        @property
        def replaced_port(self) -> int | None: ...
        @property
        def ready(self) -> bool: ...
        def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]: ...

    class ServiceUrl(Protocol):
        @property
        def notebook_id(self) -> str: ...
        @property
        def url(self) -> str | None: ...
        @property
        def status(self) -> str | None: ...

        @property
        def active(self) -> bool: ...
        @property
        def instance(self) -> Notebook | None: ...

    class Probe(Protocol):
        @property
        def reason(self) -> str: ...

    class WaitProgress(Protocol):
        @property
        def elapsed(self) -> float: ...
        @property
        def attempts(self) -> int: ...
        @property
        def last(self) -> Probe: ...

    class StartProgress(Protocol):
        @property
        def result(self) -> StartResult: ...
        @property
        def check(self) -> WaitProgress | None: ...

    class Login(Protocol):
        @property
        def user(self) -> str: ...
        @property
        def region(self) -> str: ...
        @property
        def region_id(self) -> str: ...
        @property
        def base_url(self) -> str: ...

    class TokenState(Protocol):
        @property
        def valid(self) -> bool: ...
        @property
        def detail(self) -> str: ...

    class Notebook(Protocol):
        @property
        def id(self) -> str: ...
        @property
        def name(self) -> str | None: ...
        @property
        def status(self) -> str | None: ...
        @property
        def custom_port(self) -> int | None: ...
        @property
        def command(self) -> str | None: ...
        @property
        def running(self) -> bool: ...

    class InstanceProgress(Protocol):
        @property
        def notebook_id(self) -> str: ...
        @property
        def status(self) -> str | None: ...
        @property
        def elapsed(self) -> float: ...
        @property
        def wanted(self) -> str: ...

    class StopResult(Protocol):
        @property
        def notebook_id(self) -> str: ...
        @property
        def already_stopped(self) -> bool: ...
        @property
        def save_env(self) -> bool: ...


_COLORS = {
    "ok": "#2e7d32",
    "ready": "#2e7d32",
    "pending": "#b26a00",
    "error": "#c62828",
    "info": "#546e7a",
    "starting": "#546e7a",
}
_HEADLINES = {
    "ok": N_("Service is up"),
    "ready": N_("Service is ready"),
    "pending": N_("Started, not answering yet"),
    "error": N_("Not started"),
}
_PENDING_NOTE = N_(
    "The command ran, but nothing answers on the port yet; the address works as soon as the "
    "service listens."
)
# Labels used inside f-strings (where the catalog's extractor does not look).
_EXTERNAL_URL = N_("External URL:")
_PLATFORM_MESSAGE = N_("Platform message:")
_COMMAND_OUTPUT = N_("Command output")
_URL = N_("URL:")
_OUTPUT = N_("Output:")
_SERVICE_OF = N_("Custom service of notebook {notebook_id}:")
_NO_ADDRESS = N_("No external address yet: start a service first.")
_OUTPUT_LIMIT = 20_000  # characters of command output shown inline; the rest stays in .output
_REPLACES = N_("This replaced the custom service on port {port}: an instance has one custom port.")


_P = ParamSpec("_P")


def terminal_safe(render: Callable[_P, str]) -> Callable[_P, str]:
    """A text renderer whose text holds no escape sequence or control character (newlines and
    tabs kept): what it shows may have come from a server, and a terminal would obey it."""

    @functools.wraps(render)
    def rendered(*args: _P.args, **kwargs: _P.kwargs) -> str:
        return strip_controls(render(*args, **kwargs))

    return rendered


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _label(message: str, *, html: bool = True) -> str:
    """A translated "Label:" followed by a space, except after a full-width colon (Chinese)."""
    text = _(message)
    text = text if text.endswith("：") else text + " "
    return _esc(text) if html else text


LINK_COLOR = "#1565c0"
LINK_STYLE = f"color:{LINK_COLOR};text-decoration:underline;font-family:monospace"


def link_html(url: str) -> str:
    """A clickable link that opens in a new tab and shows the URL itself as its text."""
    # Styled inline: inside a widget (the form's result area) no notebook stylesheet makes a
    # link look like one. No <code> inside: JupyterLab styles code near-black on grey, which
    # hid the link colour in the magic's output while the form's link stayed blue.
    return (
        f'<a href="{_esc(url)}" target="_blank" rel="noopener noreferrer" '
        f'style="{LINK_STYLE}">{_esc(url)}</a>'
    )


def _box(kind: str, inner: str) -> str:
    color = _COLORS[kind]
    return (
        f'<div class="scnet-result scnet-{kind}" style="border-left:4px solid {color};'
        f'padding:4px 10px;margin:2px 0;line-height:1.5">{inner}</div>'
    )


def _clip(text: str) -> str:
    if len(text) <= _OUTPUT_LIMIT:
        return text
    more = _("{count} more characters").format(count=len(text) - _OUTPUT_LIMIT)
    return text[:_OUTPUT_LIMIT] + f"\n… ({more})"


def to_json(payload: Any) -> str:
    """Stable JSON text: the same bytes whatever the language or platform."""
    return json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True)


def error_html(error: ScnetError) -> str:
    """One short line plus the hint, for the form's result area."""
    inner = f'<div style="font-weight:600;color:{_COLORS["error"]}">{_esc(error.message)}</div>'
    hint = error.hint
    if hint:
        inner += f"<div>{_esc(hint)}</div>"
    return _box("error", inner)


def info_html(text: str) -> str:
    return _box("info", f"<div>{_esc(text)}</div>")


def note_html(text: str, error: bool = False) -> str:
    """A small one-line note beside a form's field; an error (a list that failed) in red."""
    if not error:
        return f"<small>{_esc(text)}</small>"
    return f'<small class="scnet-error" style="color:{_COLORS["error"]}">{_esc(text)}</small>'


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: CJK characters (names, Chinese titles) take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def lines_html(text: str) -> str:
    """Plain lines as HTML lines, escaped."""
    return "<br>".join(_esc(line) for line in text.splitlines())
