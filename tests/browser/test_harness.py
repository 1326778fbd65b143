"""The browser tests' own machinery: when they skip, and how leftovers are found."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .chromium import REQUIRE_ENV, require_browser
from .server import MARKER, processes_marked


def test_without_chromium_the_browser_tests_skip_and_say_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"no-chromium is missing.*skipped"):
        require_browser(tmp_path / "no-chromium")


def test_without_chromium_the_browser_tests_fail_where_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=rf"no-chromium is missing.*{REQUIRE_ENV}=1"):
        require_browser(tmp_path / "no-chromium")


def test_processes_carrying_the_run_marker_are_found_until_they_end() -> None:
    # In a session of its own, as the sandbox starts services: no process group finds it.
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, MARKER: "run-under-test"},
        start_new_session=True,
    )
    try:
        assert [p.pid for p in processes_marked("run-under-test")] == [proc.pid]
        assert processes_marked("another-run") == []
    finally:
        proc.kill()
        proc.wait()
    assert processes_marked("run-under-test") == []
