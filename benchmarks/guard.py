"""What the guard costs a service, next to what a user would otherwise put in front of it:
small requests and a large download direct, through the cheapest possible relay, through
nginx with ``auth_basic``, and through the guard, side by side in one run; then the guard's
memory after a large WebSocket exchange and after many idle connections.

    .venv/bin/python -m benchmarks.guard [--rounds N] [--size MiB]

The service is the tests' tornado service (tests/guard_service.py) in a process of its own;
the guard is a real guard process (as ``start_guard`` starts it) with a session cookie; nginx
(benchmarks/nginx_peer.py, skipped with a message where nginx is not installed) checks HTTP
Basic against an htpasswd file; the plain relay (benchmarks/plain_relay.py) copies bytes
between two sockets and does nothing else, so it shows what any process in between costs on
this machine. Each round measures every side moments apart, in rotating order, and each ratio
is the median of the rounds' ratios, so that a slow spell of the shared machine hits every
side alike.

Ratios: latency is a ratio of times (lower is better); a download is a ratio of throughputs
(higher is better), so "guard / nginx 1.0" means as fast as nginx.

The guard's CPU time per GiB downloaded is read from /proc: the download rate one core would
sustain for the guard alone, when the client and the service do not compete with it for the
CPU (this machine's two cores are shared by all the processes).

Targets: small-request latency through the guard at most 1.5 times nginx's, download
throughput at least nginx's, and the guard under 100 MB resident after a 200 MB WebSocket
exchange and after 1,000 idle connections. The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests

from . import nginx_peer
from .harness import interleaved, paired_ratio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from guard_helpers import Guarded, basic, guard_in_front_of, running_service  # noqa: E402

LATENCY_TARGET = 1.5  # guard / nginx, at most
THROUGHPUT_TARGET = 1.0  # guard / nginx, at least
MEMORY_TARGET_MIB = 100  # the guard's resident memory after each memory check, below
WEBSOCKET_BYTES = 200 * 2**20
WEBSOCKET_MESSAGE = 2**20
IDLE_CONNECTIONS = 1000
SMALL_REQUESTS = 200  # per side and round
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def small_request_latency(session: requests.Session, url: str) -> float:
    """The median time of one small GET, in seconds."""
    times = []
    for _ in range(SMALL_REQUESTS):
        start = time.perf_counter()
        response = session.get(url, timeout=10)
        response.content  # noqa: B018 - read the whole answer
        times.append(time.perf_counter() - start)
        assert response.status_code == 200
    return statistics.median(times)


def download_seconds(session: requests.Session, url: str, size: int) -> float:
    """The time one large download takes."""
    start = time.perf_counter()
    received = 0
    with session.get(url, stream=True, timeout=60) as response:
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


@contextlib.contextmanager
def guard_run_by(python: str, service_port: int, folder: Path) -> Iterator[Guarded]:
    """A guard started by another interpreter: ``start_guard`` runs the guard with its own."""
    folder.mkdir()
    executable = sys.executable
    sys.executable = python
    try:
        with guard_in_front_of(service_port, folder) as guard:
            sys.executable = executable
            yield guard
    finally:
        sys.executable = executable


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc status")


def websocket_exchange(port: int) -> None:
    """``WEBSOCKET_BYTES`` each way through the guard, in messages of ``WEBSOCKET_MESSAGE``."""
    import websocket  # a test dependency, like the tests' service

    connection = websocket.create_connection(
        f"ws://127.0.0.1:{port}/ws", header=[f"Authorization: {basic()['Authorization']}"]
    )
    with contextlib.closing(connection):
        connection.recv()  # the service's greeting
        message = bytes(WEBSOCKET_MESSAGE)
        for _ in range(WEBSOCKET_BYTES // WEBSOCKET_MESSAGE):
            connection.send_binary(message)
            assert len(connection.recv()) == WEBSOCKET_MESSAGE


@contextlib.contextmanager
def idle_connections(port: int, count: int) -> Iterator[None]:
    """``count`` connections to the guard, each having sent nothing."""
    with contextlib.ExitStack() as stack:
        for _ in range(count):
            stack.enter_context(socket.create_connection(("127.0.0.1", port)))
        time.sleep(1)  # the guard accepts them
        yield


def memory_checks(guard_pid: int, guard_port: int) -> dict[str, float]:
    """The guard's resident memory (MiB) before, after a WebSocket exchange, and while and
    after ``IDLE_CONNECTIONS`` idle connections are open."""
    figures = {"at rest": resident_mib(guard_pid)}
    websocket_exchange(guard_port)
    time.sleep(1)
    figures["after the WebSocket exchange"] = resident_mib(guard_pid)
    with idle_connections(guard_port, IDLE_CONNECTIONS):
        figures[f"with {IDLE_CONNECTIONS} idle connections"] = resident_mib(guard_pid)
    time.sleep(1)
    figures["after they closed"] = resident_mib(guard_pid)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.guard", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size", type=int, default=200, help="download size in MiB")
    parser.add_argument(
        "--baseline-python",
        help="also measure a guard run by this interpreter (one with another version of "
        "scnet-magic installed), as 'baseline'",
    )
    args = parser.parse_args(argv)
    size = args.size * 2**20
    missing = nginx_peer.available()

    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        service_port = stack.enter_context(running_service())
        guard = stack.enter_context(guard_in_front_of(service_port, Path(folder)))
        relay_port = stack.enter_context(plain_relay(service_port))
        bases = {
            "guard": guard.url,
            "relay": f"http://127.0.0.1:{relay_port}",
            "direct": f"http://127.0.0.1:{service_port}",
        }
        sessions = {name: stack.enter_context(requests.Session()) for name in bases}
        sessions["guard"].headers["Cookie"] = guard.session_cookie()
        if args.baseline_python:
            baseline = stack.enter_context(
                guard_run_by(args.baseline_python, service_port, Path(folder) / "baseline")
            )
            bases["baseline"] = baseline.url
            sessions["baseline"] = stack.enter_context(requests.Session())
            sessions["baseline"].headers["Cookie"] = baseline.session_cookie()
        if missing is None:
            nginx_port, nginx_config = stack.enter_context(
                nginx_peer.nginx_in_front_of(service_port)
            )
            bases["nginx"] = f"http://127.0.0.1:{nginx_port}"
            sessions["nginx"] = stack.enter_context(requests.Session())
            sessions["nginx"].auth = (nginx_peer.USER, nginx_peer.PASSWORD)
        else:
            print(f"nginx skipped: {missing}")

        def latency_of(name: str) -> Callable[[], float]:
            return lambda: small_request_latency(sessions[name], f"{bases[name]}/echo")

        guard_cpu: list[float] = []

        def download_of(name: str) -> Callable[[], float]:
            def measure() -> float:
                url = f"{bases[name]}/big/{size}"
                before = cpu_seconds(guard.record.pid)
                seconds = download_seconds(sessions[name], url, size)
                if name == "guard":
                    guard_cpu.append(cpu_seconds(guard.record.pid) - before)
                return seconds

            return measure

        for name in bases:  # warm every path (connections, imports, the first answers)
            latency_of(name)()
        latency = interleaved({name: latency_of(name) for name in bases}, args.rounds)
        download = interleaved({name: download_of(name) for name in bases}, args.rounds)
        memory = memory_checks(guard.record.pid, guard.record.port)

    def rate(seconds: float) -> str:
        return f"{size / seconds / 2**20:.0f} MiB/s"

    def slower(name: str, other: str) -> float:  # latency: a ratio of times
        return paired_ratio(latency[name], latency[other])

    def faster(name: str, other: str) -> float:  # download: a ratio of throughputs
        return paired_ratio(download[other], download[name])

    pairs = [("guard", "direct"), ("relay", "direct"), ("guard", "relay")]
    if "baseline" in bases:
        pairs += [("guard", "baseline"), ("baseline", "nginx")]
    pairs = [pair for pair in pairs if pair[1] in bases]
    if "nginx" in bases:
        pairs += [("nginx", "direct")]

    met = []

    def ratios(ratio: Callable[[str, str], float], target: str, within: bool) -> str:
        """The ratios' line, ending with guard / nginx and whether it is ``within`` target."""
        line = "  " + "; ".join(f"{a} / {b} {ratio(a, b):.2f}" for a, b in pairs)
        if "nginx" in bases:
            met.append(within)
            line += f"; guard / nginx {ratio('guard', 'nginx'):.2f} (target {target}) "
            line += "met" if within else "MISSED"
        return line

    median = statistics.median
    print(f"{args.rounds} rounds; medians; each ratio is the median of the rounds' ratios")
    print(
        "small GET latency: "
        + ", ".join(f"{name} {median(latency[name]) * 1e3:.3f} ms" for name in bases)
    )
    nginx = "nginx" in bases
    print(
        ratios(
            slower,
            f"<= {LATENCY_TARGET}",
            nginx and slower("guard", "nginx") <= LATENCY_TARGET,
        )
    )
    print(
        f"{args.size} MiB download: "
        + ", ".join(f"{name} {rate(median(download[name]))}" for name in bases)
    )
    print(
        ratios(
            faster,
            f">= {THROUGHPUT_TARGET}",
            nginx and faster("guard", "nginx") >= THROUGHPUT_TARGET,
        )
    )
    print(
        f"  the guard's CPU: {median(guard_cpu) / (size / 2**30):.2f} s per GiB, "
        f"so one core of its own would carry {rate(median(guard_cpu))}"
    )
    met.append(all(value < MEMORY_TARGET_MIB for value in memory.values()))
    print(
        "the guard's resident memory: "
        + "; ".join(f"{what} {value:.0f} MiB" for what, value in memory.items())
        + f" (target < {MEMORY_TARGET_MIB} MiB) "
        + ("met" if met[-1] else "MISSED")
    )
    if "nginx" in bases:
        print("nginx's configuration:")
        print(nginx_config)
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
