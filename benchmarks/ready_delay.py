"""How long after a service starts listening does a wait report it ready?

A service starts listening at a known moment behind the sandbox's gateway (which answers 502
until then, like the platform's); the wait polls the external URL as ``--wait`` does. The delay
is the time from the listen() call to the wait's return, so it is the cost of the polling
interval plus one check through the gateway::

    python benchmarks/ready_delay.py                 # listens 3 s after the wait starts
    python benchmarks/ready_delay.py --spread 1 10   # at a random moment in [1, 10] s
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

from scnet_magic.readiness import wait_until_ready
from scnet_magic.sandbox import Sandbox


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def one_run(sandbox: Sandbox, listen_after: float) -> float:
    """Seconds from the service listening to the wait reporting ready."""
    with ThreadingHTTPServer(("127.0.0.1", 0), _Quiet) as probe_port:
        port = probe_port.server_port  # a free port, released again below
    url = sandbox.external_url(sandbox.notebook_id, port)
    listened_at: list[float] = []
    servers: list[ThreadingHTTPServer] = []

    def serve_later() -> None:
        time.sleep(listen_after)
        server = ThreadingHTTPServer(("127.0.0.1", port), _Quiet)  # binds and listens
        listened_at.append(time.monotonic())
        servers.append(server)
        server.serve_forever(poll_interval=0.05)

    threading.Thread(target=serve_later, daemon=True).start()
    started = time.monotonic()
    ready = wait_until_ready(url, 60, since=started)
    ready_at = started + ready.elapsed
    servers[0].shutdown()
    servers[0].server_close()
    return ready_at - listened_at[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--after", type=float, default=3.0, help="listen this many s in")
    parser.add_argument("--spread", type=float, nargs=2, metavar=("LOW", "HIGH"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    delays: list[float] = []
    with Sandbox(execute=True) as sandbox:
        for run in range(1, args.runs + 1):
            after = rng.uniform(*args.spread) if args.spread else args.after
            delays.append(one_run(sandbox, after))
            print(f"run {run:2d}: listened at {after:5.2f} s, ready {delays[-1]:.3f} s later")
    print(
        f"median {statistics.median(delays):.3f} s, min {min(delays):.3f} s, "
        f"max {max(delays):.3f} s over {len(delays)} runs"
    )


if __name__ == "__main__":
    main()
