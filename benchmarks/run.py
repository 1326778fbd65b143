"""``python -m benchmarks [--quick] [--only 1,2] [--output PATH]``: run, print, write RESULTS.md."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

from benchmarks.cases import CASES, FULL, QUICK
from benchmarks.harness import Row, clean_env, environment, sandbox_process, table

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

_INTRO = """\
# Benchmark results

What scnet-magic costs a notebook, measured side by side: both sides of each comparison run in
the same benchmark run, taking turns (interleaved repetitions). The table reports each side's
median and the median of the round-by-round ratios (both sides of a round ran moments apart,
so a slow spell of the shared machine cancels out). Absolute times on a shared machine are
noise: compare ratios, not times across runs. The API is the local sandbox
(`python -m scnet_magic.sandbox`, execution off) in a process of its own, so the times are the
client's and the loopback's, not a remote platform's: the worst case for any client-side
overhead. Rerun with `python -m benchmarks` (about two
minutes) or `python -m benchmarks --quick` (under a minute).
"""

_NOTES = """\
Notes:

- Import cost: each repetition is a new `python -c` process (interpreter start included), with
  the package's bytecode compiled first, as pip does at install (`PYTHONDONTWRITEBYTECODE` is
  dropped for the measured processes). `import scnet_magic` imports neither `requests` nor
  IPython, and `%load_ext` imports only what registering the magics needs: the client,
  `requests`, the widgets and the sandbox come with the first call that uses them.
- Per call: the bare session and the documentation-style call also parse the JSON answer, as any
  caller must; `start_service` additionally validates the input and the answer and extracts the
  URL. One repetition is a batch of 5 calls; the medians are over repetitions.
- Magic: `shell.run_line_magic("scnet_start", …)` in a real `InteractiveShell` (history off),
  including building and publishing the HTML, text and JSON display; the shell prints the text
  form to a discarded stdout.
- Load: threads in one process, each with its own `ScnetClient` (so its own keep-alive session);
  latencies are per request, first connection included. The sandbox logs each request, as
  when it is run from a shell. (This load once found that the
  sandbox listened with socketserver's backlog of 5, which turned a burst of 50 connections
  into connection resets and one-second SYN retransmissions; it now listens with 128.)
- Memory: peak RSS (`VmHWM`) of a fresh process; 1 MB = 10^6 bytes. The growth with
  `%scnet_start` in a plain `InteractiveShell` is IPython's: since IPython 9 the shell keeps
  every displayed output in `history_manager.outputs`; with that record cleared, 2,000 magic
  calls leave no growth (checked with `tracemalloc`), and ipykernel does not keep it.
- Readiness: the service is a thread that binds its port 0.5–1.5 s after the wait begins; the
  URL waited on is the sandbox's gateway (execution on), which answers 502 until the service
  listens, as the platform's does. Both sides of each round wait for a service that listens at
  the same moment: "before" polls the external URL only (first check at once, then 0.25 s
  growing to 2 s), as the wait did before; "local probe" also tries `127.0.0.1:PORT` every
  0.1 s and checks the external URL the moment it accepts. Ready still needs an external answer
  other than 502/503/504; "external checks" counts the requests to the URL per wait.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Measure what scnet-magic costs a notebook."
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions: under a minute, noisier"
    )
    parser.add_argument(
        "--only", metavar="N,N", help=f"run only these measurements ({', '.join(CASES)})"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help="where to write the Markdown results"
    )
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(CASES)
    unknown = [n for n in chosen if n not in CASES]
    if unknown:
        parser.error(f"unknown measurement {', '.join(unknown)}; known: {', '.join(CASES)}")
    sizes = QUICK if args.quick else FULL

    # Nothing from the developer's own configuration may change what is measured.
    environ = clean_env()
    os.environ.clear()
    os.environ.update(environ)

    began = time.perf_counter()
    rows: list[Row] = []
    with sandbox_process() as sandbox:
        for number in chosen:
            print(f"measuring {number} …", end=" ", file=sys.stderr, flush=True)
            case_began = time.perf_counter()
            rows += CASES[number](sizes, sandbox)
            print(f"{time.perf_counter() - case_began:.0f} s", file=sys.stderr, flush=True)
    wall = time.perf_counter() - began

    mode = "quick" if args.quick else "full"
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    result_table = table(rows)
    print(result_table)
    print(f"\n{mode} run, {wall:.0f} s", file=sys.stderr)
    # Sections measured by their own scripts (## Guard: benchmarks/guard.py) are kept.
    kept = ""
    if args.output.exists():
        previous = args.output.read_text(encoding="utf-8")
        start = previous.find("\n## ")
        kept = previous[start:] if start >= 0 else ""
    args.output.write_text(
        "\n".join(
            [
                _INTRO,
                result_table,
                "",
                f"Run: {stamp}, {mode} mode, {wall:.0f} s.",
                "",
                *environment(),
                "",
                _NOTES,
            ]
        )
        + kept,
        encoding="utf-8",
    )
    return 0 if all(row.met is not False for row in rows) else 1
