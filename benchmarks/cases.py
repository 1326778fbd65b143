"""The measurements. Each returns table rows; a side that fails raises instead of being timed."""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

import scnet_magic
from benchmarks.harness import (
    Row,
    SandboxInfo,
    clean_env,
    fresh_process,
    interleaved,
    median,
    ms,
    paired_ratio,
    per_call,
    percentile,
)
from scnet_magic import ScnetClient, ScnetError
from scnet_magic.endpoints import START

PORT = 1223
COMMAND = "python app.py --port 1223"


@dataclass(frozen=True)
class Sizes:
    """How many repetitions each measurement makes."""

    import_reps: int
    shell_reps: int
    call_reps: int
    call_batch: int
    load_rounds: int
    ready_runs: int
    memory_reps: int
    memory_calls: int = 1000
    load_clients: int = 50
    load_requests: int = 40


QUICK = Sizes(
    import_reps=10,
    shell_reps=4,
    call_reps=60,
    call_batch=5,
    load_rounds=1,
    ready_runs=5,
    memory_reps=2,
)
FULL = Sizes(
    import_reps=40,
    shell_reps=20,
    call_reps=200,
    call_batch=5,
    load_rounds=3,
    ready_runs=15,
    memory_reps=5,
)


def _ratio_row(
    number: str, measurement: str, a: list[float], b: list[float], limit: float | None
) -> Row:
    ratio = paired_ratio(a, b)
    return Row(
        number,
        measurement,
        f"{ms(median(a))} vs {ms(median(b))} (n={len(a)})",
        f"{ratio:.2f}×",
        f"≤ {limit:.2f}×" if limit is not None else "(for information)",
        ratio <= limit if limit is not None else None,
    )


# -- 1. Import cost ---------------------------------------------------------------------------

# %load_ext in a shell, with %scnet_start given arguments, must not pull in the form's
# ipywidgets, the sandbox or the command line.
_LAZY_MODULES = ("ipywidgets", "scnet_magic.startform", "scnet_magic.sandbox", "scnet_magic.cli")
# A fresh process's InteractiveShell, as the measured processes below start it.
_SHELL = (
    "from IPython.core.interactiveshell import InteractiveShell\n"
    "from traitlets.config import Config\n"
    "cfg = Config()\n"
    "cfg.HistoryManager.enabled = False\n"
    "ip = InteractiveShell.instance(config=cfg)\n"
)
_IMPORTS_CHECK = (
    "import json, os, sys\n"
    + _SHELL
    + f"""
ip.run_line_magic("load_ext", "scnet_magic")
after_load = [m for m in {_LAZY_MODULES!r} if m in sys.modules]
with open(os.devnull, "w") as sink:
    sys.stdout, real = sink, sys.stdout
    result = ip.run_line_magic("scnet_start", sys.argv[1])
    sys.stdout = real
after_start = [m for m in {_LAZY_MODULES!r} if m in sys.modules]
print(json.dumps([after_load, after_start, result.pending]))
"""
)


def _magic_line(sandbox: SandboxInfo) -> str:
    return f'--id {sandbox.notebook_id} --port {PORT} --command "{COMMAND}"'


def import_cost(sizes: Sizes, sandbox: SandboxInfo) -> list[Row]:
    env = clean_env()
    # As pip does at install: the package's bytecode is there before the first import.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(scnet_magic.__file__).parent)],
        env=env,
        check=True,
    )
    samples = interleaved(
        {
            "scnet_magic": fresh_process("import IPython, requests, scnet_magic", env),
            "baseline": fresh_process("import IPython, requests", env),
        },
        sizes.import_reps,
    )
    rows = [
        _ratio_row(
            "1",
            "Import cost, fresh processes: `import IPython, requests, scnet_magic` vs "
            "`import IPython, requests`",
            samples["scnet_magic"],
            samples["baseline"],
            1.03,
        )
    ]

    out = subprocess.run(
        [sys.executable, "-c", _IMPORTS_CHECK, _magic_line(sandbox)],
        env=clean_env(SCNET_BASE_URL=sandbox.base_url, SCNET_TOKEN=sandbox.token),
        capture_output=True,
        text=True,
        check=True,
    )
    after_load, after_start, pending = json.loads(out.stdout.strip().splitlines()[-1])
    if not pending:
        raise RuntimeError("%scnet_start did not get the sandbox's pending answer")
    imported = sorted(set(after_load) | set(after_start))
    rows.append(
        Row(
            "1",
            "Not imported by `%load_ext` nor by `%scnet_start --id … --port … --command …`: "
            "ipywidgets, the form, the sandbox, the CLI",
            "—",
            f"imported: {', '.join(imported)}" if imported else "none imported",
            "none imported",
            not imported,
        )
    )

    shell_samples = interleaved(
        {
            "with": fresh_process(_SHELL + "ip.run_line_magic('load_ext', 'scnet_magic')", env),
            "without": fresh_process(_SHELL, env),
        },
        sizes.shell_reps,
    )
    extra = median(shell_samples["with"]) - median(shell_samples["without"])
    row = _ratio_row(
        "1",
        "Fresh process: InteractiveShell + `%load_ext scnet_magic` vs InteractiveShell alone "
        f"(adds {ms(extra)}; the client and requests wait for the first call)",
        shell_samples["with"],
        shell_samples["without"],
        1.10,
    )
    rows.append(row)
    return rows


# -- 2. Per-call cost -------------------------------------------------------------------------


def _payload(sandbox: SandboxInfo) -> dict[str, str]:
    return {"id": sandbox.notebook_id, "customizePort": str(PORT), "command": COMMAND}


def _expect_pending(envelope: Any) -> None:
    if envelope.get("code") != "0" or envelope["data"]["execSuccess"] is not False:
        raise RuntimeError(f"unexpected answer from the sandbox: {envelope!r}")


def per_call_cost(sizes: Sizes, sandbox: SandboxInfo) -> list[Row]:
    url = sandbox.base_url + START.path
    payload = _payload(sandbox)
    client = ScnetClient(base_url=sandbox.base_url, token=sandbox.token)
    session = requests.Session()

    def with_client() -> None:
        if not client.start_service(sandbox.notebook_id, PORT, COMMAND).pending:
            raise RuntimeError("start_service did not get the pending answer")

    def with_session() -> None:
        # A bare keep-alive session, reading the answer as any caller must.
        _expect_pending(session.post(url, json=payload, headers={"token": sandbox.token}).json())

    def documentation_style() -> None:
        # The platform documentation's Python example: a new connection for every call.
        headers = {"token": sandbox.token, "Content-Type": "application/json"}
        response = requests.request("POST", url, headers=headers, data=json.dumps(payload))
        _expect_pending(response.json())

    variants = {
        "client": per_call(with_client, sizes.call_batch),
        "session": per_call(with_session, sizes.call_batch),
        "docs": per_call(documentation_style, sizes.call_batch),
    }
    interleaved(variants, 2)  # warm-up: connections, lazy imports
    samples = interleaved(variants, sizes.call_reps)
    client.close()
    session.close()
    return [
        _ratio_row(
            "2",
            "Per call: `ScnetClient.start_service` vs a bare keep-alive "
            "`requests.Session().post` (same payload, same sandbox)",
            samples["client"],
            samples["session"],
            1.10,
        ),
        _ratio_row(
            "2",
            "Per call: `ScnetClient.start_service` vs the documentation's example "
            '(`requests.request("POST", …)`, a new connection per call)',
            samples["client"],
            samples["docs"],
            0.80,
        ),
    ]


# -- 3. Magic overhead ------------------------------------------------------------------------


def magic_overhead(sizes: Sizes, sandbox: SandboxInfo) -> list[Row]:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    cfg = Config()
    cfg.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=cfg)
    shell.run_line_magic("load_ext", "scnet_magic")
    line = _magic_line(sandbox)
    client = ScnetClient(base_url=sandbox.base_url, token=sandbox.token)

    def magic() -> None:
        if not shell.run_line_magic("scnet_start", line).pending:
            raise RuntimeError("%scnet_start did not get the pending answer")

    def with_client() -> None:
        if not client.start_service(sandbox.notebook_id, PORT, COMMAND).pending:
            raise RuntimeError("start_service did not get the pending answer")

    variants = {
        "magic": per_call(magic, sizes.call_batch),
        "client": per_call(with_client, sizes.call_batch),
    }
    saved = {name: os.environ.get(name) for name in ("SCNET_BASE_URL", "SCNET_TOKEN")}
    os.environ.update(SCNET_BASE_URL=sandbox.base_url, SCNET_TOKEN=sandbox.token)
    try:
        # The shell's display publisher prints the text form; a notebook would receive it.
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            interleaved(variants, 2)
            samples = interleaved(variants, sizes.call_reps)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shell.run_line_magic("unload_ext", "scnet_magic")
        client.close()
    extra = median([m - c for m, c in zip(samples["magic"], samples["client"], strict=True)])
    return [
        _ratio_row(
            "3",
            "Magic: `%scnet_start …` including display, in an InteractiveShell, "
            f"vs `ScnetClient.start_service` alone (adds {ms(extra)} per call)",
            samples["magic"],
            samples["client"],
            1.5,
        )
    ]


# -- 4. Sandbox under load --------------------------------------------------------------------


def _load_round(sizes: Sizes, sandbox: SandboxInfo) -> tuple[float, list[float], list[str]]:
    latencies: list[list[float]] = [[] for _ in range(sizes.load_clients)]
    errors: list[str] = []
    started: list[float] = []
    gate = threading.Barrier(sizes.load_clients, action=lambda: started.append(time.perf_counter()))

    def client_thread(index: int) -> None:
        # Each simulated user has a client, hence a keep-alive session, of its own.
        with ScnetClient(base_url=sandbox.base_url, token=sandbox.token) as client:
            gate.wait()
            for _ in range(sizes.load_requests):
                began = time.perf_counter()
                try:
                    if not client.start_service(sandbox.notebook_id, PORT, COMMAND).pending:
                        errors.append("not the pending answer")
                except ScnetError as exc:
                    errors.append(exc.user_message())
                latencies[index].append(time.perf_counter() - began)

    threads = [threading.Thread(target=client_thread, args=(i,)) for i in range(sizes.load_clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started[0]
    return wall, [x for per_thread in latencies for x in per_thread], errors


def sandbox_load(sizes: Sizes, sandbox: SandboxInfo) -> list[Row]:
    rounds = [_load_round(sizes, sandbox) for _ in range(sizes.load_rounds)]
    total = sizes.load_clients * sizes.load_requests
    rates = [total / wall for wall, _, _ in rounds]
    p50 = [percentile(lat, 50) for _, lat, _ in rounds]
    p99 = [percentile(lat, 99) for _, lat, _ in rounds]
    errors = [e for _, _, errs in rounds for e in errs]
    detail = f" (first: {errors[0]})" if errors else ""
    return [
        Row(
            "4",
            f"Sandbox under load, execution off: {sizes.load_clients} concurrent clients × "
            f"{sizes.load_requests} start requests, {len(rounds)} round(s)",
            f"{median(rates):.0f} req/s, p50 {ms(median(p50))}, p99 {ms(median(p99))}",
            f"{len(errors)} errors in {total * len(rounds)} requests{detail}",
            "0 errors",
            not errors,
        )
    ]


# -- 5. Readiness detection -------------------------------------------------------------------


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _LateService:
    """A web service that starts listening on ``port`` after ``delay`` seconds."""

    def __init__(self, port: int, delay: float) -> None:
        self.port = port
        self.delay = delay
        self.listening_at: float | None = None
        self._server: ThreadingHTTPServer | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        if self._stop.wait(self.delay):
            return
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _Ok)  # binds and listens
        self.listening_at = time.perf_counter()
        self._server = server
        server.serve_forever(poll_interval=0.05)

    def __enter__(self) -> _LateService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.delay + 1)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def readiness(sizes: Sizes, sandbox: SandboxInfo) -> list[Row]:
    measurement = (
        "Readiness: a service starts listening behind the sandbox's gateway 0.5–1.5 s after "
        "the wait begins; delay until the wait returns, and external checks made. Side by side: "
        "the wait as before (external checks only) vs with the local probe of 127.0.0.1:PORT"
    )
    from scnet_magic import readiness as ready_module

    if "local_port" not in ready_module.wait_until_ready.__code__.co_varnames:
        return [Row("5", measurement, "—", "not available in this version", "≤ 0.1 s", None)]
    from scnet_magic.sandbox import Sandbox

    rng = random.Random(20250301)
    # side -> (delays, external checks)
    sides: dict[str, tuple[list[float], list[int]]] = {"before": ([], []), "local probe": ([], [])}
    failures: list[str] = []
    with Sandbox(execute=True) as gateway_sandbox:
        for _ in range(sizes.ready_runs):
            delay = rng.uniform(0.5, 1.5)  # the same moment for both sides of a round
            for side, (delays, checks) in sides.items():
                port = _free_port()
                # The external address the platform would give: a gateway that answers 502
                # until the service listens.
                url = gateway_sandbox.external_url(gateway_sandbox.notebook_id, port)
                local = port if side == "local probe" else None
                with _LateService(port, delay) as service:
                    try:
                        ready = ready_module.wait_until_ready(url, 20, local_port=local)
                    except ScnetError as exc:
                        failures.append(f"{side}: {exc.user_message()}")
                        continue
                    returned = time.perf_counter()
                if service.listening_at is None or returned < service.listening_at:
                    failures.append(f"{side}: reported ready before the service listened")
                else:
                    delays.append(returned - service.listening_at)
                    checks.append(ready.attempts)
    if failures:
        result = f"{len(failures)} waits failed (first: {failures[0]})"
        return [Row("5", measurement, "—", result, "≤ 0.1 s", False)]
    (old, old_checks), (new, new_checks) = sides.values()
    met = median(new) <= 0.1 and median(new_checks) <= median(old_checks)
    return [
        Row(
            "5",
            measurement,
            f"{median(old):.3f} s vs {median(new):.3f} s (n={len(new)}, max {max(old):.3f} s vs "
            f"{max(new):.3f} s); external checks {median(old_checks):g} vs "
            f"{median(new_checks):g}",
            f"{median(new):.3f} s with the local probe",
            "≤ 0.1 s, no more checks",
            met,
        )
    ]


# -- 6. Memory --------------------------------------------------------------------------------

_MEMORY = (
    "import contextlib, os, sys\n"
    "from scnet_magic import ScnetClient\n"
    + _SHELL
    + """
calls, how, notebook_id, port, command = sys.argv[1:]
ip.run_line_magic("load_ext", "scnet_magic")
line = f'--id {notebook_id} --port {port} --command "{command}"'
client = ScnetClient()
with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
    for _ in range(int(calls)):
        if how == "magic":
            result = ip.run_line_magic("scnet_start", line)
        else:
            result = client.start_service(notebook_id, port, command)
        if not result.pending:
            raise SystemExit("no pending answer")


def peak_bytes():
    # VmHWM is this process's own high-water mark. ru_maxrss is not: on Linux it keeps the
    # parent's RSS at the moment of the fork, which would hide a small child's growth.
    try:
        with open("/proc/self/status") as status:
            for entry in status:
                if entry.startswith("VmHWM:"):
                    return int(entry.split()[1]) * 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


print(peak_bytes())
"""
)


def memory(sizes: Sizes, sandbox: SandboxInfo) -> list[Row]:
    env = clean_env(SCNET_BASE_URL=sandbox.base_url, SCNET_TOKEN=sandbox.token)

    def peak_mb(calls: int, how: str) -> float:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                _MEMORY,
                str(calls),
                how,
                sandbox.notebook_id,
                str(PORT),
                COMMAND,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return int(out.stdout.split()[-1]) / 1e6

    samples = interleaved(
        {
            "magic": lambda: peak_mb(sizes.memory_calls, "magic"),
            "client": lambda: peak_mb(sizes.memory_calls, "client"),
            "none": lambda: peak_mb(0, "client"),
        },
        sizes.memory_reps,
    )
    baseline = median(samples["none"])
    rows = []
    for how, what in (
        (
            "magic",
            "runs `%scnet_start` {n} times in an InteractiveShell (IPython 9 itself keeps every "
            "displayed output in memory, about 3 kB for each result shown; a Jupyter kernel "
            "does not)",
        ),
        ("client", "calls `ScnetClient.start_service` {n} times"),
    ):
        growth = median(samples[how]) - baseline
        rows.append(
            Row(
                "6",
                "Memory: peak RSS of a process that loads the extension and "
                + what.format(n=f"{sizes.memory_calls:,}")
                + ", vs the same process without the calls",
                f"{median(samples[how]):.1f} MB vs {baseline:.1f} MB (n={sizes.memory_reps})",
                f"{growth:+.1f} MB",
                "≤ +5 MB",
                growth <= 5,
            )
        )
    return rows


CASES = {
    "1": import_cost,
    "2": per_call_cost,
    "3": magic_overhead,
    "4": sandbox_load,
    "5": readiness,
    "6": memory,
}
