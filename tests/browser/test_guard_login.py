"""A visitor's browser at a protected external URL: the guard's login page, the password
typed in, and the service's page behind it. The service is started the way a user does it
(``--protect`` from Python, against the sandbox with execution on, whose gateway plays the
external URL); Chromium only visits."""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from protect_helpers import PASSWORD, guard_folder

from scnet_magic import service
from scnet_magic.guard import auth, list_guards
from scnet_magic.sandbox import Sandbox

from .conftest import ARTIFACTS
from conftest import free_port

pytestmark = pytest.mark.browser


@pytest.fixture
def protected(
    exec_sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str]]:
    """A started web server behind a guard: (external URL, the text its page shows)."""
    assert exec_sandbox.workdir is not None
    text = f"behind-the-guard-{secrets.token_hex(6)}"
    page = f"<!doctype html><title>service</title><p id='said'>{text}</p>\n"
    (exec_sandbox.workdir / "index.html").write_text(page)
    monkeypatch.setenv("SCNET_BASE_URL", exec_sandbox.base_url)
    monkeypatch.setenv("SCNET_TOKEN", exec_sandbox.token)
    with guard_folder(tmp_path / "guards", monkeypatch):
        port = free_port()
        command = f"{sys.executable} -m http.server {port} --bind 127.0.0.1"
        result = service.start_service(
            exec_sandbox.notebook_id, port, command, protect=PASSWORD, wait=30
        )
        assert result.protected and result.url is not None
        yield result.url, text
    assert list_guards() == []


def test_a_browser_signs_in_through_the_guard_and_reaches_the_service(
    browser: Any, protected: tuple[str, str], request: pytest.FixtureRequest
) -> None:
    url, text = protected
    context = browser.new_context(viewport={"width": 900, "height": 700}, locale="en-US")
    try:
        page = context.new_page()
        first = page.goto(url)
        assert first is not None and first.status == 401
        assert page.locator("input[type=password]").is_visible()
        assert text not in page.content()
        folder = request.config.rootpath / ARTIFACTS
        folder.mkdir(exist_ok=True)
        page.screenshot(path=str(folder / "guard-login-page.png"))

        page.fill("input[type=password]", PASSWORD + "-wrong")
        with page.expect_navigation() as wrong:
            page.keyboard.press("Enter")
        assert wrong.value.status == 401  # the login page again, saying so
        assert text not in page.content() and page.locator("input[type=password]").is_visible()

        page.fill("input[type=password]", PASSWORD)
        page.keyboard.press("Enter")
        page.locator("#said").wait_for(timeout=15_000)
        assert page.locator("#said").inner_text() == text
        assert page.url.rstrip("/") == url.rstrip("/")
        page.screenshot(path=str(folder / "guard-service-after-login.png"))
        cookies = {cookie["name"]: cookie for cookie in context.cookies()}
        session = cookies[auth.COOKIE_NAME]
        assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Lax"
        assert PASSWORD not in session["value"]

        # A new visit in the same browser goes straight to the service.
        again = page.goto(url)
        assert again is not None and again.status == 200
    finally:
        context.close()


def sign_in(page: Any, url: str) -> None:
    page.fill("input[type=password]", PASSWORD)
    with page.expect_navigation(url=lambda target: not target.endswith("/.scnet-guard/login")):
        page.keyboard.press("Enter")


def test_the_fragment_survives_signing_in(browser: Any, protected: tuple[str, str]) -> None:
    url, text = protected
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        page.goto(url + "#scalars")
        sign_in(page, url)
        page.locator("#said").wait_for(timeout=15_000)
        assert page.url.endswith("/#scalars") and page.locator("#said").inner_text() == text
    finally:
        context.close()


# What the page's script sees of a fetch, or "no answer" when the browser holds it (behind
# a password box of its own, say) for more than 10 s.
FETCH = """async () => {
    const answer = fetch("index.html", {cache: "no-store"})
        .then(async (r) => [r.status, await r.text()]);
    const stuck = new Promise((done) => setTimeout(() => done(["no answer", ""]), 10000));
    return await Promise.race([answer, stuck]);
}"""


def test_a_page_s_fetch_after_the_session_is_lost_gets_a_401_it_can_read(
    browser: Any, protected: tuple[str, str]
) -> None:
    url, _text = protected
    context = browser.new_context(locale="en-US")
    try:
        page = context.new_page()
        page.goto(url)
        sign_in(page, url)
        page.locator("#said").wait_for(timeout=15_000)
        assert page.evaluate(FETCH)[0] == 200
        context.clear_cookies()  # the session is lost (or the guard restarted)
        status, body = page.evaluate(FETCH)
        assert status == 401
        assert json.loads(body)["login"].startswith("/.scnet-guard/login?next=")
    finally:
        context.close()
