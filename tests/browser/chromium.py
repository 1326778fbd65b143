"""Headless Chromium from the system (Debian's package), driven by Playwright.

Playwright's own browser download does not work everywhere these tests run; Debian's
Chromium does, with the flags below.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# CI sets it: there, a missing browser is an error, not a reason to skip.
REQUIRE_ENV = "SCNET_REQUIRE_BROWSER"


def require_browser(chromium: Path = CHROMIUM) -> None:
    """Skip the calling test when Chromium or Playwright is missing (fail if required)."""
    if not os.access(chromium, os.X_OK):
        _unavailable(f"{chromium} is missing (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[test]')")


def _unavailable(reason: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires the browser tests", pytrace=False)
    pytest.skip(f"{reason}: browser tests skipped (set {REQUIRE_ENV}=1 to make this an error)")
