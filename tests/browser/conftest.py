"""Fixtures for the browser tests: Chromium, a Jupyter server per front end, the notebook run.

Without /usr/bin/chromium (or Playwright) the tests skip, unless SCNET_REQUIRE_BROWSER=1 (set
by CI), where they fail instead. When a test fails, a screenshot of every open page, the
pages' console and the server's log are saved under test-artifacts/ and the folder is named in
the report.
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from .chromium import CHROMIUM, CHROMIUM_ARGS, require_browser
from .server import APPS, JupyterServer

ARTIFACTS = "test-artifacts"
NOTEBOOK = "quickstart.ipynb"


class _Watched(Protocol):
    closed: bool

    def save_artifacts(self, folder: Path) -> list[Path]: ...


# What a failure report should show: the open pages and the running servers.
_WATCHED: list[_Watched] = []


@pytest.fixture(autouse=True)
def no_running_event_loop() -> None:
    """Here the open browser's loop runs in the main thread by design (see ``browser``)."""


# Package scope: Playwright's sync API keeps its event loop marked running in the main thread
# while it is open, which would make every later test run inside "a running event loop".
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright (its own browser download is not used)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module", params=sorted(APPS))
def jupyter(
    request: pytest.FixtureRequest, browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> JupyterServer:
    """JupyterLab or Notebook 7 serving a folder with a copy of the quickstart notebook."""
    app: str = request.param
    root = tmp_path_factory.mktemp(f"{app}-root")
    shutil.copy(request.config.rootpath / "notebooks" / NOTEBOOK, root)
    server = JupyterServer(app, root, tmp_path_factory.mktemp(f"{app}-home"))

    def stop() -> None:
        leftovers = server.stop()
        server.closed = True
        assert not leftovers, f"processes left running after {app} shut down (now killed): " + (
            "; ".join(f"{p.pid} {p.cmdline}" for p in leftovers)
        )

    # Finalizers rather than a generator's cleanup: after a failed setup, the failure report
    # (with its screenshot) comes first, the cleanup after it.
    _WATCHED.append(server)
    request.addfinalizer(stop)
    return server.start()


@pytest.fixture(scope="module")
def notebook(request: pytest.FixtureRequest, browser: Any, jupyter: JupyterServer) -> Any:
    """The quickstart notebook, opened in a fresh browser context and run with Run All."""
    from .page import NotebookPage

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    notebook = NotebookPage(context.new_page(), jupyter, NOTEBOOK)

    def close() -> None:
        notebook.closed = True
        context.close()

    _WATCHED.append(notebook)
    request.addfinalizer(close)
    notebook.open()
    notebook.run_all()
    # The sandbox's token, for the tests that look for tokens on the page.
    notebook.sandbox_tokens.append(jupyter.kernel_expression("sandbox.token"))
    return notebook


@pytest.fixture(scope="module")
def service_site(jupyter: JupyterServer) -> tuple[str, str]:
    """A folder next to the notebook holding a page with a random text: (folder, text)."""
    text = f"served-by-the-form-{secrets.token_hex(6)}"
    site = jupyter.root / "site"
    site.mkdir()
    (site / "index.html").write_text(f"<!doctype html><title>check</title><p>{text}</p>\n")
    return site.name, text


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and _WATCHED:
        folder = _save_artifacts(item, report.when)
        report.sections.append(("browser artifacts", f"saved in {folder}"))
    # What was closed in this phase served its last report.
    _WATCHED[:] = [watched for watched in _WATCHED if not watched.closed]


def _save_artifacts(item: pytest.Item, when: str) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid.split("::", 1)[-1])
    folder = item.config.rootpath / ARTIFACTS / f"{name}-{when}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for watched in _WATCHED:
        try:
            watched.save_artifacts(folder)
        except Exception as exc:  # a broken page must not hide the failure itself
            with open(folder / "artifact-errors.txt", "a") as errors:
                errors.write(f"{type(watched).__name__}: {exc}\n")
    return folder
