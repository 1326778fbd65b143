"""The README is true line by line: every magic line of its fenced blocks runs, as written,
against the sandbox in a real IPython shell."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from scnet_magic import guard
from scnet_magic.sandbox import Sandbox

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
MAGIC_LINE = re.compile(r"^(?:\w+ = )?%")

# Lines that need what a test cannot give: the real platform, or a person at a prompt.
SKIPPED = {
    "%scnet_login": "signs in to the real platform with hidden prompts for the keys",
    "%scnet_token": "asks for the token at a hidden prompt",
    "--wait 600": "waits up to ten minutes for the platform's external address",
}


def readme_magics() -> list[str]:
    """Each magic line, or a whole %% cell, of every fenced block, in order."""
    found: list[str] = []
    for block in FENCE.findall(README.read_text(encoding="utf-8")):
        lines = block.splitlines()
        if lines and lines[0].startswith("%%"):
            found.append(block)
            continue
        found += [line for line in lines if MAGIC_LINE.match(line)]
    return found


def skip_reason(line: str) -> str | None:
    return next((why for part, why in SKIPPED.items() if part in line), None)


def test_the_readme_has_magic_lines_and_skips_few() -> None:
    lines = readme_magics()
    assert len(lines) >= 12
    skipped = [line for line in lines if skip_reason(line)]
    assert len(skipped) <= 5, skipped
    assert any(line.rstrip().endswith("(see below)") for line in lines)  # comments stay


@pytest.mark.parametrize("line", readme_magics())
def test_readme_magic_line_runs_as_written(
    ip: InteractiveShell,
    sandbox_env: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    line: str,
) -> None:
    why = skip_reason(line)
    if why:
        pytest.skip(why)
    monkeypatch.setenv("SCNET_NOTEBOOK_ID", sandbox_env.notebook_id)
    # --protect lines: the password a person would type, and guards of this test's own.
    monkeypatch.setenv("SCNET_GUARD_PASSWORD", "readme-password")
    monkeypatch.setenv("SCNET_GUARD_DIR", str(tmp_path / "guards"))
    # %scnet_stop in a terminal: the instance's name typed to confirm, as a person would.
    monkeypatch.setattr("builtins.input", lambda prompt="": "sdxl-webui")
    try:
        with capture_output() as out:
            outcome = ip.run_cell(line)
        assert outcome.success, f"{line!r}: {outcome.error_before_exec or outcome.error_in_exec}"
        assert "Error" not in out.stderr, out.stderr
    finally:
        with capture_output():
            ip.run_line_magic("scnet_sandbox", "--stop")
        for record in guard.list_guards():
            guard.stop_guard(record.port)


def first_commands() -> list[str]:
    """The Quick start's commands: the first fenced block."""
    block = FENCE.findall(README.read_text(encoding="utf-8"))[0]
    return [line for line in block.splitlines() if line.strip()]


def test_the_first_command_installs_quietly_and_the_test_command_says_how_long() -> None:
    install, tests = first_commands()
    assert "pip install -q " in install
    assert tests == ".venv/bin/python -m pytest"
    text = README.read_text(encoding="utf-8")
    assert re.search(r"about \d+ minutes on a 2-core machine", text)
    assert re.search(r"约需\s*\d+\s*分钟", text)


@pytest.mark.slow
def test_the_first_command_prints_the_quickstart_readably() -> None:
    import subprocess
    import sys

    install, _tests = first_commands()
    run = install.split(" && ")[-1].replace(".venv/bin/", str(Path(sys.executable).parent) + "/")
    shown = subprocess.run(
        run, shell=True, cwd=README.parent, capture_output=True, text=True, timeout=300
    )
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    # The results as text: the notebooks' table a table, not a line of HTML.
    assert "<div" not in out and "<table" not in out and "<style" not in out
    assert max(len(line) for line in out.splitlines()) < 300
    assert "1896050410550136833  sdxl-webui" in out  # a row of %scnet_notebooks' table
    assert "Service is up: port" in out and "  URL: http://127.0.0.1:" in out
