"""Each instance's external URL has a host of its own in the sandbox, as on the platform: a
browser signed in to one protected service stays signed in to another (cookies ignore ports,
not hosts)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from protect_helpers import PASSWORD, guard_folder

from scnet_magic import service
from scnet_magic.sandbox import Sandbox

from .conftest import ARTIFACTS
from .test_guard_login import sign_in
from conftest import free_port, localhost_names

pytestmark = pytest.mark.browser


@pytest.fixture
def two_protected(
    exec_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[tuple[str, str]]]:
    """Two web servers, each behind a guard, in two instances: (external URL, page text)."""
    localhost_names(monkeypatch, resolved=True)  # this machine's may not
    monkeypatch.setenv("SCNET_BASE_URL", exec_sandbox.base_url)
    monkeypatch.setenv("SCNET_TOKEN", exec_sandbox.token)
    assert exec_sandbox.workdir is not None
    started = []
    with guard_folder(tmp_path / "guards", monkeypatch):
        for name, notebook_id in (("one", "1896050410550136833"), ("two", "1896476639463936002")):
            folder = exec_sandbox.workdir / name
            folder.mkdir()
            (folder / "index.html").write_text(f"<!doctype html><p id='said'>{name}</p>\n")
            port = free_port()
            command = f"cd {name} && {sys.executable} -m http.server {port} --bind 127.0.0.1"
            result = service.start_service(notebook_id, port, command, protect=PASSWORD, wait=30)
            assert result.url is not None
            assert result.url.startswith(f"http://c-{notebook_id}.localhost:")
            started.append((result.url, name))
        yield started


def test_signing_in_to_one_service_keeps_the_other_signed_in(
    browser: Any, two_protected: list[tuple[str, str]], request: pytest.FixtureRequest
) -> None:
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        for url, _text in two_protected:
            page.goto(url)
            sign_in(page, url)
        for url, text in two_protected:
            again = page.goto(url)
            assert again is not None and again.status == 200, url
            assert page.locator("#said").inner_text() == text
        folder = request.config.rootpath / ARTIFACTS
        folder.mkdir(exist_ok=True)
        page.screenshot(path=str(folder / "guard-two-instances-signed-in.png"))
    finally:
        context.close()
