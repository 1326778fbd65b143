"""What every magics class shares: the session it holds, and failures shown as one line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics

from .. import i18n
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
