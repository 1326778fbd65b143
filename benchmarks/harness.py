"""Timing, the sandbox process, the environment report and the results table."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("scnet-magic", "ipython", "requests", "urllib3", "ipywidgets", "traitlets")


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    number: str
    measurement: str
    medians: str
    result: str
    target: str
    met: bool | None  # None: nothing to judge (informational, or not available here)


@dataclass(frozen=True)
class SandboxInfo:
    base_url: str
    token: str
    notebook_id: str


def interleaved(variants: dict[str, Callable[[], float]], reps: int) -> dict[str, list[float]]:
    """Run every variant ``reps`` times, taking turns, and collect what each call returns.

    Each callable returns the seconds one repetition took. The order rotates on every round,
    so no variant always runs first (cold caches) or last (after the others warmed the machine).
    """
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(variants[name]())
    return samples


def per_call(call: Callable[[], object], batch: int) -> Callable[[], float]:
    """A repetition of ``batch`` calls, returning the seconds per call."""

    def repetition() -> float:
        started = time.perf_counter()
        for _ in range(batch):
            call()
        return (time.perf_counter() - started) / batch

    return repetition


def fresh_process(code: str, env: dict[str, str]) -> Callable[[], float]:
    """A repetition that runs ``python -c code`` in a new process, returning its wall time."""

    def repetition() -> float:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=tempfile.gettempdir(),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - started

    return repetition


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """The median of the round-by-round ratios a[i] / b[i].

    Both sides of a round ran moments apart, so a slow spell of a shared machine (another
    job's test run) slows both and cancels out of their ratio.
    """
    return median([x / y for x, y in zip(a, b, strict=True)])


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without SCNET_* settings, and no user config file.

    A developer's own token or config file must not change what is measured.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCNET_")}
    # An installed package has its bytecode (pip compiles it); without this, every fresh
    # process would compile the project's sources and not the site-packages' it compares with.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["SCNET_CONFIG_FILE"] = str(Path(tempfile.gettempdir()) / "scnet-bench-no-config.toml")
    env.update(extra)
    return env


@contextlib.contextmanager
def sandbox_process(*extra_args: str) -> Iterator[SandboxInfo]:
    """The sandbox in a process of its own, as ``python -m scnet_magic.sandbox`` runs it.

    A separate process keeps the server's work off the measured process's interpreter lock,
    as with the real platform.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "scnet_magic.sandbox", *extra_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_env(),
        cwd=tempfile.gettempdir(),
    )
    try:
        exports: dict[str, str] = {}
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("export "):
                name, _, value = line[len("export ") :].strip().partition("=")
                exports[name] = value
            elif line.startswith("#"):
                break
        if proc.poll() is not None or "SCNET_TOKEN" not in exports:
            raise RuntimeError("the sandbox process did not start")
        yield SandboxInfo(
            exports["SCNET_BASE_URL"], exports["SCNET_TOKEN"], exports["SCNET_NOTEBOOK_ID"]
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "scnet_magic"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes to scnet_magic)" if dirty else "")


def environment() -> list[str]:
    """Machine and package versions, as Markdown list items."""
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return [
        f"- Machine: {_cpu_model()}, {os.cpu_count()} CPUs, {platform.platform()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()})",
        f"- Packages: {', '.join(versions)}",
        f"- Commit: {_commit()}",
    ]


def table(rows: Sequence[Row]) -> str:
    marks = {True: "yes", False: "**NO**", None: "—"}
    lines = [
        "| # | Measurement | Medians | Result | Target | Met |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.number} | {r.measurement} | {r.medians} | {r.result} | {r.target} | {marks[r.met]} |"
        for r in rows
    ]
    return "\n".join(lines)
