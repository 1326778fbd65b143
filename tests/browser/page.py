"""A notebook open in JupyterLab or Notebook 7, driven the way a user drives it."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .server import JupyterServer

# What JupyterLab shows for a notebook without a kernel it can start by itself.
KERNEL_DIALOG = "Select Kernel"
# JupyterLab asks once whether to fetch its news; the toast covers part of the notebook.
NEWS_TOAST = "Would you like to get notified about official Jupyter news?"

# The state of every code cell, read from its prompt: "[*]:" runs or waits, "[3]:" ran,
# "[ ]:" never ran (Run All stops at the first error).
_CELL_STATES = """
() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')].map(cell => {
  const prompt = cell.querySelector('.jp-InputPrompt')?.textContent ?? '';
  return prompt.includes('*') ? 'running' : /\\d/.test(prompt) ? 'done' : 'not run';
})
"""
_ERROR_OUTPUTS = ", ".join(
    f'.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.{kind}"]'
    for kind in ("error", "stderr")
)


class NotebookPage:
    """One notebook in one browser page, with the page's console kept for failure reports."""

    def __init__(self, page: Page, server: JupyterServer, name: str) -> None:
        self.page = page
        self.server = server
        self.name = name
        self.console: list[str] = []
        self.interruptions: list[str] = []
        self.closed = False
        # Tokens of the sandboxes the notebook started, to look for on the page.
        self.sandbox_tokens: list[str] = []
        page.on("console", lambda msg: self.console.append(f"[{msg.type}] {msg.text}"))
        page.on("pageerror", lambda error: self.console.append(f"[page error] {error}"))

    # -- opening and running -----------------------------------------------------------------

    def open(self, timeout: float = 90.0) -> NotebookPage:
        self.page.goto(self.server.notebook_url(self.name))
        self.page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=timeout * 1000)
        self.wait_for_kernel(timeout)
        return self

    def dismiss_interruptions(self) -> None:
        """Answer the kernel dialog and the news toast if they are showing (they come late)."""
        # Short clicks: if one is blocked (the dialog is modal and may open over the toast at
        # any moment), the caller's next round tries again.
        dialog = self.page.locator(".jp-Dialog").filter(has_text=KERNEL_DIALOG)
        with contextlib.suppress(PlaywrightTimeout):
            if dialog.count() and dialog.first.is_visible():
                # The preselected choice is the default kernel, Python 3 (wait_for_kernel
                # checks that a Python kernel is what started).
                dialog.first.locator(".jp-Dialog-button.jp-mod-accept").click(timeout=2000)
                self.interruptions.append(KERNEL_DIALOG)
        toast = self.page.locator(".Toastify__toast").filter(has_text=NEWS_TOAST)
        with contextlib.suppress(PlaywrightTimeout):
            if toast.count() and toast.first.is_visible():
                toast.first.get_by_role("button", name="No", exact=True).click(timeout=2000)
                self.interruptions.append("news")

    def wait_for_kernel(self, timeout: float = 90.0) -> None:
        """Wait until a Python kernel is connected and idle."""
        kernel_name = self.page.locator(".jp-Notebook-toolbarKernelName, .jp-KernelName")
        idle = self.page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
        deadline = time.monotonic() + timeout
        while True:
            self.dismiss_interruptions()
            if idle.count() and "Python" in (kernel_name.first.text_content() or ""):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no idle Python kernel after {timeout:.0f} s; kernel shown: "
                    f"{kernel_name.first.text_content() if kernel_name.count() else None!r}"
                )
            self.page.wait_for_timeout(250)

    def menu(self, menu: str, item: str) -> None:
        """Choose ``menu`` > ``item`` in the menu bar."""
        self.dismiss_interruptions()
        self.page.get_by_role("menuitem", name=menu, exact=True).click()
        self.page.get_by_role("menuitem", name=item, exact=True).click()

    def run_all(self, timeout: float = 120.0) -> None:
        """Clear the saved outputs, Run All, and wait until every cell ran (or fail).

        Clearing first resets the prompts to "[ ]:", so a prompt with a number means a cell
        of this run, not one of the outputs saved in the file.
        """
        self.menu("Edit", "Clear Outputs of All Cells")
        self.page.wait_for_function(f"() => ({_CELL_STATES})().every(s => s === 'not run')")
        self.menu("Run", "Run All Cells")
        deadline = time.monotonic() + timeout
        stopped_since: float | None = None
        while True:
            self.dismiss_interruptions()
            states: list[str] = self.page.evaluate(_CELL_STATES)
            if states and all(state == "done" for state in states):
                break
            if "running" in states:
                stopped_since = None
            else:
                # Nothing runs but some cells did not run: Run All stopped at an error, or the
                # run has not begun yet. Give it a moment before deciding.
                stopped_since = stopped_since or time.monotonic()
                if time.monotonic() - stopped_since > 3.0:
                    raise AssertionError(f"Run All stopped: cell states {states}; {self._errors()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"cells still running after {timeout:.0f} s: {states}")
            self.page.wait_for_timeout(250)
        # A failing last cell ran too, so its prompt has a number: ask the kernel, where
        # IPython keeps the last exception a cell raised.
        raised = self.server.kernel_expression(
            "repr(getattr(__import__('sys'), 'last_value', None))"
        )
        if raised != "None":
            raise AssertionError(f"a cell raised {raised}; {self._errors()}")

    def _errors(self) -> str:
        texts = self.page.locator(_ERROR_OUTPUTS).all_inner_texts()
        return "error output on the page:\n" + "\n".join(texts) if texts else "no error output"

    def run_cell(self, cell: Locator, timeout: float = 60.0) -> None:
        """Select ``cell`` and press Shift+Enter, as a user re-running it; wait for it."""
        prompt = cell.locator(".jp-InputPrompt")
        before = prompt.text_content()
        prompt.click()
        self.page.keyboard.press("Shift+Enter")
        deadline = time.monotonic() + timeout
        while True:
            now = prompt.text_content() or ""
            if now != before and re.search(r"\d", now) and "*" not in now:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the cell did not run within {timeout:.0f} s: {now!r}")
            self.page.wait_for_timeout(100)

    def save_artifacts(self, folder: Path) -> list[Path]:
        """Screenshots of this notebook's pages (and those it opened) and the console log."""
        saved = []
        pages = [] if self.closed else self.page.context.pages
        for number, page in enumerate(pages):
            path = folder / f"{self.server.app}-page{number}.png"
            page.screenshot(path=path, full_page=True)
            saved.append(path)
        log = folder / f"{self.server.app}-console.log"
        log.write_text("\n".join(self.console) + "\n")
        return [*saved, log]

    # -- finding things ------------------------------------------------------------------------

    def code_cells(self, source: str | re.Pattern[str]) -> Locator:
        """Code cells whose source contains ``source`` (text or pattern)."""
        editor = self.page.locator(".jp-InputArea-editor", has_text=source)
        return self.page.locator(".jp-Notebook .jp-CodeCell").filter(has=editor)

    def one_cell(self, source: str | re.Pattern[str]) -> Locator:
        """The one code cell whose source matches; fails clearly if there is none or several."""
        cells = self.code_cells(source)
        count = cells.count()
        assert count == 1, f"{count} code cells match {source!r} in {self.name}"
        return cells

    def outputs(self, cell: Locator) -> Locator:
        return cell.locator(".jp-OutputArea-output")

    def exposure(self) -> dict[str, Any]:
        """Everything the page holds that a token could hide in: markup, text, field values.

        JupyterLab's own page configuration (the ``jupyter-config-data`` script) carries the
        server token so that the front end can talk to its server; it is left out.
        """
        return dict(
            self.page.evaluate(
                """() => {
                  const copy = document.documentElement.cloneNode(true);
                  copy.querySelector('#jupyter-config-data')?.remove();
                  return {
                    html: copy.outerHTML,
                    text: document.body.innerText,
                    values: [...document.querySelectorAll('input, textarea, select')]
                      .map(field => field.value),
                  };
                }"""
            )
        )
