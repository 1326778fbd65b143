"""What the guard costs a service: small requests and a large download, direct, through the
cheapest possible relay, and through the guard, side by side in one run.

    .venv/bin/python -m benchmarks.guard [--rounds N] [--size MiB]

The service is the tests' tornado service (tests/guard_service.py) in a process of its own;
the guard is a real guard process (as ``start_guard`` starts it) with a session cookie; the
plain relay (benchmarks/plain_relay.py) copies bytes between two sockets and does nothing else,
so it shows what any process in between costs on this machine. Each round measures the three
sides moments apart, in rotating order, and each ratio is the median of the rounds' ratios, so
that a slow spell of the shared machine hits every side alike.

The guard's CPU time per GiB downloaded is read from /proc: the download rate one core would
sustain for the guard alone, when the client and the service do not compete with it for the
CPU (this machine's two cores are shared by all three processes).

Targets: small-request latency through the guard at most 1.2 times the direct one, and
download throughput at least 0.8 times. The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from .harness import interleaved, paired_ratio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from guard_helpers import guard_in_front_of, running_service  # noqa: E402

LATENCY_TARGET = 1.2  # guard / direct, at most
THROUGHPUT_TARGET = 0.8  # guard / direct, at least
SMALL_REQUESTS = 200  # per side and round
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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


def download_seconds(session: requests.Session, url: str, cookie: str, size: int) -> float:
    """The time one large download takes."""
    start = time.perf_counter()
    received = 0
    with session.get(url, headers={"Cookie": cookie}, stream=True, timeout=60) as response:
        for chunk in response.iter_content(1 << 20):
            received += len(chunk)
    elapsed = time.perf_counter() - start
    assert received == size, received
    return elapsed


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@contextlib.contextmanager
def plain_relay(service_port: int) -> Iterator[int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.plain_relay", str(service_port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield int(process.stdout.readline())
    finally:
        process.kill()
        process.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.guard", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size", type=int, default=200, help="download size in MiB")
    args = parser.parse_args(argv)
    size = args.size * 2**20

    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        service_port = stack.enter_context(running_service())
        guard = stack.enter_context(guard_in_front_of(service_port, Path(folder)))
        relay_port = stack.enter_context(plain_relay(service_port))
        cookie = guard.session_cookie()
        bases = {
            "guard": guard.url,
            "relay": f"http://127.0.0.1:{relay_port}",
            "direct": f"http://127.0.0.1:{service_port}",
        }
        sessions = {name: stack.enter_context(requests.Session()) for name in bases}

        def latency_of(name: str) -> Callable[[], float]:
            return lambda: small_request_latency(sessions[name], f"{bases[name]}/echo", cookie)

        guard_cpu: list[float] = []

        def download_of(name: str) -> Callable[[], float]:
            def measure() -> float:
                url = f"{bases[name]}/big/{size}"
                before = cpu_seconds(guard.record.pid)
                seconds = download_seconds(sessions[name], url, cookie, size)
                if name == "guard":
                    guard_cpu.append(cpu_seconds(guard.record.pid) - before)
                return seconds

            return measure

        for name in bases:  # warm every path (connections, imports, the first answers)
            latency_of(name)()
        latency = interleaved({name: latency_of(name) for name in bases}, args.rounds)
        download = interleaved({name: download_of(name) for name in bases}, args.rounds)

    def rate(seconds: float) -> str:
        return f"{size / seconds / 2**20:.0f} MiB/s"

    latency_ratio = paired_ratio(latency["guard"], latency["direct"])
    # Throughput is size / time, so its ratio is the inverse of the times'.
    throughput_ratio = paired_ratio(download["direct"], download["guard"])
    latency_met = latency_ratio <= LATENCY_TARGET
    throughput_met = throughput_ratio >= THROUGHPUT_TARGET
    median = statistics.median
    print(f"{args.rounds} rounds; medians; each ratio is the median of the rounds' ratios")
    print(
        "small GET latency: "
        + ", ".join(f"{name} {median(latency[name]) * 1e3:.3f} ms" for name in bases)
    )
    print(
        f"  guard / direct {latency_ratio:.2f} (target <= {LATENCY_TARGET}) "
        f"{'met' if latency_met else 'MISSED'}; "
        f"relay / direct {paired_ratio(latency['relay'], latency['direct']):.2f}; "
        f"guard / relay {paired_ratio(latency['guard'], latency['relay']):.2f}"
    )
    print(
        f"{args.size} MiB download: "
        + ", ".join(f"{name} {rate(median(download[name]))}" for name in bases)
    )
    print(
        f"  guard / direct {throughput_ratio:.2f} (target >= {THROUGHPUT_TARGET}) "
        f"{'met' if throughput_met else 'MISSED'}; "
        f"relay / direct {paired_ratio(download['direct'], download['relay']):.2f}; "
        f"guard / relay {paired_ratio(download['relay'], download['guard']):.2f}"
    )
    print(
        f"  the guard's CPU: {median(guard_cpu) / (size / 2**30):.2f} s per GiB, "
        f"so one core of its own would carry {rate(median(guard_cpu))}"
    )
    return 0 if latency_met and throughput_met else 1


if __name__ == "__main__":
    sys.exit(main())
