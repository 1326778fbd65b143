"""The language messages are written in: English (the msgids in the code) or Simplified Chinese.

Messages are translated with the standard library's :mod:`gettext` from the catalog in
``scnet_magic/locale`` (the ``.po`` source and its compiled ``.mo`` both ship in the package).
Placeholders are named (``{port}``) and filled in after translation, so a translation may put
them in another order: ``_("port {port}").format(port=port)``.

The language is chosen at call time, first hit wins: the language a front end set for the call
(:func:`using`: ``%config ScnetMagics.language``, ``ScnetClient(language=...)``, ``scnet
--lang``), ``SCNET_LANG``, the ``language`` key of the config file, the process locale
(``LC_ALL``, ``LC_MESSAGES``, ``LANG``: ``zh…`` is Chinese), else English. A front end sets it
in a :class:`contextvars.ContextVar` for the duration of a call, so an error raised deep inside
the client comes out in the caller's language without a parameter passed everywhere.
"""

from __future__ import annotations

import functools
import gettext
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

DOMAIN = "scnet_magic"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGE_ENV = "SCNET_LANG"
LANGUAGES = ("en", "zh")  # what language settings resolve to
# The process locale's variables, in the order POSIX gives them precedence.
_LOCALE_VARS = ("LC_ALL", "LC_MESSAGES", "LANG")
# The catalog's folder name for each language (English needs none: the msgids are English).
_CATALOGS = {"zh": "zh_CN"}

_current: ContextVar[str | None] = ContextVar("scnet_language", default=None)


def N_(message: str) -> str:
    """Mark a message for the catalog without translating it yet (module-level tables)."""
    return message


def normalize(value: object) -> str:
    """``"en"`` or ``"zh"`` for a language setting such as "zh", "zh_CN", "zh-CN", "EN_us".

    Anything else is an :class:`InvalidInput` naming the accepted values.
    """
    from .errors import InvalidInput  # errors.py translates its messages with this module

    known = _known(value)
    if known is not None:
        return known
    shown = repr(value)[:40]
    raise InvalidInput(
        _("language must be en or zh (also zh_CN, zh-CN, en_US...), not {value}").format(
            value=shown
        )
    )


def _known(value: object) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    base = text.replace("-", "_").split(".")[0].split("_")[0].lower()
    return base if base in LANGUAGES else None


def _from_config_file() -> object:
    """The config file's ``language``; an unreadable file is left to report itself where the
    settings are read (a message must not fail for it), and read without the permission check
    (that warning belongs to reading the token).

    Not through config.read_config_file: its errors are translated messages, and translating
    one asks for the language, which would read the bad file again, without end.
    """
    from . import config  # config.py translates its messages with this module

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib

    try:
        table = tomllib.loads(config.config_path().read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return table.get("language")


def resolve(explicit: object = None, *, strict: bool = True) -> str:
    """The language for a call: ``explicit``, else ``SCNET_LANG``, the config file, the locale.

    ``strict`` (front ends) reports a bad value as :class:`InvalidInput`; otherwise (a message
    translated outside any front end's call) a bad or unreadable source is skipped.
    """
    from .errors import InvalidInput

    candidates: tuple[tuple[str, Callable[[], object]], ...] = (
        ("", lambda: explicit),
        (LANGUAGE_ENV, lambda: os.environ.get(LANGUAGE_ENV) or None),
        ("config file", _from_config_file),
    )
    for source, candidate in candidates:
        value = candidate()
        if value is None:
            continue
        if strict:
            try:
                return normalize(value)
            except InvalidInput as exc:
                if not source:
                    raise
                # Say where the bad value came from: it may be an old setting.
                raise InvalidInput(
                    _("{problem} (from {source})").format(problem=exc.message, source=source)
                ) from None
        # Not normalize(): its error message is itself translated, in the language being sought.
        known = _known(value)
        if known is not None:
            return known
    return locale_language()


def locale_language() -> str:
    """``"zh"`` when the process locale is Chinese (``zh_CN.UTF-8``, ``zh_TW``...), else English."""
    for name in _LOCALE_VARS:
        value = os.environ.get(name)
        if value:  # the first one set decides, as for the C library
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def chosen() -> str | None:
    """The language a front end set for the call in progress, or None outside any."""
    return _current.get()


def current() -> str:
    """The language messages are written in now."""
    return _current.get() or resolve(strict=False)


@contextmanager
def using(language: object = None) -> Iterator[str]:
    """Write messages in ``language`` until the block ends; without one, in the language
    already chosen for the enclosing call (a client used by a magic), else as :func:`resolve`
    finds it."""
    chosen = normalize(language) if language is not None else _current.get() or resolve()
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)


@functools.cache
def _translations(language: str) -> gettext.NullTranslations:
    folder = _CATALOGS.get(language)
    if folder is None:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, localedir=LOCALE_DIR, languages=[folder], fallback=True)


def in_language(method: Callable[P, R]) -> Callable[P, R]:
    """Run a method of an object with a ``language`` attribute under :func:`using` it."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        language = getattr(args[0], "language", None)
        if language is None:
            # Nothing to set: a message, if one is written, finds its language then
            # (current()). Resolving here would read the environment and the config file on
            # every call, for the rare call that writes a message.
            return method(*args, **kwargs)
        with using(language):
            return method(*args, **kwargs)

    return wrapper


def _(message: str) -> str:
    """``message`` in the current language."""
    return _translations(current()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The singular or plural form for ``count``, in the current language."""
    return _translations(current()).ngettext(singular, plural, count)
