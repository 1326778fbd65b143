"""The account in the magics: ``%scnet_token`` (the token at a hidden prompt, never on the
line) and ``%scnet_login`` (signing in with an access key pair, renewing, the status)."""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING

from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument
from IPython.display import display as show_widget

from .. import arguments, display, validation
from ..errors import Sentences
from ..i18n import N_, Message, _
from .base import SessionMagics
from .line import ask, forget_input, option, parse, readable_arguments, split

if TYPE_CHECKING:
    from ..models import Menu


@magics_class
class AccountMagics(SessionMagics):
    """Where the session's token comes from."""

    @line_magic
    def scnet_token(self, line: str = "") -> None:
        """Ask for the SCNET token without echoing it; keep it in memory for this session.

        ``%scnet_token --clear`` forgets it. The token is never accepted on the line itself:
        the line is saved in the input history.
        """
        with self.user_errors():
            try:
                words = split(line)
            except UsageError:
                words = line.split()  # unbalanced quotes: still never echo the words
            values = [word for word in words if word != "--clear"]
            if values:
                # Do not echo the words: they may well be the token. The line is already in
                # the input history: take it out of there too.
                forget_input(self.shell, values)
                raise UsageError(
                    Sentences(
                        N_(
                            "%scnet_token takes no value on the line; the line was removed from "
                            "this session's input history"
                        ),
                        N_(
                            "If it was a token, it has been seen: replace it with a new one. "
                            "Run %scnet_token alone and paste the token at the prompt."
                        ),
                    )
                )
            if words:
                self.session.use_token(None)
                print(_("SCNET token cleared for this session."))
                return
            try:
                typed = getpass.getpass(_("SCNET token (hidden): "))
            except KeyboardInterrupt:
                print(_("Cancelled; the token is unchanged."))
                return
            self.session.use_token(validation.validate_token(typed))
            print(_("SCNET token set for this session (kept in memory only)."))

    def _terminal_menu(self) -> Menu | None:
        """At a terminal (no widgets, a keyboard on stdin): the numbered list of regions that
        ``scnet login`` offers, instead of an error asking for --region."""
        if self.session.widgets_shown() or not sys.stdin.isatty():
            return None
        from .. import account as accounts

        def read_line(prompt: str) -> str:
            try:
                return input(prompt)
            except EOFError:
                return ""

        return lambda account: accounts.pick_region(account, read_line, print)

    @readable_arguments(
        summary=N_(
            "Sign in with an access key pair; this session then uses the region's token and "
            "address."
        )
    )
    @option(arguments.REGION)
    @option(arguments.USER)
    @argument(
        "--save",
        action="store_true",
        help=N_(
            "Also write the token and address (never a key) to the user config file, "
            "readable by you only."
        ),
    )
    @option(arguments.RENEW)
    @argument(
        "--forget",
        action="store_true",
        help=N_(
            "Sign out: remove the saved token and addresses from the user config file and "
            "forget this session's sign-in."
        ),
    )
    @option(arguments.LOGIN_STATUS)
    @line_magic
    def scnet_login(self, line: str = "") -> None:
        """Sign in with an access key pair; this session then uses the region's token and address.

        Examples::

            %scnet_login                      # asks for what is not set; one region, or a list
            %scnet_login --region 昆山 --save
            %scnet_login --status
            %scnet_login --renew
            %scnet_login --forget             # sign out: the saved token and addresses go

        The account name, access key and secret key come from SCNET_USER, SCNET_ACCESS_KEY and
        SCNET_SECRET_KEY, the config file (user, access_key, secret_key), or hidden prompts; the
        keys are never accepted on the line (it is saved in the history) and the secret key is
        kept nowhere. Sign-in goes to https://api.scnet.cn (SCNET_LOGIN_URL), region
        discovery, renewal and the token check to https://www.scnet.cn (SCNET_AC_URL).
        """
        with self.user_errors():
            args = parse(self.scnet_login, line)
            signing_in = args.region or args.user
            if args.forget and (args.status or args.renew or args.save or signing_in):
                raise UsageError(Message(N_("%scnet_login --forget takes no other option")))
            if args.status and (args.renew or args.save or signing_in):
                raise UsageError(Message(N_("%scnet_login --status takes no other option")))
            if args.renew and signing_in:
                raise UsageError(
                    Message(
                        N_(
                            "%scnet_login --renew keeps the region: give --region or --user "
                            "only when signing in"
                        )
                    )
                )
            if args.forget:
                display.show_lines(self.session.sign_out())
            elif args.status:
                display.show_lines(self.session.login_status())
            elif args.renew:
                display.show_lines(self.session.renew(save=args.save), "ok")
            else:
                try:
                    shown = self.session.sign_in(
                        args.region, args.user, ask, save=args.save, menu=self._terminal_menu()
                    )
                except KeyboardInterrupt:
                    # Ctrl-C at a prompt: the user changed their mind, not a failure.
                    print(_("Cancelled; nothing was changed."))
                    return
                if isinstance(shown, str):
                    display.show_lines(shown, "ok")
                else:  # a dropdown of the account's regions
                    show_widget(shown)
