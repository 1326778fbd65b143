"""What every rendering shares: colours, escaping, links, boxes, JSON."""

from __future__ import annotations

import functools
import html
import json
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec

from ..i18n import _
from ..server_text import strip_controls

if TYPE_CHECKING:
    from ..errors import ScnetError


COLORS = {
    "ok": "#2e7d32",
    "ready": "#2e7d32",
    "pending": "#b26a00",
    "error": "#c62828",
    "info": "#546e7a",
    "starting": "#546e7a",
}


_P = ParamSpec("_P")


def terminal_safe(render: Callable[_P, str]) -> Callable[_P, str]:
    """A text renderer whose text holds no escape sequence or control character (newlines and
    tabs kept): what it shows may have come from a server, and a terminal would obey it."""

    @functools.wraps(render)
    def rendered(*args: _P.args, **kwargs: _P.kwargs) -> str:
        return strip_controls(render(*args, **kwargs))

    return rendered


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def label(message: str, *, html: bool = True) -> str:
    """A translated "Label:" followed by a space, except after a full-width colon (Chinese)."""
    text = _(message)
    text = text if text.endswith("：") else text + " "
    return esc(text) if html else text


LINK_COLOR = "#1565c0"
LINK_STYLE = f"color:{LINK_COLOR};text-decoration:underline;font-family:monospace"


def link_html(url: str) -> str:
    """A clickable link that opens in a new tab and shows the URL itself as its text."""
    # Styled inline: inside a widget (the form's result area) no notebook stylesheet makes a
    # link look like one. No <code> inside: JupyterLab styles code near-black on grey, which
    # hid the link colour in the magic's output while the form's link stayed blue.
    return (
        f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer" '
        f'style="{LINK_STYLE}">{esc(url)}</a>'
    )


def box(kind: str, inner: str) -> str:
    color = COLORS[kind]
    return (
        f'<div class="scnet-result scnet-{kind}" style="border-left:4px solid {color};'
        f'padding:4px 10px;margin:2px 0;line-height:1.5">{inner}</div>'
    )


_OUTPUT_LIMIT = 20_000  # characters of command output shown inline; the rest stays in .output


def clip(text: str) -> str:
    if len(text) <= _OUTPUT_LIMIT:
        return text
    more = _("{count} more characters").format(count=len(text) - _OUTPUT_LIMIT)
    return text[:_OUTPUT_LIMIT] + f"\n… ({more})"


def to_json(payload: Any) -> str:
    """Stable JSON text: the same bytes whatever the language or platform."""
    return json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True)


def error_html(error: ScnetError) -> str:
    """One short line plus the hint, for the form's result area."""
    inner = f'<div style="font-weight:600;color:{COLORS["error"]}">{esc(error.message)}</div>'
    hint = error.hint
    if hint:
        inner += f"<div>{esc(hint)}</div>"
    return box("error", inner)


def info_html(text: str) -> str:
    return box("info", f"<div>{esc(text)}</div>")


def note_html(text: str, error: bool = False) -> str:
    """A small one-line note beside a form's field; an error (a list that failed) in red."""
    if not error:
        return f"<small>{esc(text)}</small>"
    return f'<small class="scnet-error" style="color:{COLORS["error"]}">{esc(text)}</small>'


def text_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: CJK characters (names, Chinese titles) take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def lines_html(text: str) -> str:
    """Plain lines as HTML lines, escaped."""
    return "<br>".join(esc(line) for line in text.splitlines())
