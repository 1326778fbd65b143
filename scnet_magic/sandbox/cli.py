"""``python -m scnet_magic.sandbox``: serve a sandbox until Ctrl-C, printing how to reach it."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time

from ..arguments import SANDBOX_WORKDIR_HELP, listen_port_argument
from ..i18n import _
from .core import Sandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scnet_magic.sandbox",
        description=_("Serve the SCNet notebook OpenAPI locally, for tests and demos."),
    )
    parser.add_argument(
        "--execute", action="store_true", help=_("really run start commands with /bin/sh")
    )
    parser.add_argument(
        "--port", type=listen_port_argument, default=0, help=_("port to listen on (default: any)")
    )
    parser.add_argument("--host", default="127.0.0.1", help=_("address to listen on"))
    parser.add_argument("--workdir", help=_(SANDBOX_WORKDIR_HELP))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    sandbox = Sandbox(execute=args.execute, host=args.host, port=args.port, workdir=args.workdir)
    # SIGTERM stops the sandbox as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        sandbox.start()
        # The login and platform hosts too, on ports of their own: the token's checks, booting
        # an instance and signing in go there, never to the real platform's addresses.
        for name in ("base_url", "token", "notebook_id", "login_url", "ac_url"):
            print(f"export SCNET_{name.upper()}={getattr(sandbox, name)}")
        hint = _(
            "or try signing in with %scnet_login / scnet login (a sandbox's sign-in is not "
            "saved to your config file):"
        )
        print("# " + hint)
        for name in ("user", "access_key", "secret_key"):
            print(f"export SCNET_{name.upper()}={getattr(sandbox, name)}")
        state = _("on") if args.execute else _("off (start answers like the documented example)")
        print(
            "# " + _("command execution is {state}. Press Ctrl-C to stop.").format(state=state),
            flush=True,
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    except OSError as error:
        message = _("cannot listen on {address}: {reason}")
        print(message.format(address=f"{args.host}:{args.port}", reason=error), file=sys.stderr)
        return 1
    finally:
        sandbox.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0
