"""The language messages are written in: English (the msgids in the code) or Simplified Chinese.

:mod:`gettext` translates from the catalog in ``scnet_magic/locale``; named placeholders
(``{port}``) are filled in after translation. The language is set for a block (:func:`using`)
or the process (:func:`set_language`), else by ``SCNET_LANG``, then the locale.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gettext

DOMAIN = "scnet_magic"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGE_ENV = "SCNET_LANG"
LANGUAGES = ("en", "zh")  # what language settings resolve to
# The process locale's variables, in the order POSIX gives them precedence.
_LOCALE_VARS = ("LC_ALL", "LC_MESSAGES", "LANG")
# The catalog's folder name for each language (English needs none: the msgids are English).
_CATALOGS = {"zh": "zh_CN"}

_current: ContextVar[str | None] = ContextVar("scnet_language", default=None)
_process_default: str | None = None


def N_(message: str) -> str:
    """Mark a message for the catalog without translating it yet (module-level tables)."""
    return message


def known(value: object) -> str | None:
    """``"en"`` or ``"zh"`` for a setting such as "zh", "zh_CN", "zh-CN", "EN_us"; else None."""
    text = value.strip() if isinstance(value, str) else ""
    base = text.replace("-", "_").split(".")[0].split("_")[0].lower()
    return base if base in LANGUAGES else None


def locale_language() -> str:
    """``"zh"`` when the process locale is Chinese (``zh_CN.UTF-8``, ``zh_TW``...), else English."""
    for name in _LOCALE_VARS:
        value = os.environ.get(name)
        if value:  # the first one set decides, as for the C library
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def environment_language() -> str:
    """The language without any front end's choice: a valid ``SCNET_LANG``, else the locale."""
    return known(os.environ.get(LANGUAGE_ENV)) or locale_language()


def set_language(language: str | None) -> None:
    """Make ``language`` the process's default (None: back to the environment's)."""
    global _process_default
    _process_default = known(language) if language is not None else None


def current() -> str:
    """The language messages are written in now."""
    return _current.get() or _process_default or environment_language()


@contextmanager
def using(language: str | None = None) -> Iterator[str]:
    """Write messages in ``language`` until the block ends (without one: the language in force
    now, which threads started in the block keep)."""
    chosen = known(language) or current()
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)


@functools.cache
def _translations(language: str) -> gettext.NullTranslations:
    # Imported at the first message, not at %load_ext: gettext brings the locale module along.
    import gettext

    folder = _CATALOGS.get(language)
    if folder is None:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=[folder], fallback=True)


def _(message: str) -> str:
    """``message`` in the current language."""
    return _translations(current()).gettext(message)


class Message:
    """A message id and its values, written in the language in force when it is shown. A value
    that is itself a :class:`Message` (or an error) is written in the same language."""

    __slots__ = ("id", "values")

    def __init__(self, message_id: str, /, **values: object) -> None:
        self.id = message_id
        self.values = values

    def __str__(self) -> str:
        if not self.id:
            return ""  # (the catalog's empty msgid is its header)
        text = _(self.id)
        return text.format(**self.values) if self.values else text

    def __repr__(self) -> str:
        return f"Message({self.id!r})"


def as_message(text: str | Message, /, **values: object) -> Message:
    """``text`` as a :class:`Message` filled with ``values``; a Message as it is."""
    return text if isinstance(text, Message) else Message(text, **values)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The singular or plural form for ``count``, in the current language."""
    return _translations(current()).ngettext(singular, plural, count)
