"""What the guard costs a service: small requests and a large download, through the guard and
direct, side by side in one run.

    .venv/bin/python -m benchmarks.guard [--rounds N] [--size MiB]

The service is the tests' tornado service (tests/guard_service.py) in a process of its own;
the guard is a real guard process (as ``start_guard`` starts it) with a session cookie. Each
round measures both sides moments apart, in alternating order, and the ratio of the round's
medians is taken, so that a slow spell of the shared machine hits both sides alike; the
reported ratio is the median of the rounds' ratios.

Targets: small-request latency through the guard at most 1.2 times the direct one, and
download throughput at least 0.8 times. The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from guard_helpers import guard_in_front_of, running_service  # noqa: E402

LATENCY_TARGET = 1.2  # guard / direct, at most
THROUGHPUT_TARGET = 0.8  # guard / direct, at least
SMALL_REQUESTS = 200  # per side and round


def small_request_latency(session: requests.Session, url: str, cookie: str) -> float:
    """The median time of one small GET, in seconds."""
    times = []
    for _ in range(SMALL_REQUESTS):
        start = time.perf_counter()
        response = session.get(url, headers={"Cookie": cookie}, timeout=10)
        response.content  # noqa: B018 - read the whole answer
        times.append(time.perf_counter() - start)
        assert response.status_code == 200
    return statistics.median(times)


def download_throughput(session: requests.Session, url: str, cookie: str, size: int) -> float:
    """Bytes per second of one large download."""
    start = time.perf_counter()
    received = 0
    with session.get(url, headers={"Cookie": cookie}, stream=True, timeout=60) as response:
        for chunk in response.iter_content(1 << 20):
            received += len(chunk)
    elapsed = time.perf_counter() - start
    assert received == size, received
    return size / elapsed


def side_by_side(
    rounds: int, measure: Callable[[str], float], guard_url: str, direct_url: str
) -> tuple[float, float, float]:
    """Medians of (guard, direct, guard/direct) over rounds, alternating which side goes first."""
    guard_values, direct_values, ratios = [], [], []
    for number in range(rounds):
        if number % 2:
            direct, guard = measure(direct_url), measure(guard_url)
        else:
            guard, direct = measure(guard_url), measure(direct_url)
        guard_values.append(guard)
        direct_values.append(direct)
        ratios.append(guard / direct)
    return (
        statistics.median(guard_values),
        statistics.median(direct_values),
        statistics.median(ratios),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.guard", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size", type=int, default=200, help="download size in MiB")
    args = parser.parse_args(argv)
    size = args.size * 2**20

    with tempfile.TemporaryDirectory() as folder, running_service() as service_port:
        os.environ["SCNET_GUARD_DIR"] = folder
        with guard_in_front_of(service_port, Path(folder)) as guard:
            cookie = guard.session_cookie()
            direct = f"http://127.0.0.1:{service_port}"
            with requests.Session() as session:
                # Warm both paths (connections, imports, the service's first answers).
                small_request_latency(session, f"{guard.url}/echo", cookie)
                small_request_latency(session, f"{direct}/echo", cookie)
                latency = side_by_side(
                    args.rounds,
                    lambda base: small_request_latency(session, f"{base}/echo", cookie),
                    guard.url,
                    direct,
                )
                throughput = side_by_side(
                    args.rounds,
                    lambda base: download_throughput(session, f"{base}/big/{size}", cookie, size),
                    guard.url,
                    direct,
                )

    latency_met = latency[2] <= LATENCY_TARGET
    throughput_met = throughput[2] >= THROUGHPUT_TARGET
    print(f"{args.rounds} rounds; medians (guard / direct); ratio = median of the rounds' ratios")
    print(
        f"small GET latency: {latency[0] * 1e3:.3f} ms / {latency[1] * 1e3:.3f} ms, "
        f"ratio {latency[2]:.2f} (target <= {LATENCY_TARGET}) "
        f"{'met' if latency_met else 'MISSED'}"
    )
    print(
        f"{args.size} MiB download: {throughput[0] / 2**20:.0f} MiB/s / "
        f"{throughput[1] / 2**20:.0f} MiB/s, ratio {throughput[2]:.2f} "
        f"(target >= {THROUGHPUT_TARGET}) {'met' if throughput_met else 'MISSED'}"
    )
    return 0 if latency_met and throughput_met else 1


if __name__ == "__main__":
    sys.exit(main())
