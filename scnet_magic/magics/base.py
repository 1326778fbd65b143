"""What every magics class shares: the session it holds, and failures shown as one line."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics

from .. import display, i18n
from ..errors import ConfigError, InvalidInput, ScnetError, as_sentence
from .session import Session


class ShortError(UsageError):
    """A failure that is not the user's wrong usage (the platform refused, the service did not
    answer): one line under the error's own label ("ApiError: …") instead of "UsageError",
    still without a traceback, and still stopping "Run All"."""

    def __init__(self, message: str, label: str) -> None:
        super().__init__(message)
        self.label = label

    def _render_traceback_(self) -> list[str]:
        # IPython prints what this returns in place of a traceback (terminal and kernel).
        return [f"{self.label}: {self}"]


class SessionMagics(Magics):
    """A family of magics (registered with ``@magics_class``) holding the session's state."""

    session: Session

    def __init__(self, shell: Any, session: Session, **kwargs: Any) -> None:
        self.session = session
        super().__init__(shell=shell, **kwargs)

    @contextmanager
    def user_errors(self) -> Iterator[None]:
        """Turn a ScnetError into a one-line UsageError (unless short_errors is off), and write
        every message of the block in the session's language, which results shown later keep."""
        try:
            language = self.session.language()
            i18n.set_language(language)
            with i18n.using(language):
                yield
        except ShortError:
            raise
        except UsageError as exc:
            # A wrong line, said as a sentence like every other failure.
            raise UsageError(as_sentence(str(exc))) from None
        except ScnetError as exc:
            if not self.session.options.short_errors:
                raise
            if isinstance(exc, (InvalidInput, ConfigError)):
                raise UsageError(exc.user_message()) from None
            raise ShortError(exc.user_message(), exc.label()) from None

    def show(self, result: Any, magic: str, line: str) -> None:
        """Display the result of ``%magic line``: at once, unless IPython prints it after an
        ``Out[n]:`` prompt at the end of the cell (see :func:`scnet_magic.display.show`)."""
        display.show(result, now=not prompt_shows_value(self.shell, magic, line))


def prompt_shows_value(shell: Any, magic: str, line: str) -> bool:
    """Whether the cell running now ends with ``%magic line``, whose value IPython then prints
    after its ``Out[n]:`` prompt. Not in a script (``ipython file.ipy`` runs its cells
    silently), nor after an assignment or a ``;``, nor for a magic before the last line:
    waiting for the end of the cell there would show the result never, or after the output of
    a later line (its error included)."""
    executing = getattr(getattr(shell, "displayhook", None), "exec_result", None)
    info = getattr(executing, "info", None)
    if info is None or info.silent or info.raw_cell is None:
        return False
    try:
        body = ast.parse(shell.transform_cell(info.raw_cell)).body
    except SyntaxError:
        return False
    call = body[-1].value if body and isinstance(body[-1], ast.Expr) else None
    return (
        isinstance(call, ast.Call)
        and getattr(call.func, "attr", "") in ("run_line_magic", "run_cell_magic")
        and [getattr(arg, "value", None) for arg in call.args[:2]] == [magic, line]
        and not shell.displayhook.quiet()
    )
