"""Text that came from a server, made safe to show: the credentials it was sent hidden, and the
characters a terminal would obey taken out (a hostile server may echo the token, or answer a
window title, a screen clear, a clipboard write). The transport passes every string of every
answer through :class:`ServerText` before anything shows, logs or raises it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Whole escape sequences first, so that a title or a clipboard payload goes with its escape:
# CSI (ESC [ or the 8-bit CSI), OSC (ESC ] or the 8-bit OSC, up to BEL or ST), and the other
# two-character ESC sequences.
_SEQUENCES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -Z\\-~]?"
)
# Then single characters: C0 controls but tab and newline, DEL, C1 controls, the
# bidirectional marks, overrides and isolates that make text read otherwise than it is stored,
# and the invisible zero-width space and byte-order mark.
_CONTROLS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
_LINE_BREAKS = re.compile(r"\r\n?")
# Halves of UTF-16 pairs, which JSON's \ud800 escapes can produce alone: no encoding can write
# them, so printing one would fail.
_SURROGATES = re.compile("[\ud800-\udfff]")

# Shorter values are not hidden: they would blank out ordinary words. Tokens and keys are long.
MIN_SECRET = 8
# Nesting deeper than this is no API answer (the platform's are three or four levels deep),
# and walking it, rendering it or printing it would run out of stack.
MAX_DEPTH = 64


def hidden(name: str) -> str:
    """What a credential named ``name`` ("token") is shown as when a server echoes it."""
    return f"<{name} hidden>"


class TooDeep(ValueError):
    """A JSON answer nested deeper than :data:`MAX_DEPTH`."""


def strip_controls(text: str, *, multiline: bool = True) -> str:
    """``text`` without escape sequences and control characters. Multi-line text keeps its
    newlines and tabs (a carriage return becomes a newline: alone, it would let the next text
    overwrite the line); one-line text gets a space for each."""
    text = _SEQUENCES.sub("", text)
    text = _LINE_BREAKS.sub("\n", text)
    if not multiline:
        text = text.replace("\n", " ").replace("\t", " ")
    return _CONTROLS.sub("", text)


def _letters(text: str) -> str:
    return re.sub(r"\s", "", text)


class ServerText:
    """Cleans what one server sent back; ``secrets`` maps each credential it was sent to what
    it is ("token"), shown as ``<token hidden>`` where echoed."""

    def __init__(self, secrets: Mapping[str, str] = {}) -> None:
        replacements: dict[str, str] = {}
        for secret, name in secrets.items():
            if len(secret) >= MIN_SECRET:
                # The secret, and the parts of a dotted token that are its own: a JWT's header
                # is shared by every token of its kind, its payload and signature are not.
                own_parts = [part for part in secret.split(".")[1:] if len(part) >= MIN_SECRET]
                for form in [secret, *own_parts]:
                    replacements.setdefault(form, hidden(name))
        self._replacements = replacements
        # Each form also where a server wrapped it over lines (an error page folded at 76
        # columns): whitespace between its characters, which one-line display makes spaces.
        self._by_letters = {_letters(form): name for form, name in replacements.items()}
        # Longest first: the whole token is hidden before its parts are looked for.
        alternatives = sorted(replacements, key=len, reverse=True)
        wrapped = (r"\s*".join(map(re.escape, form)) for form in alternatives)
        self._pattern = re.compile("|".join(wrapped)) if alternatives else None

    def hide(self, text: str) -> str:
        """``text`` with the credentials hidden (nothing else changed)."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: self._by_letters[_letters(match[0])], text)

    def hide_bytes(self, body: bytes) -> bytes:
        """A raw body with the credentials hidden, so that not even a frame's variables keep
        them (escaped forms are hidden once the body is parsed: :meth:`json`)."""
        for secret in sorted(self._replacements, key=len, reverse=True):
            body = body.replace(secret.encode(), self._replacements[secret].encode())
        return body

    def text(self, text: str, *, multiline: bool = True) -> str:
        """Server text to show: controls out first (so that none can split a credential), then
        the credentials hidden."""
        text = _SURROGATES.sub("\ufffd", strip_controls(text, multiline=multiline))
        return self.hide(text)

    def json(self, value: Any, depth: int = 0) -> Any:
        """A parsed JSON value with every string (keys too) cleaned; :class:`TooDeep` when it
        is nested deeper than :data:`MAX_DEPTH`."""
        if depth > MAX_DEPTH:
            raise TooDeep(depth)
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.json(item, depth + 1) for item in value]
        if isinstance(value, dict):
            return {self.text(str(key)): self.json(item, depth + 1) for key, item in value.items()}
        return value
